//! Arbitrary bytes as an AdmissionReview body: `parse_review` never panics, and
//! every review it accepts satisfies the decision invariants of
//! `vespa_tls_webhook_fuzz::check_review` (patch applies, result validates in an
//! enforced namespace, re-mutating is a no-op, `respond` is valid JSON), and
//! the server's projected reading of a Pod answers exactly like the complete one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(review) = vespa_tls_webhook_fuzz::check_projection(data, |_, _| true) {
        vespa_tls_webhook_fuzz::check_review(&review);
    }
});
