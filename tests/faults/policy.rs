//! The policy file replaced by invalid ones under load: the last good policy
//! stays in force (decisions unchanged), no request fails, each refusal is counted.

use std::time::{Duration, Instant};

use crate::common::{
    Conn, Load, metric, mutate_enabled, mutate_plain_injected, mutate_plain_untouched, serial,
    validate_enforced_denied,
};
use crate::support::{Harness, Options, eventually, write_atomic};

const FAILURES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="failure"}"#;
const SUCCESSES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="success"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_policy_files_under_load_keep_the_last_good_policy() {
    let _serial = serial().await;
    // `defaultMode: enabled` is visible in every answer for the unlabelled `plain`.
    let h = Harness::start(Options {
        policy: Some("defaultMode: enabled\n".into()),
        ..Options::default()
    })
    .await;
    let load = Load::start(
        &h.url(""),
        || h.ca.client_config(),
        &[Conn::KeepAlive, Conn::KeepAlive, Conn::NewPerRequest],
        &[
            mutate_plain_injected(),
            validate_enforced_denied(),
            mutate_enabled(),
        ],
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // (what, contents, written in place rather than renamed over)
    let invalid: [(&str, &[u8], bool); 6] = [
        ("unknown mode", b"defaultMode: sometimes\n", false),
        ("not YAML", b"defaultMode: [", true),
        (
            "a typo in a field name",
            b"defaultMode: enabled\ndefaultMod: disabled\n",
            false,
        ),
        (
            "an invalid default",
            b"defaultMode: enabled\ndefaults:\n  duration: forever\n",
            false,
        ),
        ("not UTF-8", b"defaultMode: \xff\xfe\n", true),
        // Truncated to nothing by a writer (or a ConfigMap key emptied): on reload
        // that is refused too, not taken for "the built-in policy".
        ("empty", b"", true),
    ];
    for (n, (what, text, in_place)) in invalid.iter().enumerate() {
        if *in_place {
            std::fs::write(&h.policy_path, text).unwrap();
        } else {
            let tmp = h.policy_path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &h.policy_path).unwrap();
        }
        let hr = &h;
        eventually(
            &format!("the {what} policy is refused and counted"),
            Duration::from_secs(3),
            || async move { metric(&hr.metrics().await, FAILURES) >= (n + 1) as f64 },
        )
        .await;
        // Let the load run against it for a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = load.stop().await;
    let elapsed = started.elapsed();
    let m = h.metrics().await;
    eprintln!(
        "policy: {elapsed:?}, {} invalid files refused, {} requests ok ({:.0}/s)",
        metric(&m, FAILURES),
        stats.ok(),
        stats.ok() as f64 / elapsed.as_secs_f64()
    );
    stats.assert_no_failures("requests while the policy file was invalid");
    assert!(stats.ok() >= 100, "too little load: {}", stats.ok());
    assert_eq!(metric(&m, FAILURES), invalid.len() as f64, "{m}");
    assert_eq!(metric(&m, SUCCESSES), 0.0, "an invalid file was taken: {m}");

    // A valid policy is still taken after all that.
    write_atomic(&h.policy_path, "defaultMode: disabled\n");
    let check = mutate_plain_untouched();
    let hr = &h;
    eventually(
        "a valid policy applies again",
        Duration::from_secs(3),
        || {
            let check = check.clone();
            async move {
                let (status, answer) = hr
                    .post(check.path, &serde_json::from_slice(&check.body).unwrap())
                    .await;
                (check.check)(status, &answer).is_ok()
            }
        },
    )
    .await;
    assert_eq!(metric(&h.metrics().await, SUCCESSES), 1.0);
}
