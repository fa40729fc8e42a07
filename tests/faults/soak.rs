//! A soak at a fixed rate against the real binary: no error, and no memory growth
//! after warm-up (VmRSS at 100% of the run within 5% of VmRSS at 20%).
//!
//! `VTW_SOAK_SECS` (default 60; 600 is the full 10-minute soak of issue 6) and
//! `VTW_SOAK_RATE` (requests per second, default 200).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::common::{
    Conn, Req, Webhook, env_secs, mutate_enabled, mutate_plain_untouched, serial,
    validate_enforced_denied,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_soak_has_no_errors_and_no_memory_growth() {
    let _serial = serial().await;
    let run = env_secs("VTW_SOAK_SECS", 60);
    let rate: u64 = std::env::var("VTW_SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let w = Webhook::start(&[]).await;
    let keep_alive = w.client(Conn::KeepAlive);
    let fresh = w.client(Conn::NewPerRequest);
    let requests = [
        mutate_enabled(),
        validate_enforced_denied(),
        mutate_plain_untouched(),
    ];
    let base = w.base();
    let failures = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    // Open loop: a request every 1/rate s whatever the answers do; more than 256
    // outstanding means the webhook cannot keep up, which is a failure too.
    let outstanding = Arc::new(Semaphore::new(256));
    let total = rate * run.as_secs();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let (mut rss_warm, mut lagging) = (None, 0u64);
    let mut samples = Vec::new();
    let mut last_sample = Instant::now();
    for n in 0..total {
        ticker.tick().await;
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            lagging += 1;
            continue;
        };
        // One request in 20 on a new connection.
        let client = if n.is_multiple_of(20) {
            fresh.clone()
        } else {
            keep_alive.clone()
        };
        let req: Req = requests[(n % 3) as usize].clone();
        let url = format!("{base}{}", req.path);
        let (ok, failures) = (ok.clone(), failures.clone());
        tokio::spawn(async move {
            let result = async {
                let r = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(req.body.as_ref().clone())
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let status = r.status().as_u16();
                let bytes = r.bytes().await.map_err(|e| format!("{e:?}"))?;
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                (req.check)(status, &answer)
            }
            .await;
            match result {
                Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    eprintln!("soak request failed: {e}");
                    failures.fetch_add(1, Ordering::Relaxed)
                }
            };
            drop(permit);
        });
        if rss_warm.is_none() && n >= total / 5 {
            rss_warm = Some(w.status_kib("VmRSS"));
        }
        if last_sample.elapsed() >= Duration::from_secs(5) {
            last_sample = Instant::now();
            // Scrapes are part of the load (and must not grow either).
            let m = w.metrics().await;
            assert!(m.contains("vespa_tls_webhook_admission_requests_total"));
            samples.push((started.elapsed().as_secs(), w.status_kib("VmRSS")));
        }
    }
    // Wait for the last answers.
    let _ = tokio::time::timeout(Duration::from_secs(15), outstanding.acquire_many(256)).await;
    let elapsed = started.elapsed();
    let rss_end = w.status_kib("VmRSS");
    let rss_warm = rss_warm.unwrap_or(rss_end);
    let m = w.metrics().await;
    let counted: f64 = m
        .lines()
        .filter(|l| l.starts_with("vespa_tls_webhook_admission_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    eprintln!(
        "soak: {total} requests at {rate}/s planned, {ok} ok, {failed} failed, {lagging} not sent (lagging) in {elapsed:?}; VmRSS {rss_warm} KiB at 20%, {rss_end} KiB at the end ({:+.1}%), samples (s, KiB) {samples:?}; VmHWM {} KiB",
        (rss_end as f64 / rss_warm as f64 - 1.0) * 100.0,
        w.status_kib("VmHWM")
    );
    assert_eq!(failed, 0, "failed requests");
    assert_eq!(lagging, 0, "the webhook fell behind the fixed rate");
    assert_eq!(ok, total);
    assert_eq!(counted, total as f64, "requests counted in /metrics");
    assert!(
        elapsed < run + Duration::from_secs(5),
        "the rate was not held: {elapsed:?} for {run:?}"
    );
    assert!(
        rss_end as f64 <= rss_warm as f64 * 1.05,
        "VmRSS grew from {rss_warm} KiB (20%) to {rss_end} KiB (100%)"
    );
}
