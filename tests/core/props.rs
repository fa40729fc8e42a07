//! Property tests: for generated VespaSets and Pods, the patch applies, the
//! result passes validation, injecting again gives an empty patch, and every
//! entry the user had is still there, in order.

use proptest::prelude::*;
use serde_json::{Value, json};
use vespa_tls_webhook::admission::Endpoint;
use vespa_tls_webhook::inject::apply;
use vespa_tls_webhook::layout::{Role, wanted};
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};

use crate::fixtures::{ns, run};

/// A user's container other than vespa.
fn other_container() -> impl Strategy<Value = Value> {
    "[a-z]{3,8}"
        .prop_filter("not vespa", |n| n != "vespa")
        .prop_map(|n| json!({"name": format!("side-{n}"), "image": "busybox"}))
}

/// Env entries with unique user names.
fn user_env() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::btree_set("[A-Z]{2,6}", 0..5).prop_map(|names| {
        names
            .into_iter()
            .map(|n| json!({"name": format!("USER_{n}"), "value": n}))
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Shape {
    template: u8,
    others_before: Vec<Value>,
    others_after: Vec<Value>,
    env: Option<Vec<Value>>,
    mounts: Option<usize>,
    volumes: Option<usize>,
    /// How many of our own entries are already there (identical).
    prefilled: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        0u8..4,
        prop::collection::vec(other_container(), 0..2),
        prop::collection::vec(other_container(), 0..2),
        prop::option::of(user_env()),
        prop::option::of(0usize..3),
        prop::option::of(0usize..3),
        0usize..3,
    )
        .prop_map(
            |(template, others_before, others_after, env, mounts, volumes, prefilled)| Shape {
                template,
                others_before,
                others_after,
                env,
                mounts,
                volumes,
                prefilled,
            },
        )
}

/// A pod spec of the given shape; `ours` are the entries injection wants.
fn pod_spec(s: &Shape, role: Role, ns: &NamespaceMeta) -> Option<Value> {
    let want = wanted(&ClusterPolicy::default().settings_for(ns).unwrap(), role);
    match s.template {
        0 => return None,
        1 => return Some(json!({})),
        _ => {}
    }
    let mut vespa = json!({"name": "vespa", "image": "vespaengine/vespa"});
    if let Some(env) = &s.env {
        let mut env = env.clone();
        env.extend(want.env.iter().take(s.prefilled.min(1)).cloned());
        vespa["env"] = json!(env);
    }
    if let Some(n) = s.mounts {
        let mut m: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("data-{i}"), "mountPath": format!("/data/{i}")}))
            .collect();
        m.extend(want.mounts.iter().take(s.prefilled).cloned());
        vespa["volumeMounts"] = json!(m);
    }
    let mut containers = s.others_before.clone();
    if s.template == 3 {
        containers.push(vespa);
    }
    containers.extend(s.others_after.iter().cloned());
    let mut spec = json!({"containers": containers});
    if let Some(n) = s.volumes {
        let mut v: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("data-{i}"), "emptyDir": {}}))
            .collect();
        v.extend(want.volumes.iter().take(s.prefilled).cloned());
        spec["volumes"] = json!(v);
    }
    if s.template == 2 {
        spec.as_object_mut().unwrap().remove("containers");
    }
    Some(spec)
}

fn namespace(ingress: bool, algorithm: usize) -> NamespaceMeta {
    let mut n = ns("vespa", "enabled");
    if ingress {
        n = n.with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress-issuer");
    }
    n.with_annotation(
        "tls.vespa.ai/key-algorithm",
        ["ECDSA", "RSA", "Ed25519"][algorithm],
    )
}

fn vespaset(cfg: Option<(Shape, bool)>, app: Option<(Shape, bool)>, n: &NamespaceMeta) -> Value {
    let mut spec = json!({"version": "8"});
    for (key, section, role) in [
        ("configServer", cfg, Role::ConfigServer),
        ("application", app, Role::Application),
    ] {
        let Some((shape, with_template)) = section else {
            continue;
        };
        let mut s = json!({"image": "vespa"});
        if with_template {
            s["podTemplate"] = json!({});
            if let Some(pod) = pod_spec(&shape, role, n) {
                s["podTemplate"]["spec"] = pod;
            }
        }
        spec[key] = s;
    }
    json!({"apiVersion": "k8s.ai.vespa/v1", "kind": "VespaSet", "metadata": {"name": "v", "namespace": "vespa"}, "spec": spec})
}

/// Every array of the input is a prefix of the same array in the output.
fn assert_kept(input: &Value, output: &Value, path: &str) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let out = b.get(k).unwrap_or_else(|| panic!("{path}/{k} was removed"));
                assert_kept(v, out, &format!("{path}/{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert!(b.len() >= a.len(), "{path} shrank");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_kept(x, y, &format!("{path}/{i}"));
            }
        }
        (a, b) => assert_eq!(a, b, "{path} changed"),
    }
}

fn check_roundtrip(obj: &Value, n: &NamespaceMeta) {
    let policy = ClusterPolicy::default();
    let d = run(Endpoint::Mutate, obj, n, &policy);
    assert!(d.allowed, "denied: {}", d.message);
    let out = apply(obj, &d.patch).expect("patch applies");
    assert_kept(obj, &out, "");
    let enforced = NamespaceMeta {
        labels: ns("vespa", "enforced").labels,
        ..n.clone()
    };
    let v = run(Endpoint::Validate, &out, &enforced, &policy);
    assert!(v.allowed, "injected output fails validation: {}", v.message);
    let again = run(Endpoint::Mutate, &out, n, &policy);
    assert!(
        again.allowed && again.patch.is_empty(),
        "second patch: {:?}",
        again.patch
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn vespasets(cfg in prop::option::of((shape(), any::<bool>())), app in prop::option::of((shape(), any::<bool>())), ingress in any::<bool>(), alg in 0usize..3) {
        // A VespaSet with neither section has no pods; validation rightly refuses it.
        prop_assume!(cfg.is_some() || app.is_some());
        let n = namespace(ingress, alg);
        let obj = vespaset(cfg, app, &n);
        check_roundtrip(&obj, &n);
    }

    #[test]
    fn pods(s in shape(), configserver in any::<bool>(), ingress in any::<bool>(), alg in 0usize..3) {
        let n = namespace(ingress, alg);
        let role = if configserver { Role::ConfigServer } else { Role::Application };
        // A Pod is a Vespa pod only with a vespa container.
        let s = Shape { template: 3, ..s };
        let spec = pod_spec(&s, role, &n).unwrap();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "vespa", "labels": {}}, "spec": spec});
        if configserver {
            pod["metadata"]["labels"]["app.kubernetes.io/component"] = json!("configserver");
        }
        check_roundtrip(&pod, &n);
    }
}

/// Keys and pointer tokens that exercise RFC 6901: escapes (`~0`, `~1`, a
/// stray `~`), `/` inside a key, the empty key, and array indexes with a sign
/// or a leading zero (not indexes).
fn token() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "", "a", "b", "a/b", "a~b", "~", "~0", "~1", "~01", "0", "1", "01", "+1", "-", "10",
    ])
    .prop_map(str::to_string)
}

/// A small JSON document whose keys come from [`token`].
fn document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            // Up to 12 members: past `target::field`'s linear scan of 8.
            prop::collection::vec((token(), inner), 0..12)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A pointer of raw tokens, sometimes escaped the RFC 6901 way, sometimes not
/// (so that `~` and `/` inside tokens reach the reader as written).
fn json_pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z/~01]{0,6}",
        prop::collection::vec((token(), any::<bool>()), 1..5).prop_map(|tokens| {
            tokens
                .into_iter()
                .map(|(t, escaped)| {
                    let t = if escaped {
                        vespa_tls_webhook::inject::escape(&t)
                    } else {
                        t
                    };
                    format!("/{t}")
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The decision's own pointer (no allocation per token) reads exactly what
    /// serde_json's `Value::pointer` reads.
    #[test]
    fn pointer_reads_what_serde_json_reads(doc in document(), pointer in json_pointer()) {
        let ours = vespa_tls_webhook::target::pointer(&doc, &pointer);
        let serde = doc.pointer(&pointer);
        prop_assert!(
            ours.map(|v| v as *const Value) == serde.map(|v| v as *const Value),
            "{pointer:?} in {doc}: ours {ours:?}, serde_json's {serde:?}"
        );
    }
}

/// Pointers into a document with every escape, compared with serde_json's.
#[test]
fn pointer_table() {
    let doc = json!({
        "a/b": {"~": 1, "~1": 2, "": [10, 11, {"x": 12}]},
        "m~n": [true],
        "0": "zero",
        "": {"": "empty"}
    });
    let hit = |p: &str| vespa_tls_webhook::target::pointer(&doc, p).cloned();
    for (p, want) in [
        ("", Some(doc.clone())),
        ("/a~1b/~0", Some(json!(1))),
        ("/a~1b/~01", Some(json!(2))),
        ("/a~1b//1", Some(json!(11))),
        ("/a~1b//2/x", Some(json!(12))),
        ("/a~1b//01", None),
        ("/a~1b//+1", None),
        ("/a~1b//3", None),
        ("/m~0n/0", Some(json!(true))),
        ("/0", Some(json!("zero"))),
        ("//", Some(json!("empty"))),
        ("a~1b", None),
        ("/a/b", None),
    ] {
        assert_eq!(hit(p), want, "{p:?}");
        assert_eq!(
            hit(p).as_ref(),
            doc.pointer(p),
            "{p:?} as serde_json reads it"
        );
    }
}
