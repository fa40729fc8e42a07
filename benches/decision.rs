//! One full `/mutate` decision — `parse_review_for` → `decide_with` (policy,
//! settings, patch) → `respond` — as the server makes it (the namespace's
//! settings from its `ReadyMemo`, derived on the first review), beside the baseline "parse the same bytes into a
//! `serde_json::Value` and serialise a constant allowed response", for a ~2 KB
//! VespaSet review, a ~10 KB Pod review and a ~190 KB Pod review (1,500 env vars).
//!
//! `cargo bench --bench decision`; `scripts/bench` prints the ratios from
//! `target/criterion/mutate-*/{full,baseline}/new/estimates.json`. Two more
//! functions per review, `parse` (our reading of the review alone) and
//! `floor-parse` (the floor server's: `request.uid` only), show how much of the
//! decision is the parse; `serde-parse` is our reading without its hand-written
//! fast path (`src/scan.rs`), by serde alone, as before that path.

// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use vespa_tls_webhook::admission::{
    Endpoint, decide, decide_with, parse_review_for, parse_review_serde,
};
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};
use vespa_tls_webhook::projection::Purpose;
use vespa_tls_webhook::ready::ReadyMemo;

#[path = "support/mod.rs"]
mod support;

fn full(body: &[u8], policy: &Arc<ClusterPolicy>, memo: &ReadyMemo, ns: &NamespaceMeta) -> Vec<u8> {
    let Ok(review) = parse_review_for(Endpoint::Mutate, body) else {
        return Vec::new();
    };
    let decision = decide_with(Endpoint::Mutate, &review, policy, Some(ns), &|ns| {
        memo.get(policy, ns)
    });
    review.respond(&decision)
}

fn baseline(body: &[u8]) -> Vec<u8> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let uid = v
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    support::allowed_response(uid)
}

fn bench(c: &mut Criterion) {
    let policy = Arc::new(ClusterPolicy::default());
    let memo = ReadyMemo::default();
    let ns =
        NamespaceMeta::named(support::NAMESPACE).with_label("tls.vespa.ai/injection", "enabled");
    for (name, body) in support::reviews() {
        // Guard: the decision under test really injects.
        let review =
            parse_review_for(Endpoint::Mutate, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = decide(Endpoint::Mutate, &review, &policy, Some(&ns));
        assert!(d.allowed && d.reason == "injected", "{name}: {d:?}");
        // ... the fast path reads it, as serde does.
        let text = std::str::from_utf8(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let scanned = vespa_tls_webhook::scan::read(text, Purpose::Mutation);
        assert!(scanned.is_some(), "{name}: the fast path gave up");
        assert_eq!(
            scanned.as_ref(),
            parse_review_serde(&body, Purpose::Mutation).as_ref().ok()
        );
        // ... and the memo changes nothing in the response.
        let response = full(&body, &policy, &memo, &ns);
        assert_eq!(response, review.respond(&d), "{name}");
        eprintln!(
            "{name}: review {} bytes, response {} bytes",
            body.len(),
            response.len()
        );

        let mut g = c.benchmark_group(format!("mutate-{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("baseline", |b| b.iter(|| baseline(black_box(&body))));
        g.bench_function("full", |b| {
            b.iter(|| full(black_box(&body), &policy, &memo, &ns))
        });
        // Where the time goes (docs/performance.md, "Where the time goes"): our reading of the
        // review alone, beside the floor server's.
        g.bench_function("parse", |b| {
            b.iter(|| parse_review_for(Endpoint::Mutate, black_box(&body)).is_ok())
        });
        g.bench_function("serde-parse", |b| {
            b.iter(|| parse_review_serde(black_box(&body), Purpose::Mutation).is_ok())
        });
        g.bench_function("floor-parse", |b| {
            b.iter(|| {
                serde_json::from_slice::<support::UidOnly>(black_box(&body))
                    .map(|r| r.request.uid.len())
                    .ok()
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
