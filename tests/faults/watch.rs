//! The namespace watch broken, against a fake apiserver (the real one is restarted
//! in the e2e suite): a quiet watch is relisted and stays fresh; an apiserver that
//! stops answering makes the view stale beyond its bound, and `/readyz` and the
//! metric say so while decisions keep coming from the cache; when it answers
//! again the view catches up (a label changed meanwhile is seen) and is ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::common::{
    Conn, Load, metric, mutate_enabled, mutate_plain_injected, mutate_plain_untouched, serial,
};
use crate::support::{Harness, Options, eventually};

struct Fake {
    down: AtomicBool,
    /// `plain` carries `tls.vespa.ai/injection: enabled`.
    plain_enabled: AtomicBool,
    lists: AtomicUsize,
}

fn meta(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": name, "labels": labels, "resourceVersion": "7", "uid": format!("uid-{name}")}
    })
}

async fn namespaces(State(fake): State<Arc<Fake>>, req: Request) -> Response {
    if fake.down.load(Ordering::SeqCst) {
        let status = json!({
            "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": "apiserver is restarting", "reason": "ServiceUnavailable", "code": 503
        });
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            status.to_string(),
        )
            .into_response();
    }
    let query = req.uri().query().unwrap_or_default();
    if query.contains("watch=true") || query.contains("watch=1") {
        // Open and quiet, as a watch on namespaces mostly is.
        let quiet = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(quiet),
        )
            .into_response();
    }
    fake.lists.fetch_add(1, Ordering::SeqCst);
    let plain = if fake.plain_enabled.load(Ordering::SeqCst) {
        json!({"tls.vespa.ai/injection": "enabled"})
    } else {
        json!({})
    };
    let list = json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": "7"},
        "items": [meta("vespa", json!({"tls.vespa.ai/injection": "enabled"})), meta("plain", plain)]
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_namespace_watch_fails_readiness_beyond_the_bound_then_recovers() {
    let _serial = serial().await;
    let fake = Arc::new(Fake {
        down: AtomicBool::new(false),
        plain_enabled: AtomicBool::new(false),
        lists: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/api/v1/namespaces", get(namespaces))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{api}").parse().unwrap()))
            .unwrap();
    let bound = Duration::from_secs(2);
    let h = Harness::start(Options {
        cluster: Some(client),
        namespace_stale_after: Some(bound),
        metrics_listener: true,
        ..Options::default()
    })
    .await;
    let plain = reqwest::Client::new();
    let base = format!("http://{}", h.metrics_addr.unwrap());
    let readyz = || {
        let (plain, base) = (plain.clone(), base.clone());
        async move {
            let r = plain.get(format!("{base}/readyz")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let fresh_metric = || {
        let (plain, base) = (plain.clone(), base.clone());
        async move {
            let m = plain
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            metric(
                &m,
                r#"vespa_tls_webhook_readiness{check="namespace_view_fresh"}"#,
            )
        }
    };
    eventually("the view syncs", Duration::from_secs(5), || async {
        readyz().await.0 == 200
    })
    .await;

    // Quiet for three times the bound: relisted (every half bound), still ready.
    let load = Load::start(
        &h.url(""),
        || h.ca.client_config(),
        &[Conn::KeepAlive],
        &[mutate_enabled(), mutate_plain_untouched()],
    );
    let lists = fake.lists.load(Ordering::SeqCst);
    for _ in 0..12 {
        tokio::time::sleep(bound / 4).await;
        let (status, text) = readyz().await;
        assert_eq!(status, 200, "a quiet watch made the view stale: {text}");
    }
    let relists = fake.lists.load(Ordering::SeqCst) - lists;
    assert!(relists >= 2, "a quiet watch was relisted {relists} times");
    let stats = load.stop().await;
    stats.assert_no_failures("requests while the watch was quiet");

    // The apiserver stops answering; meanwhile `plain` gets labelled.
    let load = Load::start(
        &h.url(""),
        || h.ca.client_config(),
        &[Conn::KeepAlive],
        &[mutate_enabled(), mutate_plain_untouched()],
    );
    fake.down.store(true, Ordering::SeqCst);
    let took = eventually(
        "readiness fails once the view is stale",
        bound * 4,
        || async { readyz().await.0 == 503 },
    )
    .await;
    let (_, reason) = readyz().await;
    eprintln!("view stale {took:?} after the apiserver went away: {reason}");
    assert!(
        reason.contains("the namespace view is stale") && reason.contains("(bound 2 s)"),
        "{reason}"
    );
    // The kube client retries 503s itself, so no error reaches the view: the
    // relist is still waiting for an answer.
    assert!(
        reason.ends_with("; waiting for the apiserver to answer a list"),
        "{reason}"
    );
    assert_eq!(fresh_metric().await, 0.0);
    assert_eq!(h.get("/healthz").await.0, 200);
    // Decisions keep coming from the cache meanwhile (it still has `plain` unlabelled).
    tokio::time::sleep(bound).await;
    let stats = load.stop().await;
    stats.assert_no_failures("requests from the cache while the apiserver was away");
    fake.plain_enabled.store(true, Ordering::SeqCst);

    // Back: the view relists, is fresh again and sees the new label.
    fake.down.store(false, Ordering::SeqCst);
    let took = eventually(
        "ready again once the apiserver answers",
        Duration::from_secs(35),
        || async { readyz().await.0 == 200 },
    )
    .await;
    eprintln!("view fresh again {took:?} after the apiserver came back");
    assert_eq!(fresh_metric().await, 1.0);
    let check = mutate_plain_injected();
    let (status, answer) = h
        .post(check.path, &serde_json::from_slice(&check.body).unwrap())
        .await;
    (check.check)(status, &answer).unwrap();
}
