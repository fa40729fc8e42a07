//! `/validate`: enforced namespaces reject, enabled ones warn, others pass.

use crate::fixtures::{apply, deployment, golden, review_in, user_vespaset, vespaset_review};
use crate::support::{Harness, Options};

#[tokio::test]
async fn enforced_namespace_rejects_a_vespaset_without_tls() {
    let h = Harness::start(Options::default()).await;
    let mut object = user_vespaset();
    object["metadata"]["namespace"] = "vespa-prod".into();
    let review = vespaset_review(object, "vespa-prod", "CREATE");
    let response = h.admit("/validate", &review).await;
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    for part in [
        "vespa-prod",
        "enforced",
        "VESPA_TLS_CONFIG_FILE",
        "tls-certs",
        "tls-config",
        "/spec/configServer/podTemplate",
        "/spec/application/podTemplate",
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
}

#[tokio::test]
async fn enforced_namespace_admits_the_injected_vespaset() {
    let h = Harness::start(Options::default()).await;
    let mut object = user_vespaset();
    object["metadata"]["namespace"] = "vespa-prod".into();
    let mutated = h
        .admit(
            "/mutate",
            &vespaset_review(object.clone(), "vespa-prod", "CREATE"),
        )
        .await;
    let injected = apply(&object, &mutated);
    let response = h
        .admit(
            "/validate",
            &vespaset_review(injected, "vespa-prod", "CREATE"),
        )
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    // The seed's own Step 4 object, in its own namespace (enabled), is conformant too.
    let response = h
        .admit(
            "/validate",
            &vespaset_review(golden("seed-step4-vespaset.yaml"), "vespa", "CREATE"),
        )
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("warnings").is_none(), "{response}");
}

#[tokio::test]
async fn enabled_namespace_warns() {
    let h = Harness::start(Options::default()).await;
    let response = h
        .admit(
            "/validate",
            &vespaset_review(user_vespaset(), "vespa", "CREATE"),
        )
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(!warnings.is_empty());
    assert!(
        warnings
            .iter()
            .all(|w| w.as_str().unwrap().starts_with("TLS incomplete")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn other_kinds_and_deletes_pass() {
    let h = Harness::start(Options::default()).await;
    let review = review_in(
        "admission.k8s.io/v1",
        ("apps", "v1", "Deployment"),
        "vespa-prod",
        "CREATE",
        Some(deployment()),
    );
    for endpoint in ["/mutate", "/validate"] {
        let response = h.admit(endpoint, &review).await;
        assert_eq!(response["allowed"], true, "{endpoint}: {response}");
        assert!(response.get("patch").is_none(), "{endpoint}: {response}");
    }
    let mut object = user_vespaset();
    object["metadata"]["namespace"] = "vespa-prod".into();
    let delete = vespaset_review(object, "vespa-prod", "DELETE");
    let response = h.admit("/validate", &delete).await;
    assert_eq!(response["allowed"], true, "{response}");
}
