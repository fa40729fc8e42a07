//! SIGTERM to the real binary under load: requests in flight complete, every
//! keep-alive connection is told `Connection: close` (or closed a read timeout
//! after the signal), new connections are refused, and the process exits well within the
//! 30 s grace period.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::common::{
    Conn, Load, Webhook, closed_within, mutate_enabled, post_head, read_response, send, serial,
    validate_enforced_denied,
};

/// `--read-timeout-secs` of the server under test: how long after the signal an idle
/// keep-alive connection is kept for a last request.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_in_flight_requests_and_closes_keep_alive() {
    let _serial = serial().await;
    let mut w = Webhook::start(&["--read-timeout-secs", "3"]).await;
    let load = Load::start(
        &w.base(),
        || w.ca.client_config(),
        &[Conn::KeepAlive, Conn::KeepAlive, Conn::NewPerRequest],
        &[mutate_enabled(), validate_enforced_denied()],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let body = mutate_enabled().body;
    let (first, rest) = body.split_at(body.len() / 2);
    // In flight at the signal: headers and half the body sent.
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        let mut tls = w.tls_connect().await;
        send(&mut tls, &post_head("/mutate", body.len())).await;
        send(&mut tls, first).await;
        in_flight.push(tls);
    }
    // Idle keep-alive connections: one used again after the signal, one never.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut tls = w.tls_connect().await;
        send(&mut tls, &post_head("/mutate", body.len())).await;
        send(&mut tls, &body).await;
        let r = read_response(&mut tls, Duration::from_secs(5))
            .await
            .expect("an answer");
        assert_eq!(r.status, 200);
        assert!(!r.closes(), "closed before any signal: {}", r.head);
        idle.push(tls);
    }
    let mut unused = idle.pop().unwrap();
    let mut reused = idle.pop().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    w.sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New connections are refused at once.
    assert!(
        TcpStream::connect(w.addr).await.is_err(),
        "still accepting 300 ms after SIGTERM"
    );
    // The requests in flight complete, answered with `Connection: close`.
    for (i, tls) in in_flight.iter_mut().enumerate() {
        send(tls, rest).await;
        let r = read_response(tls, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("in-flight request {i} got no answer"));
        assert_eq!(r.status, 200, "in-flight request {i}");
        assert!(String::from_utf8_lossy(&r.body).contains("\"patchType\":\"JSONPatch\""));
        assert!(r.closes(), "in-flight request {i}: {}", r.head);
        assert!(
            closed_within(tls, Duration::from_secs(1)).await.0,
            "connection {i} stays open after Connection: close"
        );
    }
    // An idle keep-alive connection used after the signal is served once more.
    send(&mut reused, &post_head("/validate", body.len())).await;
    send(&mut reused, &body).await;
    let r = read_response(&mut reused, Duration::from_secs(5))
        .await
        .expect("the idle connection is served after SIGTERM");
    assert_eq!(r.status, 200);
    assert!(r.closes(), "{}", r.head);
    assert!(closed_within(&mut reused, Duration::from_secs(1)).await.0);
    // One never used again is closed a read timeout after the signal.
    let (closed, bytes) = closed_within(&mut unused, READ_TIMEOUT + Duration::from_secs(2)).await;
    assert!(closed && bytes.is_empty(), "idle connection: {bytes:?}");

    let status = w
        .wait_exit(Duration::from_secs(25))
        .await
        .unwrap_or_else(|| panic!("no exit within 25 s of SIGTERM:\n{}", w.log_tail(30)));
    let exit_after = signalled.elapsed();
    let stats = load.stop().await;
    let failures = stats.failures();
    eprintln!(
        "sigterm: exit {status} after {exit_after:?}; load: {} ok, {} answers with Connection: close, {} refused after the signal",
        stats.ok(),
        stats.closing.load(std::sync::atomic::Ordering::Relaxed),
        failures.len()
    );
    assert!(status.success(), "exit status {status}");
    // Idle connections end a read timeout after the signal; nothing else holds it up.
    assert!(
        exit_after < READ_TIMEOUT + Duration::from_secs(3),
        "exit took {exit_after:?}"
    );
    assert!(stats.ok() > 0);
    // Nothing failed before the signal, and after it only new connections were
    // refused: no request was cut off on an open connection. (A request may start
    // a moment before the signal and connect after the listener closed.)
    for f in &failures {
        assert!(
            f.connect && f.started + Duration::from_millis(100) >= signalled,
            "a request failed that the server had accepted: {f:#?}"
        );
    }
    // Both keep-alive loops were told to go elsewhere.
    assert!(
        stats.closing.load(std::sync::atomic::Ordering::Relaxed) >= 2,
        "keep-alive loops never saw Connection: close"
    );
}
