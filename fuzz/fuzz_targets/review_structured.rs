//! Structured AdmissionReviews: VespaSets, Pods and Namespaces built from the
//! fuzzer's bytes (with our own injected entries, stale ones, conflicting and
//! malformed ones mixed in) so that the deep paths of the injector and validator
//! are reached quickly. Same invariants as `review`, the projection included.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick one fixed policy and one fixed namespace, so that a
    // run is cheap and the fuzzer still reaches every combination.
    let (policies, namespaces) = match data {
        [p, n, ..] => (*p, *n),
        _ => (0, 0),
    };
    let mut u = Unstructured::new(data.get(2..).unwrap_or_default());
    let Ok(review) = vespa_tls_webhook_fuzz::review_json(&mut u) else {
        return;
    };
    let body = match serde_json::to_vec(&review) {
        Ok(b) => b,
        Err(e) => panic!("cannot serialize a generated review: {e}"),
    };
    let pick = |p: usize, n: usize| {
        p == usize::from(policies) % vespa_tls_webhook_fuzz::policies().len()
            && n == usize::from(namespaces) % vespa_tls_webhook_fuzz::namespaces("").len()
    };
    if let Some(review) = vespa_tls_webhook_fuzz::check_projection(&body, pick) {
        vespa_tls_webhook_fuzz::check_review_in(&review, pick);
    }
});
