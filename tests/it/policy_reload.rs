//! The cluster policy file is reloaded when it changes; an invalid one keeps the
//! last good policy in force.

use std::time::Duration;

use serde_json::Value;

use crate::fixtures::apply;
use crate::support::{Harness, Options, eventually, metric, write_atomic};

const FAILURES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="failure"}"#;
const SUCCESSES: &str = r#"vespa_tls_webhook_policy_reloads_total{result="success"}"#;

/// Whether a VespaSet in the unlabelled namespace `plain` gets patched.
async fn plain_is_injected(h: &Harness) -> bool {
    let (_, response) = h.mutate_user_vespaset("plain").await;
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
    let (_, own) = h.mutate_user_vespaset("webhook-system").await;
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

/// The `csi.cert-manager.io/duration` that `/mutate` gives every CSI volume of
/// a VespaSet in namespace `vespa`, or the denial's message.
async fn vespa_duration(h: &Harness) -> Result<String, String> {
    fn durations(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(d)) = m.get("csi.cert-manager.io/duration") {
                    out.push(d.clone());
                }
                m.values().for_each(|v| durations(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| durations(v, out)),
            _ => {}
        }
    }
    let (object, response) = h.mutate_user_vespaset("vespa").await;
    if response["allowed"] != true {
        return Err(response["status"]["message"].to_string());
    }
    let mut found = Vec::new();
    durations(&apply(&object, &response), &mut found);
    assert!(!found.is_empty(), "no CSI volume in {response}");
    assert!(found.iter().all(|d| *d == found[0]), "{found:?}");
    Ok(found[0].clone())
}

/// The server keeps each namespace's settings between reviews
/// (`ready::ReadyMemo`): a new policy and a changed namespace annotation must
/// still apply to the very next review after they are loaded.
#[tokio::test]
async fn settings_follow_policy_and_annotation_changes() {
    let h = Harness::start(Options {
        policy: Some("defaultMode: disabled\n".into()),
        ..Options::default()
    })
    .await;
    let hr = &h;
    assert_eq!(vespa_duration(&h).await, Ok("720h".into()));
    assert_eq!(vespa_duration(&h).await, Ok("720h".into()), "asked again");

    write_atomic(&h.policy_path, "defaults:\n  duration: 480h\n");
    eventually(
        "the policy's default duration applies",
        Duration::from_secs(2),
        || async move { vespa_duration(hr).await == Ok("480h".into()) },
    )
    .await;

    let namespaces = std::fs::read_to_string(&h.namespaces_path).unwrap();
    let annotated = |value: &str| {
        namespaces.replace(
            "    name: vespa\n    labels: {tls.vespa.ai/injection: enabled}\n",
            &format!(
                "    name: vespa\n    labels: {{tls.vespa.ai/injection: enabled}}\n    annotations: {{tls.vespa.ai/duration: {value}}}\n"
            ),
        )
    };
    write_atomic(&h.namespaces_path, &annotated("240h"));
    eventually(
        "the namespace's annotation applies",
        Duration::from_secs(2),
        || async move { vespa_duration(hr).await == Ok("240h".into()) },
    )
    .await;

    write_atomic(&h.namespaces_path, &annotated("soon"));
    eventually(
        "an invalid annotation is refused",
        Duration::from_secs(2),
        || async move {
            vespa_duration(hr)
                .await
                .is_err_and(|m| m.contains("tls.vespa.ai/duration") && m.contains("soon"))
        },
    )
    .await;

    // The annotation removed: the policy's default again.
    write_atomic(&h.namespaces_path, &namespaces);
    eventually(
        "the annotation's removal applies",
        Duration::from_secs(2),
        || async move { vespa_duration(hr).await == Ok("480h".into()) },
    )
    .await;
}
