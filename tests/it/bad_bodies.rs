//! Bodies that are not reviews get 400/413 with a reason, and the server keeps
//! answering.

use std::time::Duration;

use serde_json::json;

use crate::fixtures::{apply, big_vespaset, user_vespaset, vespaset_review};
use crate::support::{Harness, Options, metric, post_head, raw_exchange, read_response};

async fn still_serves(h: &Harness) {
    let response = h
        .admit(
            "/mutate",
            &vespaset_review(user_vespaset(), "vespa", "CREATE"),
        )
        .await;
    assert_eq!(response["patchType"], "JSONPatch");
}

#[tokio::test]
async fn malformed_reviews_get_400_with_a_reason() {
    let h = Harness::start(Options::default()).await;
    let valid =
        serde_json::to_string(&vespaset_review(user_vespaset(), "vespa", "CREATE")).unwrap();
    let mut no_uid = vespaset_review(user_vespaset(), "vespa", "CREATE");
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let mut wrong_kind = vespaset_review(user_vespaset(), "vespa", "CREATE");
    wrong_kind["kind"] = json!("AdmissionRequest");
    let mut wrong_version = vespaset_review(user_vespaset(), "vespa", "CREATE");
    wrong_version["apiVersion"] = json!("admission.k8s.io/v2");
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "empty body"),
        ("whitespace", "  \n".into(), "empty body"),
        ("not JSON", "hello".into(), "not an AdmissionReview"),
        (
            "truncated",
            valid[..valid.len() / 2].to_string(),
            "not an AdmissionReview",
        ),
        ("a JSON array", "[1,2]".into(), "not an AdmissionReview"),
        ("wrong kind", wrong_kind.to_string(), "unsupported kind"),
        (
            "wrong apiVersion",
            wrong_version.to_string(),
            "unsupported apiVersion",
        ),
        (
            "no request",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(),
            "has no request",
        ),
        ("no uid", no_uid.to_string(), "uid"),
    ];
    for endpoint in ["/mutate", "/validate"] {
        for (what, body, reason) in &cases {
            let (status, text) = h.post_bytes(endpoint, body.clone()).await;
            assert_eq!(status, 400, "{endpoint} {what}: {text}");
            assert!(
                text.contains(reason),
                "{endpoint} {what}: {text:?} lacks {reason:?}"
            );
            still_serves(&h).await;
        }
    }
    let m = h.metrics().await;
    let series = r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="unknown",operation="unknown",decision="error",reason="bad-request"}"#;
    assert_eq!(metric(&m, series), cases.len() as f64, "{m}");
}

#[tokio::test]
async fn oversized_bodies_get_413_and_a_3mib_review_passes() {
    let h = Harness::start(Options::default()).await;
    // 4.5 MiB, declared in Content-Length.
    let (status, text) = h.post_bytes("/mutate", vec![b' '; 4_608 * 1024]).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("exceeds"), "{text}");
    still_serves(&h).await;

    // ~3 MiB object (the apiserver's request limit) in its envelope.
    let object = big_vespaset(24_000);
    let review = vespaset_review(object.clone(), "vespa", "CREATE");
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > 3 * 1024 * 1024, "{}", body.len());
    let (status, text) = h.post_bytes("/mutate", body).await;
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let injected = apply(&object, &answer["response"]);
    let env = &injected["spec"]["configServer"]["podTemplate"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().unwrap().len(), 24_001);
    still_serves(&h).await;

    let m = h.metrics().await;
    let series = r#"vespa_tls_webhook_admission_requests_total{endpoint="mutate",kind="unknown",operation="unknown",decision="error",reason="too-large"}"#;
    assert_eq!(metric(&m, series), 1.0, "{m}");
}

#[tokio::test]
async fn oversized_chunked_body_gets_413() {
    let h = Harness::start(Options::default()).await;
    // No Content-Length: the cap applies while streaming.
    let chunk = vec![b'x'; 1024 * 1024];
    let mut request =
        b"POST /validate HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
            .to_vec();
    for _ in 0..5 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(&h, &request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    still_serves(&h).await;
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(h.get("/mutate").await.0, 405);
    assert_eq!(h.get("/nope").await.0, 404);
    let (status, _) = h.post_bytes("/healthz", "x").await;
    assert_eq!(status, 405);
    still_serves(&h).await;
}

/// A review that arrives in several pieces (several body frames, which the server
/// joins; one frame it keeps as it came) gets the same answer as one sent at once.
#[tokio::test]
async fn a_review_in_pieces_gets_the_same_answer() {
    use tokio::io::AsyncWriteExt;

    let h = Harness::start(Options::default()).await;
    let review = vespaset_review(user_vespaset(), "vespa", "CREATE");
    let body = serde_json::to_vec(&review).unwrap();
    let whole = h.admit("/mutate", &review).await;
    assert_eq!(whole["patchType"], "JSONPatch", "{whole}");

    let mut tls = h.tls_connect().await.unwrap();
    tls.write_all(&post_head("/mutate", body.len()))
        .await
        .unwrap();
    // Small pieces, so that losing or reordering any of them breaks the review.
    for piece in body.chunks(64) {
        tls.write_all(piece).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = read_response(&mut tls, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer["response"], whole, "{answer}");
}
