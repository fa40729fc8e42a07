//! The serving certificate under load: rotated every second the way kubelet
//! updates a Secret volume, with broken, mismatched and expired pairs in between,
//! and a certificate that expires while it is served.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{
    Conn, Load, env_secs, metric, mutate_enabled, serial, validate_enforced_denied,
};
use crate::support::{Ca, Harness, Options, Pair, eventually, symlinked_pair, write_atomic};

const FAILURES: &str = r#"vespa_tls_webhook_certificate_reloads_total{result="failure"}"#;
const SUCCESSES: &str = r#"vespa_tls_webhook_certificate_reloads_total{result="success"}"#;

#[derive(Debug, Clone, Copy)]
enum Broken {
    /// The certificate file cut in half (a writer caught mid-way).
    HalfWritten,
    /// A valid certificate with another pair's key.
    Mismatched,
    /// A pair that expired in 2020.
    Expired,
}

fn broken(ca: &Ca, how: Broken) -> Pair {
    match how {
        Broken::HalfWritten => {
            let p = ca.leaf();
            Pair {
                cert: p.cert[..p.cert.len() / 2].to_string(),
                ..p
            }
        }
        Broken::Mismatched => {
            let (a, b) = (ca.leaf(), ca.leaf());
            Pair { key: b.key, ..a }
        }
        Broken::Expired => ca.expired_leaf(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_pair_rotated_every_second_under_load_loses_no_request() {
    let _serial = serial().await;
    let run = env_secs("VTW_FAULTS_ROTATION_SECS", 30);
    let h = Harness::start(Options {
        symlinked: true,
        ..Options::default()
    })
    .await;
    let load = Load::start(
        &h.url(""),
        || h.ca.client_config(),
        &[
            Conn::KeepAlive,
            Conn::KeepAlive,
            Conn::NewPerRequest,
            Conn::NewPerRequest,
        ],
        &[mutate_enabled(), validate_enforced_denied()],
    );

    let started = Instant::now();
    let mut good = h.pair.der.clone();
    let mut data_dir = "..2026_01_01_00_00_00.000000001".to_string();
    let mut served = HashSet::new();
    let (mut rotations, mut refused) = (0u32, 0u32);
    let faults = [Broken::HalfWritten, Broken::Mismatched, Broken::Expired];
    let mut i = 0usize;
    while started.elapsed() < run {
        i += 1;
        let tick = Instant::now();
        // kubelet: write a new timestamped dir, swap `..data`, remove the old dir.
        let swap = |pair: &Pair, data_dir: &mut String| {
            let next = format!("..rotation_{i:05}");
            symlinked_pair(h.dir.path(), &next, pair);
            std::fs::remove_dir_all(h.dir.path().join(&*data_dir)).unwrap();
            *data_dir = next;
        };
        if i.is_multiple_of(5) {
            // A broken pair: it must be refused (counted) and the last good pair
            // stay in use. First make sure that pair is the one being served.
            let hr = &h;
            let want = good.clone();
            eventually(
                "the last good pair is served",
                Duration::from_secs(3),
                || {
                    let want = want.clone();
                    async move { hr.served_cert().await == want }
                },
            )
            .await;
            let how = faults[(i / 5 - 1) % faults.len()];
            let before = metric(&h.metrics().await, FAILURES);
            swap(&broken(&h.ca, how), &mut data_dir);
            eventually(
                &format!("the {how:?} pair is refused"),
                Duration::from_secs(3),
                || async move { metric(&hr.metrics().await, FAILURES) > before },
            )
            .await;
            assert_eq!(
                h.served_cert().await,
                good,
                "{how:?} pair replaced the good one"
            );
            refused += 1;
        } else {
            let pair = h.ca.leaf();
            swap(&pair, &mut data_dir);
            good = pair.der;
            rotations += 1;
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
        }
        served.insert(h.served_cert().await);
    }

    let stats = load.stop().await;
    let elapsed = started.elapsed();
    let m = h.metrics().await;
    eprintln!(
        "rotation: {elapsed:?}, {rotations} rotations, {refused} broken pairs refused, {} distinct certificates served, {} requests ok ({:.0}/s), reloads ok {} / refused {}",
        served.len(),
        stats.ok(),
        stats.ok() as f64 / elapsed.as_secs_f64(),
        metric(&m, SUCCESSES),
        metric(&m, FAILURES)
    );
    stats.assert_no_failures("requests during rotation");
    assert!(
        stats.ok() as f64 >= 10.0 * elapsed.as_secs_f64(),
        "too little load to mean anything: {} requests in {elapsed:?}",
        stats.ok()
    );
    // Each good pair is installed (it stays for a second: two polls), and new
    // connections see it.
    assert!(
        metric(&m, SUCCESSES) >= f64::from(rotations) * 0.8,
        "only {} of {rotations} rotations installed",
        metric(&m, SUCCESSES)
    );
    assert!(
        served.len() as f64 >= f64::from(rotations) * 0.5,
        "only {} distinct certificates seen over {rotations} rotations",
        served.len()
    );
    assert!(metric(&m, FAILURES) >= f64::from(refused));
    assert!(refused >= 1 || run < Duration::from_secs(5));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiring_while_served_fails_readiness_and_the_metric_says_why() {
    let _serial = serial().await;
    let other = Ca::new();
    let not_after = unix_now() + 3;
    let short = other.leaf_with(|p| {
        p.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after);
    });
    let h = Harness::start(Options {
        pair: Some(short),
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    let plain = reqwest::Client::new();
    let base = format!("http://{}", h.metrics_addr.unwrap());
    let get = |path: &'static str| {
        let (plain, base) = (plain.clone(), base.clone());
        async move {
            let r = plain.get(format!("{base}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    const CERT_CHECK: &str = r#"vespa_tls_webhook_readiness{check="certificate"}"#;
    assert_eq!(get("/readyz").await.0, 200);
    assert_eq!(metric(&get("/metrics").await.1, CERT_CHECK), 1.0);

    let took = eventually(
        "readiness fails once the certificate has expired",
        Duration::from_secs(10),
        || async { get("/readyz").await.0 == 503 },
    )
    .await;
    eprintln!("readiness failed {took:?} after start (certificate valid for ~3 s)");
    let (_, reason) = get("/readyz").await;
    assert!(
        reason.contains("the serving certificate") && reason.contains("expired"),
        "{reason}"
    );
    let m = get("/metrics").await.1;
    assert_eq!(metric(&m, CERT_CHECK), 0.0, "{m}");
    assert_eq!(
        metric(&m, "vespa_tls_webhook_certificate_expiry_timestamp_seconds"),
        not_after as f64
    );
    // Alive all the same: a restart would not help, a new certificate does.
    assert_eq!(get("/healthz").await.0, 200);

    let fresh = other.leaf();
    write_atomic(&h.key_path, &fresh.key);
    write_atomic(&h.cert_path, &fresh.cert);
    eventually(
        "a renewed certificate makes it ready again",
        Duration::from_secs(5),
        || async { get("/readyz").await.0 == 200 },
    )
    .await;
    let m = get("/metrics").await.1;
    assert_eq!(metric(&m, CERT_CHECK), 1.0);
    assert!(metric(&m, SUCCESSES) >= 1.0);
}
