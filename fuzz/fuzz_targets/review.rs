//! Arbitrary bytes as an AdmissionReview body: `parse_review` never panics, and
//! every review it accepts satisfies the decision invariants of
//! `vespa_tls_webhook_fuzz::check_review` (patch applies, result validates in an
//! enforced namespace, re-mutating is a no-op, `respond` is valid JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vespa_tls_webhook::admission::parse_review;

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = parse_review(data) {
        vespa_tls_webhook_fuzz::check_review(&review);
    }
});
