//! Prometheus metrics (`GET /metrics`, OpenMetrics text).
//!
//! | metric | labels |
//! |---|---|
//! | `vespa_tls_webhook_admission_requests_total` | `endpoint`, `kind`, `operation`, `decision` (`allowed`/`denied`/`error`), `reason` |
//! | `vespa_tls_webhook_admission_duration_seconds` (histogram) | `endpoint` |
//! | `vespa_tls_webhook_certificate_expiry_timestamp_seconds` | |
//! | `vespa_tls_webhook_certificate_reloads_total` | `result` (`success`/`failure`) |
//! | `vespa_tls_webhook_policy_reloads_total` | `result` |
//! | `vespa_tls_webhook_namespaces_file_reloads_total` | `result` |
//! | `vespa_tls_webhook_namespace_view_synced` | |
//! | `vespa_tls_webhook_namespace_view_last_success_timestamp_seconds` | |
//! | `vespa_tls_webhook_readiness` (1 passing, 0 failing; refreshed on each `/readyz` and scrape) | `check` (`certificate`, `namespace_view_synced`, `namespace_view_fresh`) |
//! | `vespa_tls_webhook_admission_in_flight` | |
//! | `vespa_tls_webhook_idle_connections_closed_total` (to stay within `--max-idle-connections` or `--max-connections`) | |
//! | `vespa_tls_webhook_connections_refused_total` (`--max-connections` open and none idle) | |
//! | `vespa_tls_webhook_connections` (the admission port's, refreshed on each scrape) | `state` (`open`, `idle`) |
//! | `vespa_tls_webhook_connections_accepted_total` (the admission port's, before `--max-connections` and the TLS handshake) | |
//!
//! Every label value is a `&'static str` from a small fixed set, so a request
//! costs a hash lookup under a read lock and no allocation, and no client can
//! grow the label space.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::admission::{Decision, Review};
use crate::target::Kind;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram buckets for admission latency: 50 µs to 1 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// The outcome of an admission request, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered `allowed: true`.
    Allowed,
    /// Answered `allowed: false`.
    Denied,
    /// Not answered with a decision (400, 413, 408, 500) or failed closed because
    /// the namespace could not be read.
    Error,
}

impl Outcome {
    /// The `decision` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    kind: &'static str,
    operation: &'static str,
    decision: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    check: &'static str,
}

/// The readiness checks, as the `check` label of `vespa_tls_webhook_readiness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadinessCheck {
    /// A serving certificate is loaded and has not expired.
    Certificate,
    /// The namespace view has had its first complete list.
    NamespaceViewSynced,
    /// The namespace view has heard from the apiserver within its staleness bound.
    NamespaceViewFresh,
}

impl ReadinessCheck {
    /// Every check.
    pub const ALL: [ReadinessCheck; 3] = [
        ReadinessCheck::Certificate,
        ReadinessCheck::NamespaceViewSynced,
        ReadinessCheck::NamespaceViewFresh,
    ];

    /// The `check` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadinessCheck::Certificate => "certificate",
            ReadinessCheck::NamespaceViewSynced => "namespace_view_synced",
            ReadinessCheck::NamespaceViewFresh => "namespace_view_fresh",
        }
    }
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

/// The webhook's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    certificate_expiry: Gauge,
    certificate_reloads: Family<ResultLabels, Counter>,
    policy_reloads: Family<ResultLabels, Counter>,
    namespaces_reloads: Family<ResultLabels, Counter>,
    namespace_view_synced: Gauge,
    namespace_view_last_success: Gauge,
    readiness: Family<CheckLabels, Gauge>,
    in_flight: Gauge,
    idle_connections_closed: Counter,
    connections_refused: Counter,
    connections: Family<StateLabels, Gauge>,
    connections_accepted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Register `metric` under `name` with its help text, and return it to keep.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn new_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "success" } else { "failure" },
    }
}

/// The `kind` label for a review: one of the kinds the webhook knows, else `other`.
pub fn kind_label(review: &Review) -> &'static str {
    let k = &review.request.kind;
    Kind::from_group_kind(&k.group, &k.kind).map_or("other", Kind::as_str)
}

/// The `operation` label for a review (`other` for anything unexpected).
pub fn operation_label(review: &Review) -> &'static str {
    match review.request.operation.as_str() {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// How a decision is counted: `namespace-unavailable` is an error (the webhook
/// failed closed), otherwise allowed or denied.
pub fn outcome(decision: &Decision) -> Outcome {
    if decision.allowed {
        Outcome::Allowed
    } else if decision.reason == "namespace-unavailable" {
        Outcome::Error
    } else {
        Outcome::Denied
    }
}

impl Metrics {
    /// Register every metric (all at zero; the reload counters and the request
    /// histograms are pre-created so dashboards see them before the first event).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vespa_tls_webhook");
        let requests = registered(
            &mut registry,
            "admission_requests",
            "Admission requests answered, by endpoint, kind, operation, decision and reason",
            Family::<RequestLabels, Counter>::default(),
        );
        let duration: HistogramFamily = registered(
            &mut registry,
            "admission_duration_seconds",
            "Time from the start of reading an admission request to its answer",
            Family::new_with_constructor(new_histogram),
        );
        let certificate_expiry = registered(
            &mut registry,
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use (Unix seconds)",
            Gauge::default(),
        );
        let certificate_reloads = registered(
            &mut registry,
            "certificate_reloads",
            "Serving certificate reloads after the files changed, by result",
            Family::<ResultLabels, Counter>::default(),
        );
        let policy_reloads = registered(
            &mut registry,
            "policy_reloads",
            "Cluster policy reloads after the file changed, by result",
            Family::<ResultLabels, Counter>::default(),
        );
        let namespaces_reloads = registered(
            &mut registry,
            "namespaces_file_reloads",
            "--namespaces file reloads after the file changed, by result",
            Family::<ResultLabels, Counter>::default(),
        );
        let namespace_view_synced = registered(
            &mut registry,
            "namespace_view_synced",
            "1 once the namespace view has its first complete list of namespaces",
            Gauge::default(),
        );
        let namespace_view_last_success = registered(
            &mut registry,
            "namespace_view_last_success_timestamp_seconds",
            "When the namespace view last had a watch event or a complete list from the apiserver (Unix seconds; 0 without a cluster)",
            Gauge::default(),
        );
        let readiness = registered(
            &mut registry,
            "readiness",
            "Readiness checks (1 passing, 0 failing), as of the last /readyz or scrape; /readyz says why",
            Family::<CheckLabels, Gauge>::default(),
        );
        let in_flight = registered(
            &mut registry,
            "admission_in_flight",
            "Admission requests being read or decided now (bounded by --max-in-flight)",
            Gauge::default(),
        );
        let idle_connections_closed = registered(
            &mut registry,
            "idle_connections_closed",
            "Idle keep-alive connections closed because another connection arrived while --max-idle-connections were idle or --max-connections open",
            Counter::default(),
        );
        let connections_refused = registered(
            &mut registry,
            "connections_refused",
            "Connections closed as soon as accepted because --max-connections were open and none was idle",
            Counter::default(),
        );
        let connections = registered(
            &mut registry,
            "connections",
            "Connections open on the admission port, and how many of them idle (at the last scrape)",
            Family::<StateLabels, Gauge>::default(),
        );
        for state in ["open", "idle"] {
            let _ = connections.get_or_create(&StateLabels { state });
        }
        // Against the requests counted per decision: how often the apiserver
        // opens a connection instead of reusing one (each costs a TLS handshake).
        let connections_accepted = registered(
            &mut registry,
            "connections_accepted",
            "Connections accepted on the admission port, counted before --max-connections and the TLS handshake",
            Counter::default(),
        );
        for ok in [true, false] {
            let _ = certificate_reloads.get_or_create(&result(ok));
            let _ = policy_reloads.get_or_create(&result(ok));
        }
        for check in ReadinessCheck::ALL {
            let _ = readiness.get_or_create(&CheckLabels {
                check: check.as_str(),
            });
        }
        for endpoint in ["mutate", "validate"] {
            let _ = duration.get_or_create(&EndpointLabels { endpoint });
        }
        Metrics {
            registry,
            requests,
            duration,
            certificate_expiry,
            certificate_reloads,
            policy_reloads,
            namespaces_reloads,
            namespace_view_synced,
            namespace_view_last_success,
            readiness,
            in_flight,
            idle_connections_closed,
            connections_refused,
            connections,
            connections_accepted,
        }
    }

    /// The counter of connections accepted on the admission port, for its
    /// accept loop.
    pub fn connections_accepted(&self) -> Counter {
        self.connections_accepted.clone()
    }

    /// The counter of idle connections closed to make room, for the
    /// [`crate::conn_timer::ConnLimit`] that closes them.
    pub fn idle_connections_closed(&self) -> Counter {
        self.idle_connections_closed.clone()
    }

    /// The counter of connections refused, for the
    /// [`crate::conn_timer::ConnLimit`] that refuses them.
    pub fn connections_refused(&self) -> Counter {
        self.connections_refused.clone()
    }

    /// The admission port's connections: open, and idle among them.
    pub fn set_connections(&self, open: usize, idle: usize) {
        for (state, n) in [("open", open), ("idle", idle)] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.connections
                .get_or_create(&StateLabels { state })
                .set(n);
        }
    }

    /// Count one admission request and observe its latency.
    pub fn admission(
        &self,
        endpoint: &'static str,
        kind: &'static str,
        operation: &'static str,
        decision: Outcome,
        reason: &'static str,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                kind,
                operation,
                decision: decision.as_str(),
                reason,
            })
            .inc();
        self.duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Set the serving certificate's notAfter (Unix seconds).
    pub fn set_certificate_expiry(&self, not_after_unix: i64) {
        self.certificate_expiry.set(not_after_unix);
    }

    /// Count a certificate reload attempt.
    pub fn certificate_reload(&self, ok: bool) {
        self.certificate_reloads.get_or_create(&result(ok)).inc();
    }

    /// Count a policy reload attempt.
    pub fn policy_reload(&self, ok: bool) {
        self.policy_reloads.get_or_create(&result(ok)).inc();
    }

    /// Count a `--namespaces` file reload attempt.
    pub fn namespaces_reload(&self, ok: bool) {
        self.namespaces_reloads.get_or_create(&result(ok)).inc();
    }

    /// Whether the namespace view has synced.
    pub fn set_namespace_view_synced(&self, synced: bool) {
        self.namespace_view_synced.set(i64::from(synced));
    }

    /// When the namespace view last heard from the apiserver (Unix seconds).
    pub fn set_namespace_view_last_success(&self, unix_seconds: i64) {
        self.namespace_view_last_success.set(unix_seconds);
    }

    /// Record the outcome of a readiness check.
    pub fn set_readiness(&self, check: ReadinessCheck, passing: bool) {
        self.readiness
            .get_or_create(&CheckLabels {
                check: check.as_str(),
            })
            .set(i64::from(passing));
    }

    /// One more admission request in flight; it ends when the guard is dropped.
    pub fn admission_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// The registry in OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; an encoder error would leave a partial
        // page, which a scraper rejects as a whole, so it is only logged.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// Counts one admission request in flight while alive.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_names() {
        let m = Metrics::new();
        m.admission(
            "mutate",
            "VespaSet",
            "CREATE",
            Outcome::Allowed,
            "injected",
            Duration::from_micros(120),
        );
        m.certificate_reload(false);
        m.set_certificate_expiry(1_900_000_000);
        m.set_namespace_view_synced(true);
        m.set_readiness(ReadinessCheck::Certificate, false);
        let guard = m.admission_started();
        let text = m.encode();
        drop(guard);
        assert!(
            m.encode()
                .contains("vespa_tls_webhook_admission_in_flight 0\n")
        );
        for needle in [
            r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="VespaSet",operation="CREATE",decision="allowed",reason="injected"} 1"#,
            r#"vespa_tls_webhook_admission_duration_seconds_bucket{le="0.00025",endpoint="mutate"} 1"#,
            "vespa_tls_webhook_certificate_expiry_timestamp_seconds 1900000000",
            r#"vespa_tls_webhook_certificate_reloads_total{result="failure"} 1"#,
            r#"vespa_tls_webhook_policy_reloads_total{result="failure"} 0"#,
            "vespa_tls_webhook_namespace_view_synced 1",
            r#"vespa_tls_webhook_readiness{check="certificate"} 0"#,
            r#"vespa_tls_webhook_readiness{check="namespace_view_fresh"} 0"#,
            "vespa_tls_webhook_admission_in_flight 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
