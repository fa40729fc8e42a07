//! The cluster namespace view against a fake apiserver: readiness waits for the
//! first list, cache misses get one live GET, API errors fail closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::support::{Harness, Options, eventually, metric};

struct Fake {
    /// The first list after release fails, as an apiserver restarting would.
    fail_first_list: AtomicBool,
    gets: AtomicUsize,
    lists: AtomicUsize,
    listed: watch::Receiver<bool>,
}

fn meta(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {"name": name, "labels": labels, "resourceVersion": "7", "uid": format!("uid-{name}")}
    })
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "apiVersion": "v1", "kind": "Status", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn list_or_watch(State(fake): State<Arc<Fake>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or_default();
    if query.contains("watch=true") || query.contains("watch=1") {
        // A watch that stays open and quiet.
        let quiet = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(quiet),
        )
            .into_response();
    }
    let mut listed = fake.listed.clone();
    let _ = listed.wait_for(|released| *released).await;
    fake.lists.fetch_add(1, Ordering::SeqCst);
    if fake.fail_first_list.swap(false, Ordering::SeqCst) {
        return status(503, "ServiceUnavailable", "apiserver is restarting".into());
    }
    let list = json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": "7"},
        "items": [
            meta("vespa", json!({"tls.vespa.ai/injection": "enabled"})),
            meta("plain", json!({})),
        ]
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

async fn get_one(State(fake): State<Arc<Fake>>, Path(name): Path<String>) -> Response {
    fake.gets.fetch_add(1, Ordering::SeqCst);
    match name.as_str() {
        "vespa" | "fresh" => (
            [(header::CONTENT_TYPE, "application/json")],
            meta(&name, json!({"tls.vespa.ai/injection": "enabled"})).to_string(),
        )
            .into_response(),
        "broken" => status(500, "InternalError", "etcdserver: request timed out".into()),
        _ => status(404, "NotFound", format!("namespaces \"{name}\" not found")),
    }
}

async fn injected(h: &Harness, ns: &str) -> Value {
    h.mutate_user_vespaset(ns).await.1
}

#[tokio::test]
async fn cluster_view_syncs_caches_and_fails_closed() {
    let (release, listed) = watch::channel(false);
    let fake = Arc::new(Fake {
        fail_first_list: AtomicBool::new(true),
        gets: AtomicUsize::new(0),
        lists: AtomicUsize::new(0),
        listed,
    });
    let app = Router::new()
        .route("/api/v1/namespaces", get(list_or_watch))
        .route("/api/v1/namespaces/{name}", get(get_one))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = kube::Config::new(format!("http://{api}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();

    let h = Harness::start(Options {
        cluster: Some(client),
        ..Options::default()
    })
    .await;

    // Not synced yet: not ready, but a lookup still works through a live GET.
    let (status, reason) = h.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(reason.contains("namespace view"), "{reason}");
    assert!(injected(&h, "vespa").await.get("patch").is_some());
    assert_eq!(fake.gets.load(Ordering::SeqCst), 1);

    release.send(true).unwrap();
    let hr = &h;
    // The first list fails; the watcher backs off and lists again.
    eventually("the view syncs", Duration::from_secs(8), || async move {
        hr.get("/readyz").await.0 == 200
    })
    .await;
    assert_eq!(
        metric(
            &h.metrics().await,
            "vespa_tls_webhook_namespace_view_synced"
        ),
        1.0
    );

    // Cached: no GET.
    assert!(injected(&h, "vespa").await.get("patch").is_some());
    assert!(injected(&h, "plain").await.get("patch").is_none());
    assert_eq!(fake.gets.load(Ordering::SeqCst), 1);

    // Created a moment ago: one live GET.
    assert!(injected(&h, "fresh").await.get("patch").is_some());
    assert_eq!(fake.gets.load(Ordering::SeqCst), 2);

    // Not found: a namespace without labels.
    let missing = injected(&h, "missing").await;
    assert_eq!(missing["allowed"], true);
    assert!(missing.get("patch").is_none());

    // Not a namespace name: never sent to the apiserver.
    let before = fake.gets.load(Ordering::SeqCst);
    let odd = injected(&h, "Not/A/Name").await;
    assert_eq!(odd["allowed"], true);
    assert_eq!(fake.gets.load(Ordering::SeqCst), before);

    // API error: fail closed, counted as an error.
    let broken = injected(&h, "broken").await;
    assert_eq!(broken["allowed"], false, "{broken}");
    let message = broken["status"]["message"].as_str().unwrap();
    assert!(message.contains("cannot read the namespace"), "{message}");
    let m = h.metrics().await;
    let series = r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="VespaSet",operation="CREATE",decision="error",reason="namespace-unavailable"}"#;
    assert_eq!(metric(&m, series), 1.0, "{m}");
    assert_eq!(fake.lists.load(Ordering::SeqCst), 2);
}
