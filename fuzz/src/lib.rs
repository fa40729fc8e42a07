//! Shared fixtures, invariants and structured generators for the fuzz targets.
//!
//! Every target calls into the crate's public, pure API only. The invariants are
//! the ones the README promises:
//! - a decision is well-formed and `respond` is a valid AdmissionReview;
//! - an allowed `/mutate` patch applies to the request object, the result passes
//!   `/validate` in an enforced namespace with the same settings, and mutating
//!   it again changes nothing.

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use base64::Engine;
use serde_json::{Map, Value, json};
use vespa_tls_webhook::admission::{
    Decision, Endpoint, Review, decide, parse_review, parse_review_complete, parse_review_for,
    parse_review_serde,
};
use vespa_tls_webhook::duration::GoDuration;
use vespa_tls_webhook::inject::apply;
use vespa_tls_webhook::patch::Operation;
use vespa_tls_webhook::layout::{Role, wanted};
use vespa_tls_webhook::policy::{ClusterPolicy, INJECTION_LABEL, NamespaceMeta};
use vespa_tls_webhook::projection::Purpose;
use vespa_tls_webhook::settings::TlsSettings;
use vespa_tls_webhook::target::{Kind, templates};

/// The cluster policy of `examples/policy.yaml`.
pub const EXAMPLE_POLICY: &str = include_str!("../../examples/policy.yaml");

/// A policy unlike the built-in one: RSA/PKCS1 defaults, mixed mode allowed, no
/// opt-out, `enabled` by default.
pub const STRICT_POLICY: &str = r#"
defaultMode: enabled
defaults:
  key-algorithm: RSA
  key-size: "4096"
  key-encoding: PKCS1
  duration: 2160h
  renew-before: 360h
constraints:
  allowOptOut: false
  allowMixedMode: true
  allowedKeyAlgorithms: [RSA, ECDSA]
  minRenewBefore: 1h
"#;

/// A policy that forbids namespace overrides.
pub const LOCKED_POLICY: &str = r#"
constraints:
  allowNamespaceOverrides: false
  allowedIssuers: [{name: ca-issuer}]
"#;

/// The fixed policies the targets decide under.
pub fn policies() -> &'static [(&'static str, ClusterPolicy)] {
    static P: OnceLock<Vec<(&'static str, ClusterPolicy)>> = OnceLock::new();
    P.get_or_init(|| {
        let parse = |y: &str| match ClusterPolicy::from_yaml(y) {
            Ok(p) => p,
            Err(e) => panic!("fixture policy refused: {e}"),
        };
        vec![
            ("default", ClusterPolicy::default()),
            ("example", parse(EXAMPLE_POLICY)),
            ("strict", parse(STRICT_POLICY)),
            ("locked", parse(LOCKED_POLICY)),
        ]
    })
}

/// Namespaces named `name` in the interesting modes: enabled/enforced, with and
/// without the ingress annotation, with mixed mode, and unlabelled.
pub fn namespaces(name: &str) -> Vec<NamespaceMeta> {
    let ns = |mode: &str| NamespaceMeta::named(name).with_label(INJECTION_LABEL, mode);
    let ingress = "tls.vespa.ai/ingress-issuer-name";
    vec![
        ns("enabled"),
        ns("enforced"),
        ns("enabled").with_annotation(ingress, "ingress-issuer"),
        ns("enforced").with_annotation(ingress, "ingress-issuer"),
        ns("enabled").with_annotation("tls.vespa.ai/mixed-mode", "tls_client_mixed_server"),
        NamespaceMeta::named(name),
    ]
}

/// Parse `body` as the server does (a Pod projected to the fields the decision
/// reads) and as the reference does (every field kept): both accept it or both
/// refuse it with the same error, and where `pick(policy, namespace)` holds the
/// decisions and the response bytes are the same. The hand-written fast path
/// (`vespa_tls_webhook::scan`), where it reads the body, reads it exactly as
/// serde does. Returns the server's reading.
pub fn check_projection(
    body: &[u8],
    mut pick: impl FnMut(usize, usize) -> bool,
) -> Option<Review> {
    if let Ok(text) = std::str::from_utf8(body) {
        for purpose in [Purpose::Review, Purpose::Mutation] {
            if let Some(scanned) = vespa_tls_webhook::scan::read(text, purpose) {
                let serde = parse_review_serde(body, purpose);
                assert_eq!(Ok(&scanned), serde.as_ref(), "the fast path read it otherwise");
                // Key order too (Value's equality ignores it).
                let order = |r: &Review| serde_json::to_string(&r.request.object).ok();
                assert_eq!(order(&scanned), serde.as_ref().ok().and_then(order));
            }
        }
    }
    let projected = parse_review(body);
    let complete = parse_review_complete(body);
    // The server's readings, for /mutate and for /validate.
    let own = [Endpoint::Mutate, Endpoint::Validate].map(|e| parse_review_for(e, body));
    for reading in &own {
        assert_eq!(
            reading.as_ref().err(),
            complete.as_ref().err(),
            "the projection changed acceptance or the error"
        );
    }
    let (projected, complete) = match (projected, complete) {
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the projection changed the error");
            return None;
        }
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => panic!("the projection changed acceptance: {a:?} vs {b:?}"),
    };
    let [for_mutate, for_validate] = own.map(|r| r.expect("accepted, as checked above"));
    let name = complete.namespace().unwrap_or("vespa").to_string();
    for (n, ns) in namespaces(&name).iter().enumerate() {
        for (p, (pname, policy)) in policies().iter().enumerate() {
            if !pick(p, n) {
                continue;
            }
            for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
                let b = decide(endpoint, &complete, policy, Some(ns));
                let server = match endpoint {
                    Endpoint::Mutate => &for_mutate,
                    Endpoint::Validate => &for_validate,
                };
                for own in [&projected, server] {
                    let a = decide(endpoint, own, policy, Some(ns));
                    assert_eq!(a, b, "projection changed the decision ({pname}, {ns:?})");
                    assert_eq!(own.respond(&a), complete.respond(&b));
                }
            }
        }
    }
    Some(projected)
}

/// Check every invariant of a parsed review, for both endpoints, every fixed
/// policy and every fixed namespace.
pub fn check_review(review: &Review) {
    check_review_in(review, |_, _| true);
}

/// [`check_review`] for the (policy, namespace) combinations `pick` selects, by
/// their indexes in [`policies`] and [`namespaces`].
pub fn check_review_in(review: &Review, mut pick: impl FnMut(usize, usize) -> bool) {
    let _ = review.object_name();
    let mut names = vec!["vespa".to_string()];
    if let Some(n) = review.namespace() {
        if n != "vespa" {
            names.push(n.to_string());
        }
    }
    for name in &names {
        for (n, ns) in namespaces(name).iter().enumerate() {
            for (p, (pname, policy)) in policies().iter().enumerate() {
                if !pick(p, n) {
                    continue;
                }
                for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
                    let d = decide(endpoint, review, policy, Some(ns));
                    check_decision(endpoint, review, &d, policy, ns, pname);
                }
            }
        }
    }
    // The shell passes no namespace for kinds that need none.
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let d = decide(endpoint, review, &ClusterPolicy::default(), None);
        check_response(review, &d);
    }
}

fn check_decision(
    endpoint: Endpoint,
    review: &Review,
    d: &Decision,
    policy: &ClusterPolicy,
    ns: &NamespaceMeta,
    pname: &str,
) {
    check_response(review, d);
    if endpoint == Endpoint::Validate {
        assert!(d.patch.is_empty(), "/validate returned a patch: {d:?}");
    }
    if !d.allowed || d.patch.is_empty() {
        return;
    }
    let r = &review.request;
    let object = r
        .object
        .as_ref()
        .unwrap_or_else(|| panic!("patch without an object: {d:?}"));
    let patched = match apply(object, &d.patch) {
        Ok(p) => p,
        Err(e) => panic!(
            "policy {pname}, ns {ns:?}: patch does not apply: {e}\nobject: {object}\npatch: {}",
            Value::Array(d.patch.iter().map(Operation::to_value).collect())
        ),
    };
    let mut again = review.clone();
    again.request.object = Some(patched.clone());

    // Mutating the result again changes nothing.
    let d2 = decide(Endpoint::Mutate, &again, policy, Some(ns));
    assert!(
        d2.allowed && d2.patch.is_empty(),
        "policy {pname}, ns {ns:?}: mutate is not idempotent: {d2:?}\nobject: {object}\npatched: {patched}"
    );

    // The result passes /validate where TLS is enforced with the same settings.
    let enforced = ns.clone().with_label(INJECTION_LABEL, "enforced");
    let v = decide(Endpoint::Validate, &again, policy, Some(&enforced));
    let kind = Kind::from_group_kind(&r.kind.group, &r.kind.kind);
    // A VespaSet with neither configServer nor application has no pod template
    // to secure; /validate refuses it by design (README, Decisions).
    let no_template =
        kind == Some(Kind::VespaSet) && templates(Kind::VespaSet, &patched).is_empty();
    assert!(
        v.allowed || no_template,
        "policy {pname}, ns {ns:?}: injected object fails /validate: {}\nobject: {object}\npatched: {patched}",
        v.message
    );
}

/// `respond` is a well-formed AdmissionReview answering this review with `d`.
pub fn check_response(review: &Review, d: &Decision) {
    if d.allowed {
        assert!(d.message.is_empty(), "allowed with a message: {d:?}");
    } else {
        assert!(d.patch.is_empty(), "denied with a patch: {d:?}");
        assert!(!d.message.is_empty(), "denied without a message: {d:?}");
    }
    let body = review.respond(d);
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => panic!(
            "respond is not JSON: {e}: {}",
            String::from_utf8_lossy(&body)
        ),
    };
    assert_eq!(v["apiVersion"], json!(review.api_version));
    assert_eq!(v["kind"], json!("AdmissionReview"));
    let response = &v["response"];
    assert_eq!(response["uid"], json!(review.request.uid));
    assert_eq!(response["allowed"], json!(d.allowed));
    if !d.allowed {
        assert_eq!(response["status"]["message"], json!(d.message));
    }
    match response.get("patch") {
        None => assert!(!d.allowed || d.patch.is_empty()),
        Some(p) => {
            assert_eq!(response["patchType"], json!("JSONPatch"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("patch is not base64: {e}"));
            let ops: Value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("patch is not JSON: {e}"));
            assert_eq!(
                ops,
                Value::Array(d.patch.iter().map(Operation::to_value).collect())
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Structured generation.

/// The settings the structured generator draws "our own" entries from, so that
/// identical, stale and conflicting entries are all reachable.
pub fn settings_pool() -> &'static [TlsSettings] {
    static S: OnceLock<Vec<TlsSettings>> = OnceLock::new();
    S.get_or_init(|| {
        let policy = ClusterPolicy::default();
        let base = NamespaceMeta::named("vespa");
        [
            base.clone(),
            base.clone()
                .with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress-issuer"),
            base.clone()
                .with_annotation("tls.vespa.ai/key-algorithm", "RSA")
                .with_annotation("tls.vespa.ai/duration", "1440h"),
            NamespaceMeta::named("other"),
        ]
        .iter()
        .filter_map(|ns| policy.settings_for(ns).ok())
        .collect()
    })
}

/// Pick one of `items`.
pub fn pick<T: Clone>(u: &mut Unstructured, items: &[T]) -> Result<T> {
    Ok(u.choose(items)?.clone())
}

/// A short arbitrary string.
pub fn short_string(u: &mut Unstructured) -> Result<String> {
    let len = u.int_in_range(0..=12)?;
    let mut s = String::new();
    for _ in 0..len {
        s.push(u.arbitrary::<char>()?);
    }
    Ok(s)
}

/// Mostly one of `choices`, sometimes an arbitrary string.
pub fn text(u: &mut Unstructured, choices: &[&str]) -> Result<String> {
    if choices.is_empty() || u.ratio(1, 5)? {
        short_string(u)
    } else {
        Ok(pick(u, choices)?.to_string())
    }
}

/// Any JSON value, at most `depth` deep.
pub fn junk(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let max = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<bool>()?),
        2 => match u.int_in_range(0..=2)? {
            0 => json!(u.arbitrary::<i64>()?),
            1 => json!(u.arbitrary::<u64>()?),
            _ => serde_json::Number::from_f64(u.arbitrary::<f64>()?)
                .map_or(Value::Null, Value::Number),
        },
        3 | 4 => json!(text(u, &["vespa", "true", "false", "420", ""])?),
        5 => {
            let n = u.int_in_range(0..=3)?;
            let mut a = Vec::new();
            for _ in 0..n {
                a.push(junk(u, depth - 1)?);
            }
            Value::Array(a)
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut m = Map::new();
            for _ in 0..n {
                let k = text(
                    u,
                    &["name", "value", "mountPath", "readOnly", "csi", "configMap"],
                )?;
                m.insert(k, junk(u, depth - 1)?);
            }
            Value::Object(m)
        }
    })
}

/// Rarely junk instead of the structured value.
fn or_junk(
    u: &mut Unstructured,
    v: impl FnOnce(&mut Unstructured) -> Result<Value>,
) -> Result<Value> {
    if u.ratio(1, 24)? { junk(u, 2) } else { v(u) }
}

/// Change one thing about an entry of ours (or leave it).
fn tweak(u: &mut Unstructured, mut v: Value) -> Result<Value> {
    match u.int_in_range(0..=9)? {
        0 => {
            if let Some(m) = v.as_object_mut() {
                if let Some(k) = m.keys().nth(u.int_in_range(0..=3)?).cloned() {
                    m.remove(&k);
                }
            }
        }
        1 => {
            if let Some(m) = v.as_object_mut() {
                let k = text(u, &["readOnly", "value", "subPath", "name", "mountPath"])?;
                m.insert(k, junk(u, 1)?);
            }
        }
        2 => {
            if let Some(cm) = v.get_mut("configMap").and_then(Value::as_object_mut) {
                cm.insert(
                    "defaultMode".into(),
                    pick(u, &[json!(420), json!(420.0), json!(256)])?,
                );
            }
        }
        3 => {
            if let Some(a) = v
                .pointer_mut("/csi/volumeAttributes")
                .and_then(Value::as_object_mut)
            {
                let k = format!(
                    "csi.cert-manager.io/{}",
                    text(
                        u,
                        &[
                            "duration",
                            "key-size",
                            "issuer-name",
                            "uri-sans",
                            "fs-group",
                            "x"
                        ]
                    )?
                );
                let val = text(
                    u,
                    &["1h", "2048", "ca-issuer", "ingress-issuer", "9999h", "0"],
                )?;
                if u.arbitrary()? {
                    a.remove(&k);
                } else {
                    a.insert(k, json!(val));
                }
            }
        }
        4 => {
            if let Some(csi) = v.get_mut("csi").and_then(Value::as_object_mut) {
                csi.insert("readOnly".into(), json!(false));
            }
        }
        _ => {}
    }
    Ok(v)
}

fn entry(
    u: &mut Unstructured,
    ours: &[Value],
    other: impl FnOnce(&mut Unstructured) -> Result<Value>,
) -> Result<Value> {
    match u.int_in_range(0..=5)? {
        0..=2 if !ours.is_empty() => {
            let v = pick(u, ours)?;
            tweak(u, v)
        }
        5 => junk(u, 2),
        _ => other(u),
    }
}

fn list(
    u: &mut Unstructured,
    max: u32,
    mut item: impl FnMut(&mut Unstructured) -> Result<Value>,
) -> Result<Option<Value>> {
    match u.int_in_range(0..=9)? {
        0 => Ok(None),
        1 => Ok(Some(Value::Null)),
        2 => Ok(Some(junk(u, 1)?)),
        _ => {
            let n = u.int_in_range(0..=max)?;
            let mut a = Vec::new();
            for _ in 0..n {
                a.push(item(u)?);
            }
            Ok(Some(Value::Array(a)))
        }
    }
}

fn container(u: &mut Unstructured, pool: &Pool) -> Result<Value> {
    or_junk(u, |u| {
        let mut c = Map::new();
        if u.ratio(15, 16)? {
            let name = match u.int_in_range(0..=5)? {
                0..=2 => json!("vespa"),
                3 => json!("sidecar"),
                4 => json!(text(u, &["Vespa", "vespa "])?),
                _ => junk(u, 0)?,
            };
            c.insert("name".into(), name);
        }
        c.insert("image".into(), json!("vespaengine/vespa"));
        if let Some(env) = list(u, 4, |u| {
            entry(u, &pool.env, |u| {
                let name = text(
                    u,
                    &[
                        "VESPA_TLS_CONFIG_FILE",
                        "VESPA_TLS_CONFIG_FILE_INGRESS",
                        "VESPA_TLS_INSECURE_MIXED_MODE",
                        "USER",
                    ],
                )?;
                let value = text(
                    u,
                    &[
                        "/etc/tls-config/tls-config.json",
                        "/etc/tls-config-ingress/tls-config.json",
                        "tls_client_mixed_server",
                        "x",
                    ],
                )?;
                Ok(json!({"name": name, "value": value}))
            })
        })? {
            c.insert("env".into(), env);
        }
        if let Some(mounts) = list(u, 5, |u| {
            entry(u, &pool.mounts, |u| {
                let name = text(u, &["tls-certs", "tls-config", "tls-certs-ingress", "data"])?;
                let path = text(
                    u,
                    &[
                        "/etc/tls",
                        "/etc/tls-config/tls-config.json",
                        "/etc/tls-ingress",
                        "/data",
                    ],
                )?;
                let mut m = json!({"name": name, "mountPath": path});
                if u.arbitrary()? {
                    m["readOnly"] = json!(u.arbitrary::<bool>()?);
                }
                if u.arbitrary()? {
                    m["subPath"] = json!(text(u, &["tls-config.json"])?);
                }
                Ok(m)
            })
        })? {
            c.insert("volumeMounts".into(), mounts);
        }
        Ok(Value::Object(c))
    })
}

fn pod_spec(u: &mut Unstructured, pool: &Pool) -> Result<Value> {
    or_junk(u, |u| {
        let mut s = Map::new();
        if let Some(cs) = list(u, 3, |u| container(u, pool))? {
            s.insert("containers".into(), cs);
        }
        if u.ratio(1, 6)? {
            if let Some(cs) = list(u, 2, |u| container(u, pool))? {
                s.insert("initContainers".into(), cs);
            }
        }
        if let Some(vs) = list(u, 5, |u| {
            entry(u, &pool.volumes, |u| {
                let name = text(
                    u,
                    &[
                        "tls-certs",
                        "tls-config",
                        "tls-certs-ingress",
                        "tls-config-ingress",
                        "data",
                    ],
                )?;
                Ok(match u.int_in_range(0..=2)? {
                    0 => json!({"name": name, "emptyDir": {}}),
                    1 => {
                        json!({"name": name, "configMap": {"name": text(u, &["vespa-config-tls"])?}})
                    }
                    _ => {
                        json!({"name": name, "csi": {"driver": text(u, &["csi.cert-manager.io"])?, "readOnly": true,
                        "volumeAttributes": {"csi.cert-manager.io/issuer-name": text(u, &["ca-issuer", "evil"])?}}})
                    }
                })
            })
        })? {
            s.insert("volumes".into(), vs);
        }
        Ok(Value::Object(s))
    })
}

/// Entries of ours (from several settings) to draw from.
struct Pool {
    env: Vec<Value>,
    mounts: Vec<Value>,
    volumes: Vec<Value>,
    fingerprints: Vec<String>,
}

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Pool {
            env: Vec::new(),
            mounts: Vec::new(),
            volumes: Vec::new(),
            fingerprints: Vec::new(),
        };
        for s in settings_pool() {
            let w = wanted(s, Role::Application);
            p.env.extend(w.env);
            p.mounts.extend(w.mounts);
            p.volumes.extend(w.volumes);
            p.fingerprints.push(s.fingerprint());
        }
        let mut mixed = settings_pool()[0].clone();
        mixed.mixed_mode = Some("tls_client_mixed_server".into());
        p.env.extend(wanted(&mixed, Role::ConfigServer).env);
        p.fingerprints.push(mixed.fingerprint());
        p
    })
}

fn metadata(u: &mut Unstructured, pool: &Pool) -> Result<Option<Value>> {
    if u.ratio(1, 10)? {
        return Ok(None);
    }
    or_junk(u, |u| {
        let mut m = Map::new();
        m.insert(
            "name".into(),
            json!(text(u, &["vespaset-sample", "vespa-0"])?),
        );
        if u.arbitrary()? {
            m.insert(
                "namespace".into(),
                json!(text(u, &["vespa", "kube-system"])?),
            );
        }
        if u.ratio(1, 8)? {
            m.insert("generateName".into(), json!("vespa-"));
        }
        if u.arbitrary()? {
            let mut l = Map::new();
            if u.arbitrary()? {
                l.insert(
                    "app.kubernetes.io/component".into(),
                    json!(text(u, &["configserver", "container", "content"])?),
                );
            }
            l.insert("app".into(), json!("vespa"));
            m.insert("labels".into(), Value::Object(l));
        }
        match u.int_in_range(0..=5)? {
            0 | 1 => {}
            2 => {
                m.insert("annotations".into(), junk(u, 1)?);
            }
            _ => {
                let mut a = Map::new();
                if u.ratio(1, 3)? {
                    let v = match u.int_in_range(0..=3)? {
                        0 => json!("true"),
                        1 => json!("false"),
                        2 => json!(text(u, &["False", ""])?),
                        _ => junk(u, 0)?,
                    };
                    a.insert("tls.vespa.ai/inject".into(), v);
                }
                if u.arbitrary()? {
                    let mut fps: Vec<&str> = pool.fingerprints.iter().map(String::as_str).collect();
                    fps.push("v1-0000000000000000");
                    let v = if u.ratio(1, 8)? {
                        junk(u, 0)?
                    } else {
                        json!(text(u, &fps)?)
                    };
                    a.insert("tls.vespa.ai/injected".into(), v);
                }
                if u.ratio(1, 4)? {
                    a.insert(short_string(u)?, json!(short_string(u)?));
                }
                m.insert("annotations".into(), Value::Object(a));
            }
        }
        Ok(Value::Object(m))
    })
    .map(Some)
}

fn vespaset_section(u: &mut Unstructured, pool: &Pool) -> Result<Option<Value>> {
    Ok(match u.int_in_range(0..=9)? {
        0 | 1 => None,
        2 => Some(junk(u, 1)?),
        _ => {
            let mut s = Map::new();
            s.insert(
                "image".into(),
                json!("docker.io/vespaengine/vespa:8.600.35"),
            );
            match u.int_in_range(0..=7)? {
                0 => {}
                1 => {
                    s.insert("podTemplate".into(), junk(u, 1)?);
                }
                _ => {
                    let mut t = Map::new();
                    match u.int_in_range(0..=7)? {
                        0 => {}
                        1 => {
                            t.insert("spec".into(), Value::Null);
                        }
                        _ => {
                            t.insert("spec".into(), pod_spec(u, pool)?);
                        }
                    }
                    if u.ratio(1, 4)? {
                        t.insert("metadata".into(), json!({"labels": {"x": "y"}}));
                    }
                    s.insert("podTemplate".into(), Value::Object(t));
                }
            }
            Some(Value::Object(s))
        }
    })
}

/// `spec.profiles` of a VespaSet: pod templates that override the sections'
/// (as a map by name, or a list), which must not undo what is injected.
fn profiles(u: &mut Unstructured, pool: &Pool) -> Result<Value> {
    let n = u.int_in_range(0..=2)?;
    let mut items = Vec::new();
    for _ in 0..n {
        let p = match vespaset_section(u, pool)? {
            Some(p) => p,
            None => json!({}),
        };
        items.push((text(u, &["small", "large", "a/b", "x~y", ""])?, p));
    }
    Ok(if u.arbitrary()? {
        Value::Array(items.into_iter().map(|(_, p)| p).collect())
    } else {
        Value::Object(items.into_iter().collect())
    })
}

/// An object of the given kind (VespaSet, Pod, Namespace or other).
pub fn object(u: &mut Unstructured, kind: &str) -> Result<Value> {
    let pool = pool();
    if u.ratio(1, 32)? {
        return junk(u, 2);
    }
    let mut o = Map::new();
    let api = match kind {
        "VespaSet" => "k8s.ai.vespa/v1",
        _ => "v1",
    };
    o.insert("apiVersion".into(), json!(api));
    o.insert("kind".into(), json!(kind));
    if let Some(m) = metadata(u, pool)? {
        o.insert("metadata".into(), m);
    }
    match kind {
        "VespaSet" => {
            let spec = or_junk(u, |u| {
                let mut s = Map::new();
                s.insert("version".into(), json!("8.600.35"));
                for section in ["configServer", "application"] {
                    if let Some(v) = vespaset_section(u, pool)? {
                        s.insert(section.into(), v);
                    }
                }
                if u.ratio(1, 5)? {
                    s.insert("profiles".into(), profiles(u, pool)?);
                }
                Ok(Value::Object(s))
            })?;
            if u.ratio(15, 16)? {
                o.insert("spec".into(), spec);
            }
        }
        "Namespace" => {
            let label = text(u, &["enforced", "enabled", "disabled"])?;
            if u.ratio(3, 4)? {
                let meta = o.entry("metadata").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert("labels".into(), json!({INJECTION_LABEL: label}));
                }
            }
        }
        _ => {
            o.insert("spec".into(), pod_spec(u, pool)?);
        }
    }
    Ok(Value::Object(o))
}

/// A whole AdmissionReview, mostly well-formed, with a structured object.
pub fn review_json(u: &mut Unstructured) -> Result<Value> {
    let kind = pick(
        u,
        &[
            "VespaSet",
            "VespaSet",
            "Pod",
            "Pod",
            "Namespace",
            "Deployment",
        ],
    )?;
    let group = match (kind, u.ratio(1, 16)?) {
        (_, true) => text(u, &["apps", "k8s.ai.vespa", ""])?,
        ("VespaSet", _) => "k8s.ai.vespa".into(),
        ("Deployment", _) => "apps".into(),
        _ => String::new(),
    };
    let operation = pick(
        u,
        &["CREATE", "CREATE", "UPDATE", "UPDATE", "DELETE", "CONNECT"],
    )?;
    let mut request = json!({
        "uid": text(u, &["705ab4f5-6393-11e8-b7cc-42010a800002", ""])?,
        "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": operation,
        "userInfo": {"username": text(u, &["dev@example.com", "admin"])?,
                     "groups": [text(u, &["system:authenticated", "system:masters"])?]},
    });
    if u.ratio(1, 12)? {
        request["subResource"] = json!(text(u, &["status", ""])?);
    }
    if u.arbitrary()? {
        request["name"] = json!(text(u, &["vespaset-sample", ""])?);
    }
    if u.ratio(7, 8)? {
        request["namespace"] = json!(text(u, &["vespa", "vespa-prod", "kube-system", ""])?);
    }
    if u.ratio(15, 16)? {
        request["object"] = object(u, kind)?;
    }
    if operation != "CREATE" && u.arbitrary()? {
        request["oldObject"] = object(u, kind)?;
    }
    if u.ratio(1, 8)? {
        request["dryRun"] = json!(u.arbitrary::<bool>()?);
    }
    let api = if u.ratio(1, 16)? {
        text(u, &["admission.k8s.io/v2"])?
    } else {
        pick(u, &["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])?.to_string()
    };
    let mut review = json!({"apiVersion": api, "kind": "AdmissionReview"});
    if u.ratio(31, 32)? {
        review["request"] = request;
    }
    Ok(review)
}

/// What every accepted duration `d` parsed from `s` must satisfy: it keeps its
/// text, fits Go's `time.Duration` (i64 nanoseconds), and, when not negative,
/// appending `0s` gives the same length.
pub fn check_accepted_duration(s: &str, d: &GoDuration) {
    assert_eq!(d.as_str(), s);
    assert!(
        d.nanos() <= i64::MAX as u128,
        "{s:?} is beyond Go's range: {}",
        d.nanos()
    );
    if !s.starts_with('-') {
        let longer = format!("{s}0s");
        match longer.parse::<GoDuration>() {
            Ok(l) => assert_eq!(l.nanos(), d.nanos(), "{s:?} vs {longer:?}"),
            Err(e) => panic!("{s:?} parses but {longer:?} does not: {e}"),
        }
    }
}
