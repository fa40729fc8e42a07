//! Fixture builders for objects, namespaces and policies.

use std::path::PathBuf;

use serde_json::{Value, json};
use vespa_tls_webhook::admission::{Decision, Endpoint, Review, decide};
use vespa_tls_webhook::offline::create_review;
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};

/// Path of a file under the crate root.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A YAML file of the crate as JSON.
pub fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(rel)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Remove the injected fingerprint (the seed has none), asserting it was there.
pub fn without_fingerprint(mut v: Value) -> Value {
    let annotations = v
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .expect("injected object has annotations");
    let fp = annotations
        .remove("tls.vespa.ai/injected")
        .expect("injected object carries tls.vespa.ai/injected");
    assert!(fp.as_str().unwrap().starts_with("v1-"), "fingerprint {fp}");
    if annotations.is_empty() {
        v["metadata"].as_object_mut().unwrap().remove("annotations");
    }
    v
}

/// A namespace `name` labelled with `mode`.
pub fn ns(name: &str, mode: &str) -> NamespaceMeta {
    NamespaceMeta::named(name).with_label("tls.vespa.ai/injection", mode)
}

/// A namespace `vespa` labelled with `mode` whose ingress issuer is set (the seed's Step 5).
pub fn ingress_ns(mode: &str) -> NamespaceMeta {
    ns("vespa", mode).with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress-issuer")
}

/// Builder for objects.
#[derive(Clone, Debug)]
pub struct Obj(pub Value);

impl Obj {
    /// The seed's Step 4 VespaSet without any TLS (containers `[{name: vespa}]`).
    pub fn vespaset() -> Obj {
        Obj(yaml("tests/golden/seed-step4-stripped.yaml"))
    }

    /// A Pod with a single `vespa` container.
    pub fn vespa_pod() -> Obj {
        Obj(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "vespa-app-0", "namespace": "vespa", "labels": {"app": "vespa"}},
            "spec": {"containers": [{"name": "vespa", "image": "vespaengine/vespa"}]}
        }))
    }

    /// A config-server Pod.
    pub fn configserver_pod() -> Obj {
        Obj::vespa_pod().with_label("app.kubernetes.io/component", "configserver")
    }

    /// The pod a VespaSet makes from the pod template of `section` (`application` or
    /// `configServer`): named `{section}-0`, labelled with its component, its spec the
    /// template's spec as it is (with whatever TLS the template holds), no annotations.
    pub fn pod_of(vespaset: &Value, section: &str) -> Obj {
        let component = if section == "configServer" {
            "configserver"
        } else {
            "vespa"
        };
        Obj(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("{section}-0"),
                "namespace": "vespa",
                "labels": {"app.kubernetes.io/component": component},
            },
            "spec": vespaset["spec"][section]["podTemplate"]["spec"],
        }))
    }

    /// A Pod without a `vespa` container.
    pub fn other_pod() -> Obj {
        Obj(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "nginx", "namespace": "vespa"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
        }))
    }

    /// Set a value at a JSON pointer, creating objects on the way.
    pub fn set(mut self, pointer: &str, value: Value) -> Obj {
        let mut cur = &mut self.0;
        let tokens: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        for t in &tokens[..tokens.len() - 1] {
            cur = match cur {
                Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
                other => other
                    .as_object_mut()
                    .unwrap()
                    .entry(t.to_string())
                    .or_insert_with(|| json!({})),
            };
        }
        let last = &tokens[tokens.len() - 1];
        match cur {
            Value::Array(a) => a[last.parse::<usize>().unwrap()] = value,
            other => {
                other.as_object_mut().unwrap().insert(last.clone(), value);
            }
        }
        self
    }

    /// Remove the value at a JSON pointer.
    pub fn remove(mut self, pointer: &str) -> Obj {
        let (parent, last) = pointer.rsplit_once('/').unwrap();
        if let Some(p) = self.0.pointer_mut(parent).and_then(Value::as_object_mut) {
            p.remove(last);
        }
        self
    }

    /// Push onto the array at a JSON pointer (created when missing).
    pub fn push(mut self, pointer: &str, value: Value) -> Obj {
        if self.0.pointer(pointer).is_none() {
            self = self.set(pointer, json!([]));
        }
        self.0
            .pointer_mut(pointer)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(value);
        self
    }

    /// Add a label.
    pub fn with_label(self, k: &str, v: &str) -> Obj {
        let mut o = self;
        if o.0.pointer("/metadata/labels").is_none() {
            o = o.set("/metadata/labels", json!({}));
        }
        o.0.pointer_mut("/metadata/labels").unwrap()[k] = json!(v);
        o
    }

    /// Add an annotation.
    pub fn with_annotation(self, k: &str, v: &str) -> Obj {
        let mut o = self;
        if o.0.pointer("/metadata/annotations").is_none() {
            o = o.set("/metadata/annotations", json!({}));
        }
        o.0.pointer_mut("/metadata/annotations").unwrap()[k] = json!(v);
        o
    }

    /// Add an env var to the pod's first container.
    pub fn with_env(self, name: &str, value: &str) -> Obj {
        self.push(
            "/spec/containers/0/env",
            json!({"name": name, "value": value}),
        )
    }

    /// The JSON.
    pub fn json(&self) -> &Value {
        &self.0
    }
}

/// Run a decision as the apiserver would for CREATE of `obj` in `ns`.
pub fn run(
    endpoint: Endpoint,
    obj: &Value,
    ns: &NamespaceMeta,
    policy: &ClusterPolicy,
) -> Decision {
    let review = create_review(obj, &ns.name);
    decide(endpoint, &review, policy, Some(ns))
}

/// Same for UPDATE.
pub fn run_update(
    endpoint: Endpoint,
    old: &Value,
    new: &Value,
    ns: &NamespaceMeta,
    policy: &ClusterPolicy,
) -> Decision {
    let mut review: Review = create_review(new, &ns.name);
    review.request.operation = "UPDATE".into();
    review.request.old_object = Some(old.clone());
    decide(endpoint, &review, policy, Some(ns))
}

/// Mutate, assert allowed, apply the patch.
pub fn mutated(obj: &Value, ns: &NamespaceMeta, policy: &ClusterPolicy) -> Value {
    let d = run(Endpoint::Mutate, obj, ns, policy);
    assert!(d.allowed, "denied: {}", d.message);
    vespa_tls_webhook::inject::apply(obj, &d.patch).unwrap()
}

/// A policy from YAML.
pub fn policy(yaml: &str) -> ClusterPolicy {
    ClusterPolicy::from_yaml(yaml).unwrap()
}
