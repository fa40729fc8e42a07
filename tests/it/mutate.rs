//! `/mutate`: the seed's Step 4 and Step 5 manifests, reproduced over HTTPS.

use serde_json::Value;

use crate::fixtures::{apply, golden, review_in, strip_injected, user_vespaset, vespaset_review};
use crate::support::{Harness, Options};

#[tokio::test]
async fn step4_golden_is_reproduced() {
    let h = Harness::start(Options::default()).await;
    let object = user_vespaset();
    let review = vespaset_review(object.clone(), "vespa", "CREATE");
    let (status, answer) = h.post("/mutate", &review).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true, "{response}");
    let injected = strip_injected(apply(&object, response));
    assert_eq!(injected, golden("seed-step4-vespaset.yaml"));
}

#[tokio::test]
async fn step5_golden_with_ingress_issuer_annotation() {
    // The goldens are for namespace `vespa`: here it also names an ingress issuer.
    let h = Harness::start(Options {
        namespaces: r#"
- metadata:
    name: vespa
    labels: {tls.vespa.ai/injection: enabled}
    annotations: {tls.vespa.ai/ingress-issuer-name: ingress-issuer}
"#
        .into(),
        ..Options::default()
    })
    .await;
    let (object, response) = h.mutate_user_vespaset("vespa").await;
    assert_eq!(response["allowed"], true, "{response}");
    let injected = strip_injected(apply(&object, &response));
    assert_eq!(
        injected["spec"]["application"],
        golden("seed-step5-vespaset.yaml")["spec"]["application"]
    );
    assert_eq!(
        injected["spec"]["configServer"],
        golden("seed-step4-vespaset.yaml")["spec"]["configServer"]
    );
}

#[tokio::test]
async fn v1beta1_is_answered_in_v1beta1() {
    let h = Harness::start(Options::default()).await;
    let object = user_vespaset();
    let review = review_in(
        "admission.k8s.io/v1beta1",
        ("k8s.ai.vespa", "v1", "VespaSet"),
        "vespa",
        "CREATE",
        Some(object.clone()),
    );
    let (status, answer) = h.post("/mutate", &review).await;
    assert_eq!(status, 200);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    let injected = strip_injected(apply(&object, &answer["response"]));
    assert_eq!(injected, golden("seed-step4-vespaset.yaml"));
}

#[tokio::test]
async fn injected_output_is_left_alone() {
    let h = Harness::start(Options::default()).await;
    let (object, first) = h.mutate_user_vespaset("vespa").await;
    let injected = apply(&object, &first);
    let again = h
        .admit("/mutate", &vespaset_review(injected, "vespa", "UPDATE"))
        .await;
    assert_eq!(again["allowed"], true);
    assert!(
        again.get("patch").is_none(),
        "re-injection patched: {again}"
    );
}

#[tokio::test]
async fn unlabelled_unknown_and_own_namespaces_are_untouched() {
    let h = Harness::start(Options::default()).await;
    // `plain` has no label, `nowhere` does not exist, `webhook-system` is the
    // webhook's own namespace (labelled enabled, but always excluded).
    for ns in ["plain", "nowhere", "webhook-system"] {
        let (_, response) = h.mutate_user_vespaset(ns).await;
        assert_eq!(response["allowed"], true, "{ns}: {response}");
        assert!(response.get("patch").is_none(), "{ns}: {response}");
    }
}

#[tokio::test]
async fn the_dev_example_review_is_injected() {
    let examples = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let h = Harness::start(Options {
        namespaces: std::fs::read_to_string(format!("{examples}/namespaces.yaml")).unwrap(),
        ..Options::default()
    })
    .await;
    let review: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{examples}/review-vespaset.json")).unwrap(),
    )
    .unwrap();
    let response = h.admit("/mutate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
}
