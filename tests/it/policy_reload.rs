//! The cluster policy file is reloaded when it changes; an invalid one keeps the
//! last good policy in force.

use std::time::Duration;

use crate::fixtures::{user_vespaset, vespaset_review};
use crate::support::{Harness, Options, eventually, metric, write_atomic};

const FAILURES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="failure"}"#;
const SUCCESSES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="success"}"#;

/// Whether a VespaSet in the unlabelled namespace `plain` gets patched.
async fn plain_is_injected(h: &Harness) -> bool {
    let response = h
        .admit(
            "/mutate",
            &vespaset_review(user_vespaset(), "plain", "CREATE"),
        )
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    response.get("patch").is_some()
}

#[tokio::test]
async fn policy_changes_apply_and_invalid_files_keep_the_last_good_policy() {
    let h = Harness::start(Options {
        policy: Some("defaultMode: disabled\n".into()),
        ..Options::default()
    })
    .await;
    assert!(!plain_is_injected(&h).await);

    write_atomic(&h.policy_path, "defaultMode: enabled\n");
    let hr = &h;
    let took = eventually(
        "defaultMode: enabled applies",
        Duration::from_secs(2),
        || async move { plain_is_injected(hr).await },
    )
    .await;
    eprintln!("policy change applied after {took:?}");
    assert_eq!(metric(&h.metrics().await, SUCCESSES), 1.0);

    // Invalid: unknown mode. And then not YAML at all (written in place).
    write_atomic(&h.policy_path, "defaultMode: sometimes\n");
    eventually(
        "the invalid policy is counted",
        Duration::from_secs(2),
        || async move { metric(&hr.metrics().await, FAILURES) == 1.0 },
    )
    .await;
    assert!(plain_is_injected(&h).await, "last good policy must stay");
    std::fs::write(&h.policy_path, "defaultMode: [").unwrap();
    eventually(
        "the unparsable policy is counted",
        Duration::from_secs(2),
        || async move { metric(&hr.metrics().await, FAILURES) == 2.0 },
    )
    .await;
    assert!(plain_is_injected(&h).await, "last good policy must stay");

    // The webhook's own namespace stays excluded after reloads.
    let own = h
        .admit(
            "/mutate",
            &vespaset_review(user_vespaset(), "webhook-system", "CREATE"),
        )
        .await;
    assert!(own.get("patch").is_none(), "{own}");

    // Back to disabled.
    write_atomic(&h.policy_path, "defaultMode: disabled\n");
    eventually(
        "defaultMode: disabled applies",
        Duration::from_secs(2),
        || async move { !plain_is_injected(hr).await },
    )
    .await;
}

#[tokio::test]
async fn namespaces_file_changes_apply() {
    let h = Harness::start(Options::default()).await;
    assert!(!plain_is_injected(&h).await);
    let text = std::fs::read_to_string(&h.namespaces_path)
        .unwrap()
        .replace(
            "    name: plain\n",
            "    name: plain\n    labels: {tls.vespa.ai/injection: enabled}\n",
        );
    write_atomic(&h.namespaces_path, &text);
    let hr = &h;
    eventually(
        "the relabelled namespace is injected",
        Duration::from_secs(2),
        || async move { plain_is_injected(hr).await },
    )
    .await;
    // A broken file keeps the namespaces in use.
    write_atomic(&h.namespaces_path, "- metadata: {}\n");
    eventually(
        "the broken namespaces file is counted",
        Duration::from_secs(2),
        || async move {
            metric(
                &hr.metrics().await,
                r#"vespa_tls_webhook_namespaces_file_reloads_total{result="failure"}"#,
            ) == 1.0
        },
    )
    .await;
    assert!(plain_is_injected(&h).await);
}
