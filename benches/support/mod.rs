//! Review bodies for the benchmarks, built in code: an AdmissionReview for a
//! ~2 KB VespaSet and for Pods of a chosen size (the size is reached with env
//! vars on the `vespa` container, 1,500 of them make the ~190 KB review).
//!
//! Shared by `benches/decision.rs` and `benches/https_load.rs` (`#[path]`
//! include), so not every helper is used by both.
#![allow(dead_code)]

use serde_json::{Value, json};

/// Namespace the reviews are in (labelled `tls.vespa.ai/injection=enabled` in
/// the benchmarks' namespace view).
pub const NAMESPACE: &str = "vespa";

/// UID echoed in responses.
pub const UID: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

/// Wrap `object` in an `admission.k8s.io/v1` CREATE review, as the apiserver
/// sends it (resource, requestKind, userInfo, options and `oldObject: null`).
pub fn review(object: Value, group: &str, version: &str, kind: &str, resource: &str) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "8b6a3bd0-7c0a-4b43-9a43-5b4c7e2e3d3f",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

/// A VespaSet with a config-server and an application section, no TLS yet.
pub fn vespaset() -> Value {
    let template = |component: &str| {
        json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "vespa", "app.kubernetes.io/component": component}},
            "spec": {
                "serviceAccountName": "vespa",
                "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                "containers": [{
                    "name": "vespa",
                    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
                    "env": [{"name": "VESPA_CONFIGSERVERS", "value": "cfg-0.vespa-internal.vespa.svc.cluster.local"}]
                }],
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "vespa", "effect": "NoSchedule"}]
            }
        })
    };
    json!({
        "apiVersion": "k8s.ai.vespa/v1",
        "kind": "VespaSet",
        "metadata": {
            "name": "vespaset-sample",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "vespa", "app.kubernetes.io/part-of": "search"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"k8s.ai.vespa/v1\",\"kind\":\"VespaSet\",\"metadata\":{\"name\":\"vespaset-sample\",\"namespace\":\"vespa\"}}"}
        },
        "spec": {
            "version": "8.500.12",
            "configServer": {
                "image": "docker.io/vespaengine/vespa:8.500.12",
                "storageClass": "gp3",
                "generateRbac": false,
                "podTemplate": template("configserver")
            },
            "application": {
                "image": "docker.io/vespaengine/vespa:8.500.12",
                "storageClass": "gp3",
                "podTemplate": template("application")
            },
            "ingress": {"endpointType": "NODE_PORT"}
        }
    })
}

/// The VespaSet review (~2 KB).
pub fn vespaset_review() -> Vec<u8> {
    bytes(&review(
        vespaset(),
        "k8s.ai.vespa",
        "v1",
        "VespaSet",
        "vespasets",
    ))
}

/// A Vespa application Pod, as the StatefulSet controller creates it, with
/// `extra_env` additional env vars (~100 bytes each) on the `vespa` container.
pub fn pod(extra_env: usize) -> Value {
    let mut env = vec![
        json!({"name": "VESPA_CONFIGSERVERS", "value": "cfg-0.vespa-internal.vespa.svc.cluster.local"}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
    ];
    env.extend((0..extra_env).map(|i| {
        json!({"name": format!("VESPA_APP_SETTING_{i:05}"), "value": format!("value-{i:05}-abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxyzabcde")})
    }));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "vespa-app-",
            "name": "vespa-app-0",
            "namespace": NAMESPACE,
            "labels": {
                "app": "vespa",
                "app.kubernetes.io/name": "vespa",
                "app.kubernetes.io/component": "container",
                "controller-revision-hash": "vespa-app-7d9f8c6b5d",
                "statefulset.kubernetes.io/pod-name": "vespa-app-0"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "vespa-app",
                "uid": "0b7c6a54-0d5e-4c43-8d1f-36c2c7c1a0de", "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "hostname": "vespa-app-0",
            "subdomain": "vespa-internal",
            "serviceAccountName": "vespa",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
            "containers": [
                {
                    "name": "vespa",
                    "image": "docker.io/vespaengine/vespa:8.500.12",
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["services"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "rpc", "containerPort": 19070, "protocol": "TCP"}
                    ],
                    "env": env,
                    "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/state/v1/health", "port": 19071, "scheme": "HTTP"}, "periodSeconds": 10, "failureThreshold": 3},
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/opt/vespa/var"},
                        {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                },
                {
                    "name": "log-forwarder",
                    "image": "docker.io/fluent/fluent-bit:3.1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/opt/vespa/var", "readOnly": true}]
                }
            ],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-vespa-app-0"}},
                {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "vespa"}}, "topologyKey": "kubernetes.io/hostname"}
            ]}},
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0
        }
    })
}

/// A Pod review of about `target` bytes (never below the bare Pod's size).
pub fn pod_review_of_size(target: usize) -> Vec<u8> {
    let base = pod_review(0).len();
    let per_env = pod_review(100).len().saturating_sub(base) / 100;
    pod_review(target.saturating_sub(base) / per_env.max(1))
}

/// A Pod review with `extra_env` extra env vars.
pub fn pod_review(extra_env: usize) -> Vec<u8> {
    bytes(&review(pod(extra_env), "", "v1", "Pod", "pods"))
}

/// The three reviews of the benchmarks: name and body.
pub fn reviews() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("vespaset-2KB", vespaset_review()),
        ("pod-10KB", pod_review_of_size(10 * 1024)),
        ("pod-190KB", pod_review(1_500)),
    ]
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The baseline's answer: the uid echoed in a constant allowed response.
pub fn allowed_response(uid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#,
    );
    out.extend_from_slice(&serde_json::to_vec(uid).unwrap_or_default());
    out.extend_from_slice(br#","allowed":true}}"#);
    out
}

/// What the floor server (`benches/https_load.rs`) reads of a review: only
/// `request.uid`, everything else skipped by serde. `benches/decision.rs`
/// times the same reading (`floor-parse`).
#[derive(serde::Deserialize)]
pub struct UidOnly {
    /// The review's request.
    pub request: UidOnlyRequest,
}

/// The request of [`UidOnly`].
#[derive(serde::Deserialize)]
pub struct UidOnlyRequest {
    /// Echoed in the answer.
    pub uid: String,
}
