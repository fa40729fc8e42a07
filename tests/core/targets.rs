//! Which pods are Vespa pods, on tests/golden/vespa-pods.yaml: the webhook's rule
//! here, the pod webhooks' matchCondition (CEL) in deploy/check.sh, on the same pods.

use serde_json::Value;
use vespa_tls_webhook::admission::Endpoint;
use vespa_tls_webhook::policy::ClusterPolicy;
use vespa_tls_webhook::target::is_vespa_pod;

use crate::fixtures::{ns, run, yaml};

/// The corpus: (what the case is, whether it is a Vespa pod, the pod).
fn cases() -> Vec<(String, bool, Value)> {
    let corpus = yaml("tests/golden/vespa-pods.yaml");
    let cases: Vec<_> = corpus
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["vespa"].as_bool().expect("vespa: true or false"),
                c["pod"].clone(),
            )
        })
        .collect();
    assert!(cases.iter().any(|c| c.1) && cases.iter().any(|c| !c.1));
    cases
}

#[test]
fn is_vespa_pod_agrees_with_the_corpus() {
    for (name, vespa, pod) in cases() {
        assert_eq!(is_vespa_pod(&pod), vespa, "{name}");
    }
}

#[test]
fn exactly_the_non_vespa_pods_are_allowed_untouched_in_every_mode() {
    let policy = ClusterPolicy::default();
    for mode in ["enabled", "enforced"] {
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            for (name, vespa, pod) in cases() {
                let d = run(endpoint, &pod, &ns("vespa", mode), &policy);
                let untouched = d.allowed && d.patch.is_empty() && d.reason == "not-vespa";
                assert_eq!(untouched, !vespa, "{name}, {mode}, {endpoint:?}: {d:?}");
            }
        }
    }
}
