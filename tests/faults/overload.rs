//! More admission requests than the webhook takes at once: the overflow waits up to
//! a second for room, then gets 503 with the reason; many large reviews at once
//! stay within the container's 128 MiB; connections beyond `--max-connections`
//! are refused.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::common::{
    Conn, Webhook, metric, mutate_enabled, post_head, read_response, send, serial,
};
use crate::fixtures::{big_vespaset, vespaset_review};
use crate::support::eventually;

const OPEN: &str = r#"vespa_tls_webhook_connections{state="open"}"#;
const IN_FLIGHT: &str = "vespa_tls_webhook_admission_in_flight";

/// Waits (up to 5 s) until the server's own gauge `series` reads `value`, so a test
/// goes on from a state the server has seen rather than after a guessed sleep.
async fn until_gauge(w: &Webhook, series: &str, value: f64) {
    eventually(
        &format!("{series} == {value}"),
        Duration::from_secs(5),
        || async { metric(&w.metrics().await, series) == value },
    )
    .await;
}

const OVERLOADED: &str = r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="unknown",operation="unknown",decision="error",reason="overloaded"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_requests_beyond_max_in_flight_wait_then_get_503() {
    let _serial = serial().await;
    let w = Webhook::start(&["--max-in-flight", "4", "--read-timeout-secs", "5"]).await;
    let body = mutate_enabled().body;
    let (first, rest) = body.split_at(body.len() / 2);

    // Four requests hold every slot (their bodies half sent).
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut tls = w.tls_connect().await;
        send(&mut tls, &post_head("/mutate", body.len())).await;
        send(&mut tls, first).await;
        holders.push(tls);
    }
    until_gauge(&w, IN_FLIGHT, 4.0).await;

    // A fifth waits for room, then is told to come back.
    let client = w.client(Conn::NewPerRequest);
    let started = Instant::now();
    let r = client
        .post(w.url("/mutate"))
        .header("content-type", "application/json")
        .body(body.as_ref().clone())
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let reason = r.text().await.unwrap();
    assert!(
        reason.contains("at its limit of 4 admission requests"),
        "{reason}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "503 after {waited:?}"
    );
    assert_eq!(metric(&w.metrics().await, OVERLOADED), 1.0);

    // A sixth gets the slot freed while it waits.
    let queued = {
        let (client, url, body) = (client.clone(), w.url("/mutate"), body.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body.as_ref().clone())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, tls) in holders.iter_mut().enumerate() {
        send(tls, rest).await;
        let r = read_response(tls, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("holder {i} got no answer"));
        assert_eq!(r.status, 200, "holder {i}");
    }
    assert_eq!(queued.await.unwrap(), 200, "the queued request");
    assert_eq!(metric(&w.metrics().await, OVERLOADED), 1.0);
    until_gauge(&w, IN_FLIGHT, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_reviews_at_once_stay_within_the_memory_limit() {
    let _serial = serial().await;
    // Default limits: 64 requests, 16 MiB of bodies.
    let w = Webhook::start(&[]).await;
    let hwm_start = w.status_kib("VmHWM");
    let big =
        serde_json::to_vec(&vespaset_review(big_vespaset(24_000), "vespa", "CREATE")).unwrap();
    assert!(big.len() > 3 * 1024 * 1024);
    const AT_ONCE: usize = 32;
    let client = w.client(Conn::NewPerRequest);
    let started = Instant::now();
    let answers = join_all((0..AT_ONCE).map(|_| {
        let (client, url, big) = (client.clone(), w.url("/mutate"), big.clone());
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(big)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            let text = r.text().await.map_err(|e| format!("{e:?}"))?;
            Ok::<_, String>((status, text))
        }
    }))
    .await;
    let took = started.elapsed();
    let hwm = w.status_kib("VmHWM");
    let (mut ok, mut overloaded) = (0, 0);
    for a in &answers {
        match a {
            Ok((200, text)) if text.contains("\"patchType\":\"JSONPatch\"") => ok += 1,
            Ok((503, text)) if text.contains("at its limit") => overloaded += 1,
            other => panic!("neither injected nor overloaded: {other:?}"),
        }
    }
    eprintln!(
        "{AT_ONCE} reviews of {} KiB at once: {ok} injected, {overloaded} told to retry, in {took:?}; VmHWM {hwm_start} KiB at start, {hwm} KiB after",
        big.len() / 1024
    );
    // 16 MiB of bodies hold at least four such reviews at once.
    assert!(ok >= 4, "only {ok} injected");
    assert!(
        hwm < 128 * 1024,
        "VmHWM {hwm} KiB: beyond the container's 128 MiB"
    );
    // And it still serves.
    let r = w
        .client(Conn::KeepAlive)
        .post(w.url("/mutate"))
        .body(mutate_enabled().body.as_ref().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// More connections than `--max-connections`, none idle: the next is closed
/// before its handshake and counted; the metrics listener, bounded on its own,
/// answers meanwhile; once the holders go, reviews are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_until_one_ends() {
    let _serial = serial().await;
    let w = Webhook::start(&["--max-connections", "4", "--read-timeout-secs", "10"]).await;
    // `start` waited for /readyz on connections that end once the server sees them go.
    until_gauge(&w, OPEN, 0.0).await;
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(tokio::net::TcpStream::connect(w.addr).await.unwrap());
    }
    until_gauge(&w, OPEN, 4.0).await;
    let client = w.client(Conn::NewPerRequest);
    let req = mutate_enabled();
    let post = || {
        client
            .post(w.url(req.path))
            .header("content-type", "application/json")
            .body(req.body.as_ref().clone())
            .send()
    };
    let refused = post().await;
    assert!(
        refused.is_err(),
        "served with 4 connections open: {refused:?}"
    );
    let metrics = w.metrics().await;
    assert_eq!(
        metric(&metrics, "vespa_tls_webhook_connections_refused_total"),
        1.0,
        "{metrics}"
    );
    drop(holders);
    until_gauge(&w, OPEN, 0.0).await;
    let r = post().await.unwrap();
    let status = r.status().as_u16();
    let answer: serde_json::Value = r.json().await.unwrap();
    (req.check)(status, &answer).unwrap();
}

/// A flood of TLS connections, each holding a request's first header line: at
/// most `--max-connections` get through their handshake, the rest are refused and
/// counted, and the server's memory grows by what the admitted ones hold, not by
/// the flood (without the bound, 1,000 such connections grew it by 32 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_is_bounded_by_max_connections() {
    let _serial = serial().await;
    let w = Webhook::start(&["--max-connections", "64", "--read-timeout-secs", "60"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_start = w.status_kib("VmRSS");
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        match w.try_tls_connect().await {
            Ok(mut tls) => {
                send(&mut tls, b"POST /mutate HTTP/1.1\r\nhost: x\r\n").await;
                held.push(tls);
            }
            Err(_) => refused += 1,
        }
    }
    let rss_growth_kib = w.status_kib("VmRSS").saturating_sub(rss_start);
    assert!(held.len() <= 64, "{} connections got through", held.len());
    assert!(
        held.len() >= 60,
        "only {} connections got through",
        held.len()
    );
    assert_eq!(refused, 1000 - held.len());
    let metrics = w.metrics().await;
    assert_eq!(
        metric(&metrics, "vespa_tls_webhook_connections_refused_total"),
        refused as f64,
        "{metrics}"
    );
    assert!(
        rss_growth_kib < 12 * 1024,
        "RSS grew by {rss_growth_kib} KiB for {} admitted connections",
        held.len()
    );
    assert_eq!(
        metric(&metrics, r#"vespa_tls_webhook_connections{state="open"}"#),
        held.len() as f64
    );
}
