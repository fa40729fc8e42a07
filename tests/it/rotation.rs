//! Serving certificate rotation: new connections see a rotated pair within 2 s,
//! requests keep succeeding meanwhile, broken pairs are refused and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::fixtures::{user_vespaset, vespaset_review};
use crate::support::{Harness, Options, eventually, metric, symlinked_pair, write_atomic};

const FAILURES: &str = r#"vespa_tls_webhook_certificate_reloads_total{result="failure"}"#;
const SUCCESSES: &str = r#"vespa_tls_webhook_certificate_reloads_total{result="success"}"#;

/// Requests in a loop until `stop`: on one pooled client, or a new client (new
/// connection) per request. Returns (ok, failed) counters.
fn request_loop(
    h: &Harness,
    fresh: bool,
    stop: Arc<AtomicBool>,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (o, f) = (ok.clone(), failed.clone());
    let url = h.url("/mutate");
    let pooled = h.client.clone();
    let clients: Vec<reqwest::Client> = if fresh {
        (0..400).map(|_| h.fresh_client()).collect()
    } else {
        Vec::new()
    };
    let body = serde_json::to_vec(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    let task = tokio::spawn(async move {
        let mut clients = clients.into_iter();
        while !stop.load(Ordering::Relaxed) {
            let client = if fresh {
                match clients.next() {
                    Some(c) => c,
                    None => break,
                }
            } else {
                pooled.clone()
            };
            let result = client.post(&url).body(body.clone()).send().await;
            match result {
                Ok(r) if r.status() == 200 => o.fetch_add(1, Ordering::Relaxed),
                Ok(r) => {
                    eprintln!("request failed: {}", r.status());
                    f.fetch_add(1, Ordering::Relaxed)
                }
                Err(e) => {
                    eprintln!("request failed: {e:?}");
                    f.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    });
    (task, ok, failed)
}

#[tokio::test]
async fn rotated_pair_reaches_new_connections_while_requests_succeed() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(h.served_cert().await, h.pair.der);
    let stop = Arc::new(AtomicBool::new(false));
    let (pooled, pooled_ok, pooled_failed) = request_loop(&h, false, stop.clone());
    let (fresh, fresh_ok, fresh_failed) = request_loop(&h, true, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let next = h.ca.leaf();
    write_atomic(&h.key_path, &next.key);
    write_atomic(&h.cert_path, &next.cert);
    let (hr, want) = (&h, &next.der);
    let took = eventually(
        "new connections get the rotated certificate",
        Duration::from_secs(2),
        || async move { hr.served_cert().await == *want },
    )
    .await;
    eprintln!("rotated certificate served after {took:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    pooled.await.unwrap();
    fresh.await.unwrap();
    assert_eq!(pooled_failed.load(Ordering::Relaxed), 0);
    assert_eq!(fresh_failed.load(Ordering::Relaxed), 0);
    assert!(pooled_ok.load(Ordering::Relaxed) > 0);
    assert!(fresh_ok.load(Ordering::Relaxed) > 0);
    assert!(metric(&h.metrics().await, SUCCESSES) >= 1.0);
}

#[tokio::test]
async fn broken_pairs_keep_the_certificate_in_use() {
    let h = Harness::start(Options::default()).await;
    let served = h.pair.der.clone();

    // Garbage key.
    let next = h.ca.leaf();
    write_atomic(
        &h.key_path,
        "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n",
    );
    write_atomic(&h.cert_path, &next.cert);
    let hr = &h;
    eventually(
        "a reload failure is counted",
        Duration::from_secs(2),
        || async move { metric(&hr.metrics().await, FAILURES) >= 1.0 },
    )
    .await;
    assert_eq!(h.served_cert().await, served);

    // A valid certificate with somebody else's key.
    let before = metric(&h.metrics().await, FAILURES);
    let other = h.ca.leaf();
    write_atomic(&h.key_path, &other.key);
    eventually(
        "the mismatched key is refused",
        Duration::from_secs(2),
        || async move { metric(&hr.metrics().await, FAILURES) > before },
    )
    .await;
    assert_eq!(h.served_cert().await, served);
    assert_eq!(h.get("/readyz").await.0, 200);

    // A good pair again.
    write_atomic(&h.key_path, &next.key);
    let want = &next.der;
    eventually(
        "the repaired pair is served",
        Duration::from_secs(2),
        || async move { hr.served_cert().await == *want },
    )
    .await;
}

#[tokio::test]
async fn secret_volume_symlink_swap_is_picked_up() {
    let h = Harness::start(Options {
        symlinked: true,
        ..Options::default()
    })
    .await;
    assert_eq!(h.served_cert().await, h.pair.der);
    let next = h.ca.leaf();
    // kubelet: write the new timestamped dir, swap `..data`, remove the old dir.
    symlinked_pair(h.dir.path(), "..2026_01_01_00_00_00.000000002", &next);
    std::fs::remove_dir_all(h.dir.path().join("..2026_01_01_00_00_00.000000001")).unwrap();
    let (hr, want) = (&h, &next.der);
    eventually(
        "the swapped pair is served",
        Duration::from_secs(2),
        || async move { hr.served_cert().await == *want },
    )
    .await;
    assert!(metric(&h.metrics().await, SUCCESSES) >= 1.0);
}
