//! The admission path reads a Pod as its projection (`src/projection.rs`): only
//! the fields the decision reads. Property: for generated Pod and VespaSet reviews — TLS
//! entries right, wrong, stale and conflicting, junk entries, unread fields —
//! the decision and the response bytes on the projection are exactly those on
//! the complete object, for both endpoints, every mode and several policies.

use proptest::prelude::*;
use serde_json::{Value, json};
use vespa_tls_webhook::admission::{
    Endpoint, decide, parse_review, parse_review_complete, parse_review_for, parse_review_serde,
};
use vespa_tls_webhook::layout::{Role, Wanted, wanted};
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};
use vespa_tls_webhook::projection::Purpose;

use crate::fixtures::{ns, policy};

fn env_pool() -> Vec<Value> {
    vec![
        json!({"name": "USER_A", "value": "1"}),
        json!({"value": "2", "name": "USER_B"}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "VESPA_TLS_CONFIG_FILE", "value": "/etc/tls-config/tls-config.json"}),
        json!({"name": "VESPA_TLS_CONFIG_FILE", "value": "/elsewhere.json"}),
        json!({"value": "/etc/tls-config-ingress/tls-config.json", "name": "VESPA_TLS_CONFIG_FILE_INGRESS"}),
        json!({"name": "VESPA_TLS_INSECURE_MIXED_MODE", "value": "tls_client_mixed_server"}),
        json!({"name": 5, "value": "x"}),
        json!({"value": "no name"}),
        json!("junk"),
        Value::Null,
    ]
}

/// What injection wants in an application pod of an `enabled` namespace.
fn ours() -> Wanted {
    let settings = ClusterPolicy::default().settings_for(&ns("vespa", "enabled"));
    wanted(&settings.unwrap(), Role::Application)
}

fn mount_pool() -> Vec<Value> {
    let mut pool = ours().mounts;
    pool.push(json!({"name": "mine", "mountPath": "/etc/tls"}));
    pool.push(json!({"name": "data", "mountPath": "/data"}));
    pool.push(json!({"name": "tls-certs", "mountPath": "/opt/certs", "readOnly": true}));
    pool.push(json!({"mountPath": "/etc/tls-config/tls-config.json", "name": "cfg"}));
    pool
}

fn volume_pool() -> Vec<Value> {
    let mut pool = ours().volumes;
    pool.push(json!({"name": "tls-certs", "hostPath": {"path": "/etc/ssl"}}));
    pool.push(json!({"name": "tls-certs", "secret": {"secretName": "s"}}));
    pool.push(json!({"name": "data", "emptyDir": {}}));
    pool
}

fn picks(pool: Vec<Value>) -> impl Strategy<Value = Option<Vec<Value>>> {
    let n = pool.len();
    prop::option::of(prop::collection::vec(0..n, 0..6))
        .prop_map(move |ix| ix.map(|ix| ix.into_iter().map(|i| pool[i].clone()).collect()))
}

fn annotation_pool() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tls.vespa.ai/inject", "false"),
        ("tls.vespa.ai/inject", "true"),
        ("tls.vespa.ai/inject", "maybe"),
        ("tls.vespa.ai/injected", "v1-stale"),
        ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
    ]
}

prop_compose! {
    fn pod()(
        env in picks(env_pool()),
        mounts in picks(mount_pool()),
        volumes in picks(volume_pool()),
        annotations in prop::collection::vec(0usize..5, 0..3),
        configserver in any::<bool>(),
        other_labels in any::<bool>(),
        sidecar_first in any::<bool>(),
        second_vespa in prop::bool::weighted(0.1),
        init_vespa in prop::bool::weighted(0.1),
        deleting in prop::bool::weighted(0.05),
    ) -> Value {
        let mut vespa = json!({
            "name": "vespa", "image": "vespaengine/vespa", "args": ["services"],
            "ports": [{"containerPort": 8080}], "resources": {"limits": {"memory": "8Gi"}},
        });
        if let Some(env) = env { vespa["env"] = json!(env); }
        if let Some(m) = mounts { vespa["volumeMounts"] = json!(m); }
        let sidecar = json!({"name": "side", "image": "busybox", "env": [{"name": "VESPA_TLS_CONFIG_FILE", "value": "/x"}]});
        let mut containers = if sidecar_first { vec![sidecar, vespa.clone()] } else { vec![vespa.clone(), sidecar] };
        if second_vespa { containers.push(vespa); }
        let mut spec = json!({
            "containers": containers, "hostname": "h", "tolerations": [{"key": "k"}],
            "securityContext": {"fsGroup": 1000},
        });
        if let Some(v) = volumes { spec["volumes"] = json!(v); }
        if init_vespa { spec["initContainers"] = json!([{"name": "vespa", "image": "x"}]); }
        let mut metadata = json!({
            "name": "vespa-0", "generateName": "vespa-", "namespace": "vespa",
            "uid": "1", "ownerReferences": [{"kind": "StatefulSet", "name": "vespa"}],
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:spec": {}}}],
        });
        let mut labels = serde_json::Map::new();
        if configserver { labels.insert("app.kubernetes.io/component".into(), json!("configserver")); }
        if other_labels {
            labels.insert("app".into(), json!("vespa"));
            labels.insert("statefulset.kubernetes.io/pod-name".into(), json!("vespa-0"));
        }
        if !labels.is_empty() { metadata["labels"] = Value::Object(labels); }
        if !annotations.is_empty() {
            let pool = annotation_pool();
            metadata["annotations"] = annotations.into_iter().map(|i| (pool[i].0.to_string(), json!(pool[i].1))).collect();
        }
        if deleting { metadata["deletionTimestamp"] = json!("2026-01-01T00:00:00Z"); }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {"phase": "Pending"}})
    }
}

prop_compose! {
    /// A VespaSet whose sections' pod specs are those of generated pods.
    fn vespaset()(config in prop::option::of(pod()), app in prop::option::of(pod()), profile in prop::option::of(pod())) -> Value {
        let section = |pod: &Value| json!({
            "image": "vespaengine/vespa:8", "storageClass": "gp3",
            "podTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": pod["spec"]},
        });
        let mut spec = json!({"version": "8.500", "ingress": {"endpointType": "NODE_PORT"}});
        if let Some(p) = &config { spec["configServer"] = section(p); }
        if let Some(p) = &app { spec["application"] = section(p); }
        if let Some(p) = &profile { spec["profiles"] = json!({"big": {"podTemplate": {"spec": p["spec"]}}}); }
        let metadata = config.or(app).map_or(json!({"name": "v"}), |p| p["metadata"].clone());
        json!({"apiVersion": "k8s.ai.vespa/v1", "kind": "VespaSet", "metadata": metadata, "spec": spec, "status": {}})
    }
}

fn policies() -> Vec<ClusterPolicy> {
    vec![
        ClusterPolicy::default(),
        policy("constraints:\n  allowMixedMode: false\n  allowOptOut: false\n"),
    ]
}

fn namespaces() -> Vec<NamespaceMeta> {
    vec![
        ns("vespa", "enabled"),
        ns("vespa", "enforced"),
        ns("vespa", "enabled").with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress"),
        ns("vespa", "enforced")
            .with_annotation("tls.vespa.ai/mixed-mode", "tls_client_mixed_server"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pods_decide_exactly_like_the_complete_object(object in pod()) {
        check(object, "", "Pod")?;
    }

    #[test]
    fn vespasets_decide_exactly_like_the_complete_object(object in vespaset()) {
        check(object, "k8s.ai.vespa", "VespaSet")?;
    }
}

fn check(object: Value, group: &str, kind: &str) -> Result<(), TestCaseError> {
    {
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u", "kind": {"group": group, "version": "v1", "kind": kind},
                "namespace": "vespa", "operation": "CREATE", "object": object,
                "userInfo": {"username": "u"},
            }
        }))
        .unwrap();
        let projected = parse_review(&body).unwrap();
        let complete = parse_review_complete(&body).unwrap();
        prop_assert_eq!(complete.request.object.as_ref(), Some(&object));
        prop_assert_ne!(&projected.request.object, &complete.request.object);
        // The hand-written reader (src/scan.rs) reads these reviews, exactly as serde.
        let text = std::str::from_utf8(&body).unwrap();
        for purpose in [Purpose::Review, Purpose::Mutation] {
            let scanned = vespa_tls_webhook::scan::read(text, purpose);
            prop_assert!(scanned.is_some(), "the fast path gave up on a usual review");
            prop_assert_eq!(scanned, Some(parse_review_serde(&body, purpose).unwrap()));
        }
        // What the server reads for each endpoint.
        let server = [Endpoint::Mutate, Endpoint::Validate]
            .map(|e| (e, parse_review_for(e, &body).unwrap()));
        for policy in &policies() {
            for n in &namespaces() {
                for (endpoint, own) in &server {
                    let endpoint = *endpoint;
                    let c = decide(endpoint, &complete, policy, Some(n));
                    // The projection for both endpoints, and the server's for this one.
                    for projected in [&projected, own] {
                        let p = decide(endpoint, projected, policy, Some(n));
                        prop_assert_eq!(&p, &c);
                        prop_assert_eq!(projected.respond(&p), complete.respond(&c));
                    }
                }
            }
        }
    }
    Ok(())
}
