//! Health, readiness, metrics, start-up errors, slow clients and graceful shutdown.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use vespa_tls_webhook::namespace_view::NamespaceSource;
use vespa_tls_webhook::policy_watch::PolicySource;
use vespa_tls_webhook::server::{Server, ServerConfig};

use crate::fixtures::{user_vespaset, vespaset_review};
use crate::support::{
    Ca, Harness, Options, RawResponse, crypto, metric, metric_line, post_head, read_response,
    read_until_close,
};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let h = Harness::start(Options {
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    assert_eq!(h.get("/healthz").await, (200, "ok".to_string()));
    assert_eq!(h.get("/readyz").await, (200, "ok".to_string()));
    let m = h.metrics().await;
    for name in [
        "vespa_tls_webhook_admission_duration_seconds_bucket{le=\"0.00005\",endpoint=\"mutate\"}",
        "vespa_tls_webhook_certificate_expiry_timestamp_seconds ",
        "vespa_tls_webhook_certificate_reloads_total{result=\"failure\"} 0",
        "vespa_tls_webhook_policy_reloads_total{result=\"success\"} 0",
        "vespa_tls_webhook_namespace_view_synced 1",
    ] {
        assert!(m.contains(name), "metrics lack {name}:\n{m}");
    }

    // The plain-HTTP listener serves the same pages, and no admission.
    let plain = reqwest::Client::new();
    let base = format!("http://{}", h.metrics_addr.unwrap());
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/mutate", 404),
    ] {
        let r = if path == "/mutate" {
            plain
                .post(format!("{base}{path}"))
                .body("{}")
                .send()
                .await
                .unwrap()
        } else {
            plain.get(format!("{base}{path}")).send().await.unwrap()
        };
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    let r = plain.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );

    // One decision counted with its labels.
    h.admit(
        "/mutate",
        &vespaset_review(user_vespaset(), "vespa", "CREATE"),
    )
    .await;
    let m = h.metrics().await;
    assert!(
        m.contains(r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="VespaSet",operation="CREATE",decision="allowed",reason="injected"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn an_expired_certificate_fails_readiness() {
    let h = Harness::start(Options {
        pair: Some(Ca::new().expired_leaf()),
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    let base = format!("http://{}", h.metrics_addr.unwrap());
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let reason = r.text().await.unwrap();
    assert!(reason.contains("expired"), "{reason}");
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // notAfter 2020-01-01T00:00:00Z
    assert!(
        m.contains("vespa_tls_webhook_certificate_expiry_timestamp_seconds 1577836800"),
        "{m}"
    );
}

#[tokio::test]
async fn start_up_errors_name_the_flag() {
    crypto();
    let dir = tempfile::tempdir().unwrap();
    let pair = Ca::new().leaf();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &pair.cert).unwrap();
    std::fs::write(&key, &pair.key).unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "garbage").unwrap();
    let config = || {
        let mut c = ServerConfig::new("127.0.0.1:0".parse().unwrap(), cert.clone(), key.clone());
        c.namespaces = NamespaceSource::Fixed(Vec::new());
        c
    };
    let error = |c: ServerConfig| async move { Server::start(c).await.unwrap_err().to_string() };

    let mut c = config();
    c.tls_cert = dir.path().join("missing.crt");
    assert!(error(c).await.starts_with("--tls-cert "), "missing cert");
    let mut c = config();
    c.tls_key = garbage.clone();
    let e = error(c).await;
    assert!(
        e.starts_with(&format!("--tls-key {}", garbage.display())),
        "{e}"
    );
    let mut c = config();
    c.tls_key = dir.path().join("other.key");
    std::fs::write(&c.tls_key, Ca::new().leaf().key).unwrap();
    let e = error(c).await;
    assert!(e.contains("does not match"), "{e}");
    let mut c = config();
    c.policy = PolicySource {
        path: Some(garbage.clone()),
        webhook_namespace: None,
    };
    let e = error(c).await;
    assert!(e.starts_with("--policy "), "{e}");
    let mut c = config();
    c.namespaces = NamespaceSource::File(dir.path().join("missing.yaml"));
    let e = error(c).await;
    assert!(e.starts_with("--namespaces "), "{e}");
    let mut c = config();
    c.namespaces = NamespaceSource::Cluster {
        kubeconfig: Some(garbage.clone()),
    };
    let e = error(c).await;
    assert!(e.starts_with("--kubeconfig "), "{e}");

    let running = Server::start(config()).await.unwrap();
    let mut c = config();
    c.addr = running.local_addr();
    let e = error(c).await;
    assert!(e.starts_with("--addr "), "{e}");
    assert!(running.shutdown().await);
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let h = Harness::start(Options {
        read_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // Headers that never finish.
    let mut tls = h.tls_connect().await.unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let answer = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "headers: closed after {took:?}: {answer}"
    );

    // A body that never finishes.
    let mut tls = h.tls_connect().await.unwrap();
    tls.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"apiVersion\"",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let answer = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took < Duration::from_millis(2500),
        "body: closed after {took:?}"
    );

    // A new connection that sends nothing at all.
    let mut tls = h.tls_connect().await.unwrap();
    let start = Instant::now();
    let answer = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(answer.is_empty(), "{answer}");
    assert!(
        took < Duration::from_millis(2500),
        "silent: closed after {took:?}"
    );

    // Headers that stall on a keep-alive connection that was idle for longer than
    // the read timeout: their deadline runs from their first byte.
    let mut tls = h.tls_connect().await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut tls).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tls.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let answer = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(answer.is_empty(), "{answer}");
    assert!(
        took > Duration::from_millis(800) && took < Duration::from_millis(2500),
        "stalled headers after idle: closed after {took:?}"
    );

    let response = h
        .admit(
            "/mutate",
            &vespaset_review(user_vespaset(), "vespa", "CREATE"),
        )
        .await;
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn graceful_shutdown_completes_the_in_flight_request() {
    let mut h = Harness::start(Options::default()).await;
    let body = serde_json::to_vec(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut tls = h.tls_connect().await.unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let server = h.take_server();
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the in-flight request"
    );
    assert!(
        tokio::net::TcpStream::connect(h.addr).await.is_err(),
        "still accepting after shutdown began"
    );

    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_until_close(&mut tls, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"patchType\":\"JSONPatch\""), "{answer}");
    let finished = tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown completes")
        .unwrap();
    assert!(finished, "every connection finished");
}

/// One response on a kept-alive connection, within 5 s.
async fn response(tls: &mut TlsStream<TcpStream>) -> RawResponse {
    read_response(tls, Duration::from_secs(5))
        .await
        .expect("a response within 5 s")
}

/// The apiserver keeps an idle connection 90 s and does not retry a POST that
/// fails because the webhook closed it at that moment: a keep-alive connection
/// outlives the read timeout while idle and is closed at the idle timeout.
#[tokio::test]
async fn idle_keep_alive_connections_last_until_the_idle_timeout() {
    let h = Harness::start(Options {
        read_timeout: Duration::from_secs(1),
        idle_timeout: Some(Duration::from_secs(3)),
        ..Options::default()
    })
    .await;
    let body = serde_json::to_vec(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    let head = post_head("/mutate", body.len());
    let mut tls = h.tls_connect().await.unwrap();
    for round in 0..2 {
        // Idle for twice the read timeout before the second review.
        if round == 1 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        tls.write_all(&head).await.unwrap();
        tls.write_all(&body).await.unwrap();
        tls.flush().await.unwrap();
        let answer = response(&mut tls).await;
        let text = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 200, "round {round}: {text}");
        assert!(text.contains("\"patchType\":\"JSONPatch\""), "{text}");
        assert!(!answer.closes(), "{}", answer.head);
    }
    let start = Instant::now();
    let rest = read_until_close(&mut tls, Duration::from_secs(6)).await;
    let took = start.elapsed();
    assert!(rest.is_empty(), "{rest}");
    assert!(
        took > Duration::from_millis(2500) && took < Duration::from_millis(4500),
        "closed after {took:?} idle (idle timeout 3 s)"
    );
}

/// Idle connections are bounded: a connection arriving while the maximum are idle
/// closes the one idle longest; the others keep serving.
#[tokio::test]
async fn beyond_the_maximum_idle_connections_the_longest_idle_is_closed() {
    let h = Harness::start(Options {
        max_idle_connections: Some(2),
        ..Options::default()
    })
    .await;
    let healthz = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut tls = h.tls_connect().await.unwrap();
        tls.write_all(healthz).await.unwrap();
        assert_eq!(response(&mut tls).await.status, 200);
        conns.push(tls);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The third arrived with two idle: the first was closed.
    let start = Instant::now();
    let rest = read_until_close(&mut conns[0], Duration::from_secs(2)).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the first stays open"
    );
    for tls in &mut conns[1..] {
        tls.write_all(healthz).await.unwrap();
        assert_eq!(response(tls).await.status, 200);
    }
    // The scrape's own connection arrives with two idle: a second one is closed.
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("vespa_tls_webhook_idle_connections_closed_total 2\n"),
        "{metrics}"
    );
}

/// Open connections are bounded per listener: with the maximum open, an idle one
/// is closed to make room; with none idle the new one is refused before its
/// handshake, and served again once one ends. The metrics listener has bounds of
/// its own, so it answers throughout.
#[tokio::test]
async fn beyond_the_maximum_open_connections_an_idle_one_makes_room_else_new_ones_are_refused() {
    let h = Harness::start(Options {
        max_connections: Some(2),
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    let healthz = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";
    // One idle TLS connection and one busy (connected, no handshake yet).
    let mut idle = h.tls_connect().await.unwrap();
    idle.write_all(healthz).await.unwrap();
    assert_eq!(response(&mut idle).await.status, 200);
    let busy = TcpStream::connect(h.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third closes the idle one and is served.
    let mut third = h.tls_connect().await.unwrap();
    let rest = read_until_close(&mut idle, Duration::from_secs(2)).await;
    assert!(rest.is_empty(), "{rest}");
    third.write_all(healthz).await.unwrap();
    assert_eq!(response(&mut third).await.status, 200);
    // Now the busy one and `third` (idle) are open: a fourth closes `third`; then
    // with both open connections busy, a fifth is refused before its handshake.
    let busy2 = TcpStream::connect(h.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = h.tls_connect().await;
    assert!(refused.is_err(), "refused with the maximum open and busy");
    let metrics = metrics_on(&h).await;
    assert!(
        metrics.contains("vespa_tls_webhook_connections_refused_total 1\n"),
        "{metrics}"
    );
    // Five reached the admission port, the refused one among them; the scrape's
    // own connection, on the metrics port, is not counted.
    assert!(
        metrics.contains("vespa_tls_webhook_connections_accepted_total 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vespa_tls_webhook_idle_connections_closed_total 2\n"),
        "{metrics}"
    );
    for (state, n) in [("open", 2), ("idle", 0)] {
        assert!(
            metrics.contains(&format!(
                "vespa_tls_webhook_connections{{state=\"{state}\"}} {n}\n"
            )),
            "{state}: {metrics}"
        );
    }
    // A connection that ends leaves room.
    drop((busy, busy2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = h.tls_connect().await.unwrap();
    again.write_all(healthz).await.unwrap();
    assert_eq!(response(&mut again).await.status, 200);
}

/// Connections are counted as they are accepted, not per request: requests on a
/// keep-alive connection add nothing, a new connection adds one.
#[tokio::test]
async fn accepted_connections_are_counted_once_each_however_many_requests_they_carry() {
    let h = Harness::start(Options {
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    const ACCEPTED: &str = "vespa_tls_webhook_connections_accepted_total";
    let accepted = |metrics: &str| metric(metrics, ACCEPTED);
    // `metric` reads a missing line as 0: the counter must be there, at 0.
    let before = metrics_on(&h).await;
    assert_eq!(metric_line(&before, ACCEPTED), Some(0.0), "{before}");
    let body = serde_json::to_vec(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    let head = post_head("/mutate", body.len());
    let mut tls = h.tls_connect().await.unwrap();
    for round in 0..3 {
        tls.write_all(&head).await.unwrap();
        tls.write_all(&body).await.unwrap();
        let answer = response(&mut tls).await;
        assert_eq!(answer.status, 200, "round {round}");
        assert!(!answer.closes(), "{}", answer.head);
    }
    assert_eq!(accepted(&metrics_on(&h).await), 1.0);
    let mut second = h.tls_connect().await.unwrap();
    second.write_all(&head).await.unwrap();
    second.write_all(&body).await.unwrap();
    assert_eq!(response(&mut second).await.status, 200);
    assert_eq!(accepted(&metrics_on(&h).await), 2.0);
}

/// `/metrics` from the metrics listener.
async fn metrics_on(h: &Harness) -> String {
    let addr = h.metrics_addr.expect("a metrics listener");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    response.text().await.unwrap()
}

/// The apiserver never resumes a TLS session, so the server offers none: it
/// sends no TLS 1.3 tickets, and a client that kept the first connection's
/// session (a TLS 1.2 session ID) still gets a full handshake on the next one.
#[tokio::test]
async fn no_session_is_resumed() {
    let h = Harness::start(Options::default()).await;
    let body = serde_json::to_vec(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut config = h.ca.client_config_for(&[version]);
        config.resumption = rustls::client::Resumption::in_memory_sessions(16);
        let config = std::sync::Arc::new(config);
        for attempt in 0..2 {
            let mut tls = h.tls_connect_with(config.clone()).await.unwrap();
            assert_eq!(
                tls.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full),
                "{version:?}, connection {attempt}"
            );
            // A whole exchange, so that a ticket sent after the handshake
            // would be read and kept.
            tls.write_all(&post_head("/mutate", body.len()))
                .await
                .unwrap();
            tls.write_all(&body).await.unwrap();
            assert_eq!(response(&mut tls).await.status, 200);
            assert_eq!(tls.get_ref().1.tls13_tickets_received(), 0, "{version:?}");
        }
    }
}

/// The server takes the client's first cipher suite. The apiserver (Go's
/// `crypto/tls`) offers AES-128-GCM-SHA256 first, whose key schedule hashes
/// with SHA-256; a server that imposed rustls's own order would make every
/// handshake hash with SHA-384 instead, which ring computes without the CPU's
/// SHA extensions (docs/performance.md, "The client's cipher suites").
#[tokio::test]
async fn the_client_s_first_cipher_suite_is_taken() {
    use rustls::CipherSuite::*;
    use rustls::crypto::ring::cipher_suite as suite;
    let h = Harness::start(Options::default()).await;
    let cases = [
        (
            "Go on a CPU with AES instructions, as the apiserver",
            vec![
                suite::TLS13_AES_128_GCM_SHA256,
                suite::TLS13_AES_256_GCM_SHA384,
                suite::TLS13_CHACHA20_POLY1305_SHA256,
            ],
            TLS13_AES_128_GCM_SHA256,
        ),
        (
            "rustls's default order",
            vec![
                suite::TLS13_AES_256_GCM_SHA384,
                suite::TLS13_AES_128_GCM_SHA256,
                suite::TLS13_CHACHA20_POLY1305_SHA256,
            ],
            TLS13_AES_256_GCM_SHA384,
        ),
        (
            "Go without AES instructions",
            vec![
                suite::TLS13_CHACHA20_POLY1305_SHA256,
                suite::TLS13_AES_128_GCM_SHA256,
                suite::TLS13_AES_256_GCM_SHA384,
            ],
            TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS 1.2, AES-128 first",
            vec![
                suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ],
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
    ];
    for (client, order, expected) in cases {
        // A client speaking only the version of its first suite.
        let versions = [order[0].version()];
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = order;
        let config = h.ca.client_config_with(provider, &versions);
        let tls = h
            .tls_connect_with(std::sync::Arc::new(config))
            .await
            .unwrap();
        let chosen = tls.get_ref().1.negotiated_cipher_suite().map(|s| s.suite());
        assert_eq!(chosen, Some(expected), "{client}");
    }
}
