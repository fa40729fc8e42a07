//! AdmissionReview builders and golden objects.

use base64::Engine;
use serde_json::{Value, json};

/// A file under `tests/golden/`, as JSON.
pub fn golden(name: &str) -> Value {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// The Step 4 VespaSet with its TLS removed: what a user writes.
pub fn user_vespaset() -> Value {
    golden("seed-step4-stripped.yaml")
}

/// An AdmissionReview (`admission.k8s.io/<version>`) for `object` of
/// `group/version/kind` in `ns`.
pub fn review_in(
    api_version: &str,
    (group, version, kind): (&str, &str, &str),
    ns: &str,
    operation: &str,
    object: Option<Value>,
) -> Value {
    let name = object
        .as_ref()
        .and_then(|o| o.pointer("/metadata/name"))
        .cloned()
        .unwrap_or(json!("x"));
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{}-{ns}-{operation}", kind.to_lowercase()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": name,
            "namespace": ns,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": if operation == "DELETE" { Value::Null } else { object.clone().unwrap_or(Value::Null) },
            "oldObject": if operation == "CREATE" { Value::Null } else { object.unwrap_or(Value::Null) },
            "dryRun": false,
        }
    })
}

/// A v1 review of a VespaSet.
pub fn vespaset_review(object: Value, ns: &str, operation: &str) -> Value {
    review_in(
        "admission.k8s.io/v1",
        ("k8s.ai.vespa", "v1", "VespaSet"),
        ns,
        operation,
        Some(object),
    )
}

/// Apply the base64 JSON patch of an admission `response` to `object`.
pub fn apply(object: &Value, response: &Value) -> Value {
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

/// Remove `metadata.annotations."tls.vespa.ai/injected"` (asserting it exists),
/// and `annotations` itself when that leaves it empty.
pub fn strip_injected(mut object: Value) -> Value {
    let annotations = object["metadata"]["annotations"]
        .as_object_mut()
        .expect("injected object has annotations");
    let fingerprint = annotations
        .remove("tls.vespa.ai/injected")
        .expect("injected object carries tls.vespa.ai/injected");
    assert!(fingerprint.as_str().is_some_and(|f| !f.is_empty()));
    if annotations.is_empty() {
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
    }
    object
}

/// A Vespa pod in `ns` (has a `vespa` container).
pub fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "vespa-prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "vespa", "image": "vespa"}]}}}
    })
}

/// A VespaSet whose config server carries `entries` env vars of ~128 bytes each.
pub fn big_vespaset(entries: usize) -> Value {
    let mut v = user_vespaset();
    let env: Vec<Value> = (0..entries)
        .map(|i| json!({"name": format!("VAR_{i:06}"), "value": "x".repeat(100)}))
        .collect();
    v["spec"]["configServer"]["podTemplate"]["spec"]["containers"][0]["env"] = Value::Array(env);
    v
}
