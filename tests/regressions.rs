//! Hostile inputs to the pure core, and regressions for the bugs the fuzz targets
//! (`fuzz/`, `scripts/fuzz`) found. No server needed: everything goes through the
//! public API exactly as the HTTP handler and the CLI call it.

// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

use serde_json::{Value, json};
use vespa_tls_webhook::admission::{
    Endpoint, Review, ReviewError, decide, parse_review, parse_review_complete,
};
use vespa_tls_webhook::inject::{InjectError, apply, inject};
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};
use vespa_tls_webhook::target::Kind;

fn enabled() -> NamespaceMeta {
    NamespaceMeta::named("vespa").with_label("tls.vespa.ai/injection", "enabled")
}

fn enforced() -> NamespaceMeta {
    NamespaceMeta::named("vespa").with_label("tls.vespa.ai/injection", "enforced")
}

/// A v1 review of `object` (a VespaSet unless `kind` says otherwise), as JSON text.
fn review_text(kind: &str, object: &str) -> String {
    let group = if kind == "VespaSet" {
        "k8s.ai.vespa"
    } else {
        ""
    };
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{
            "uid":"u-1","kind":{{"group":"{group}","version":"v1","kind":"{kind}"}},
            "namespace":"vespa","operation":"CREATE","object":{object}}}}}"#
    )
}

fn json_error(body: &[u8]) -> String {
    match parse_review(body) {
        Err(ReviewError::Json(reason)) => reason,
        other => panic!("expected ReviewError::Json, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Hostile AdmissionReview bodies: each is a clear ReviewError (HTTP 400), never a
// crash.

#[test]
fn deeply_nested_body_is_an_error_not_a_stack_overflow() {
    // Far beyond serde_json's recursion limit (128), at the top level...
    let body = "[".repeat(100_000);
    json_error(body.as_bytes());
    let body = "{\"a\":".repeat(100_000);
    json_error(body.as_bytes());
    // (serde_json skips unknown fields without recursing: a deep one is harmless.)
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = review_text("Pod", "{}").replacen('{', &format!(r#"{{"x":{deep},"#), 1);
    assert_eq!(parse_review(body.as_bytes()).unwrap().request.uid, "u-1");
    // ... and inside the object of an otherwise valid review.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = review_text("VespaSet", &format!(r#"{{"spec":{{"x":{deep}}}}}"#));
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("recursion limit exceeded"), "{reason}");
    assert!(
        ReviewError::Json(reason.clone())
            .to_string()
            .starts_with("body is not an AdmissionReview: ")
    );
}

#[test]
fn nesting_within_the_limit_is_answered() {
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let object = format!(
        r#"{{"apiVersion":"k8s.ai.vespa/v1","kind":"VespaSet","metadata":{{"name":"a"}},
            "spec":{{"x":{deep},"configServer":{{}}}}}}"#
    );
    let body = review_text("VespaSet", &object);
    let review = parse_review(body.as_bytes()).unwrap();
    let d = decide(
        Endpoint::Mutate,
        &review,
        &ClusterPolicy::default(),
        Some(&enabled()),
    );
    assert!(d.allowed, "{}", d.message);
    // `spec.x` is not read (the projection skips it); the patch applies to the
    // complete object the apiserver holds, which keeps it.
    assert_eq!(
        review.request.object.as_ref().unwrap().pointer("/spec/x"),
        None
    );
    let complete = parse_review_complete(body.as_bytes()).unwrap();
    let patched = apply(complete.request.object.as_ref().unwrap(), &d.patch).unwrap();
    assert_eq!(
        patched.pointer("/spec/x").unwrap(),
        &serde_json::from_str::<Value>(&deep).unwrap()
    );
    let _: Value = serde_json::from_slice(&review.respond(&d)).unwrap();
}

#[test]
fn duplicate_envelope_fields_are_refused() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#;
    let reason = json_error(body);
    assert!(reason.contains("duplicate field `apiVersion`"), "{reason}");

    let body = review_text("Pod", "{}").replace(r#""uid":"u-1","#, r#""uid":"u-1","uid":"u-2","#);
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("duplicate field `uid`"), "{reason}");
}

#[test]
fn duplicate_keys_inside_the_object_keep_the_last_like_the_apiserver() {
    // Go's encoding/json (the apiserver) keeps the last of duplicate keys; so do we,
    // so the object we decide on is the object that is stored.
    let object = r#"{"metadata":{"annotations":{"tls.vespa.ai/inject":"false","tls.vespa.ai/inject":"true"}},
                     "spec":{"configServer":{}}}"#;
    let review = parse_review(review_text("VespaSet", object).as_bytes()).unwrap();
    let annotations = review.request.object.as_ref().unwrap()["metadata"]["annotations"].clone();
    assert_eq!(annotations, json!({"tls.vespa.ai/inject": "true"}));
    let d = decide(
        Endpoint::Validate,
        &review,
        &ClusterPolicy::default(),
        Some(&enforced()),
    );
    assert_ne!(d.reason, "opt-out-enforced", "{d:?}");
}

#[test]
fn huge_numbers() {
    // Beyond f64: refused.
    let body = review_text("Pod", r#"{"spec":{"securityContext":{"fsGroup":1e400}}}"#);
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("number out of range"), "{reason}");
    // A number where the uid string belongs: refused with the field's type.
    let body = review_text("Pod", "{}")
        .replace(r#""uid":"u-1""#, r#""uid":123456789012345678901234567890"#);
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("invalid type"), "{reason}");
    // Big but representable integers in the object are carried as they are (a
    // Namespace is read whole; a Pod's `spec.n` is not read at all, see below).
    let object = r#"{"spec":{"n":18446744073709551615,"m":-9223372036854775808}}"#;
    let review = parse_review(review_text("Namespace", object).as_bytes()).unwrap();
    assert_eq!(review.request.object.unwrap()["spec"]["n"], json!(u64::MAX));
    // A Pod's fields the decision never reads are checked but not kept.
    let body = review_text("Pod", object);
    let review = parse_review(body.as_bytes()).unwrap();
    assert_eq!(review.request.object.unwrap(), json!({"spec": {}}));
    let complete = parse_review_complete(body.as_bytes()).unwrap();
    assert_eq!(
        complete.request.object.unwrap()["spec"]["m"],
        json!(i64::MIN)
    );
}

#[test]
fn invalid_utf8_and_lone_surrogates() {
    let mut body = review_text("Pod", r#"{"metadata":{"name":"vespa-XX"}}"#).into_bytes();
    let at = body.windows(2).position(|w| w == b"XX").unwrap();
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    let reason = json_error(&body);
    assert!(reason.contains("invalid unicode code point"), "{reason}");

    let body = review_text("Pod", r#"{"metadata":{"name":"\ud800"}}"#);
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("escape"), "{reason}");
    let body = review_text("Pod", r#"{"metadata":{"name":"\ud800x"}}"#);
    let reason = json_error(body.as_bytes());
    assert!(reason.contains("escape"), "{reason}");
}

#[test]
fn missing_uid_and_other_required_fields() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":
                    {"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#;
    let reason = json_error(body);
    assert!(reason.contains("missing field `uid`"), "{reason}");

    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":
                    {"uid":"u","kind":{"kind":"Pod"}}}"#;
    assert!(json_error(body).contains("missing field `operation`"));

    let body = br#"{"kind":"AdmissionReview","request":{}}"#;
    assert!(json_error(body).contains("missing field `apiVersion`"));
}

#[test]
fn wrong_api_version_or_kind() {
    let body = br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{}}"#;
    let e = parse_review(body).unwrap_err();
    assert_eq!(
        e,
        ReviewError::Version {
            field: "apiVersion",
            value: "admission.k8s.io/v2".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "unsupported apiVersion \"admission.k8s.io/v2\"; expected admission.k8s.io/v1 or v1beta1 AdmissionReview"
    );

    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"ConversionReview","request":{}}"#;
    let e = parse_review(body).unwrap_err();
    assert_eq!(
        e,
        ReviewError::Version {
            field: "kind",
            value: "ConversionReview".into()
        }
    );

    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    assert_eq!(parse_review(body).unwrap_err(), ReviewError::NoRequest);
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#;
    assert_eq!(parse_review(body).unwrap_err(), ReviewError::NoRequest);
}

#[test]
fn empty_and_non_object_bodies() {
    assert_eq!(parse_review(b"").unwrap_err(), ReviewError::Empty);
    assert_eq!(parse_review(b" \r\n\t").unwrap_err(), ReviewError::Empty);
    for body in [
        &b"null"[..],
        b"[]",
        b"\"AdmissionReview\"",
        b"42",
        b"{",
        b"\xef\xbb\xbf{}",
    ] {
        let e = parse_review(body).unwrap_err();
        assert!(matches!(e, ReviewError::Json(_)), "{body:?}: {e:?}");
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the fuzz targets.

/// fuzz target `review`: a VespaSet review whose `object` is not a JSON object
/// (`[]`, `"x"`, `5`) was allowed with a patch adding `/metadata`, which cannot
/// apply to it — the apiserver would fail the request with a patch error instead
/// of a clear denial. `inject` now refuses a non-object document.
#[test]
fn vespaset_object_that_is_not_an_object_is_denied_not_misspatched() {
    let settings = ClusterPolicy::default().settings_for(&enabled()).unwrap();
    for object in [json!([]), json!("x"), json!(5), json!(true)] {
        match inject(&object, Kind::VespaSet, &settings, false) {
            Err(InjectError::Malformed { path, problem }) => {
                assert_eq!(path, "/");
                assert!(
                    problem.starts_with("expected an object, found "),
                    "{problem}"
                );
            }
            other => panic!("{object}: {other:?}"),
        }
        let review = parse_review(review_text("VespaSet", &object.to_string()).as_bytes()).unwrap();
        let d = decide(
            Endpoint::Mutate,
            &review,
            &ClusterPolicy::default(),
            Some(&enabled()),
        );
        assert!(!d.allowed && d.patch.is_empty(), "{object}: {d:?}");
        assert!(
            d.message.contains("TLS cannot be injected"),
            "{}",
            d.message
        );
        let _: Value = serde_json::from_slice(&review.respond(&d)).unwrap();
    }
    // A Pod that is not an object has no vespa container: allowed, untouched.
    let review: Review = parse_review(review_text("Pod", "[]").as_bytes()).unwrap();
    let d = decide(
        Endpoint::Mutate,
        &review,
        &ClusterPolicy::default(),
        Some(&enabled()),
    );
    assert!(d.allowed && d.patch.is_empty(), "{d:?}");
}

/// fuzz target `duration` (crash-5db09a96…): an integer part whose product with the
/// unit sits just below u128::MAX, plus a fraction, overflowed the parser's
/// accumulator — a panic with overflow checks, and in release builds a wrap to a
/// tiny duration: `340282366920938463463374607431768211.9us` was accepted as
/// 444ns, so a namespace annotation like `tls.vespa.ai/renew-before` with it
/// would pass admission and the csi-driver (Go) would then fail every mount.
#[test]
fn duration_with_a_huge_integer_part_and_a_fraction_is_an_overflow() {
    use vespa_tls_webhook::duration::{DurationError, GoDuration};
    for (unit, scale) in [
        ("us", 1_000u128),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ] {
        for k in 0..4 {
            let int = u128::MAX / scale - k;
            for frac in ["9", "5", "999999999999999"] {
                let text = format!("{int}.{frac}{unit}");
                assert_eq!(
                    text.parse::<GoDuration>(),
                    Err(DurationError::Overflow),
                    "{text}"
                );
            }
        }
    }
    assert_eq!(
        "340282366920938463463374607431768211.9us".parse::<GoDuration>(),
        Err(DurationError::Overflow)
    );
    // The limit itself is still accepted, as Go does.
    let max: GoDuration = "2562047h47m16.854775807s".parse().unwrap();
    assert_eq!(max.nanos(), i64::MAX as u128);

    // And the refusal reaches the user as a clear setting error.
    let ns = enabled().with_annotation(
        "tls.vespa.ai/renew-before",
        "340282366920938463463374607431768211.9us",
    );
    let errors = ClusterPolicy::default().settings_for(&ns).unwrap_err();
    let text = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        text.contains("tls.vespa.ai/renew-before") && text.contains("duration out of range"),
        "{text}"
    );
}

/// fuzz target `cli_yaml` (invariant "inject is idempotent on its own output"):
/// a JSON list holding one document was printed as that document alone, so
/// `[[…]]` came out as `[…]`, which reads back as a list of other documents
/// (`[[1]]` → `[1]` → `1`). A JSON list in now gives a JSON list out.
#[test]
fn inject_keeps_a_json_list_a_list() {
    use vespa_tls_webhook::offline::{NamespaceSource, inject_text};
    let source = NamespaceSource {
        labels: vec!["tls.vespa.ai/injection=enabled".into()],
        ..NamespaceSource::default()
    };
    let policy = ClusterPolicy::default();
    let inject = |text: &str| inject_text(text, "-", &policy, &source, None, &mut |_| {}).unwrap();
    for input in ["[[1]]", "[[]]", "[[{\"kind\": \"Pod\"}]]", "[1]", "[]"] {
        let once = inject(input);
        assert_eq!(
            serde_json::from_str::<Value>(&once).unwrap(),
            serde_json::from_str::<Value>(input).unwrap(),
            "{input}"
        );
        assert_eq!(inject(&once), once, "{input}");
    }
    // A list of one VespaSet stays a list, injected; a lone object stays an object.
    let vespaset = r#"{"apiVersion":"k8s.ai.vespa/v1","kind":"VespaSet","metadata":{"name":"v","namespace":"vespa"},"spec":{"application":{}}}"#;
    let listed: Value = serde_json::from_str(&inject(&format!("[{vespaset}]"))).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(listed[0]["spec"]["application"]["podTemplate"].is_object());
    let alone: Value = serde_json::from_str(&inject(vespaset)).unwrap();
    assert_eq!(alone, listed[0]);
    assert_eq!(inject(&inject(vespaset)), inject(vespaset));
}

/// `inject`/`check` on `text` must be a parse error of the file.
fn cli_parse_error(text: &str) {
    use vespa_tls_webhook::offline::{NamespaceSource, OfflineError, check_text, inject_text};
    let source = NamespaceSource {
        labels: vec!["tls.vespa.ai/injection=enabled".into()],
        ..NamespaceSource::default()
    };
    let policy = ClusterPolicy::default();
    let inject = inject_text(text, "f.yaml", &policy, &source, None, &mut |_| {});
    let check = check_text(text, "f.yaml", &policy, &source, &mut |_| {});
    for result in [inject, check] {
        match result {
            Err(OfflineError::Parse { path, .. }) => assert_eq!(path, "f.yaml"),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn deeply_nested_yaml_for_the_cli_is_an_error_not_a_crash() {
    // Nesting far beyond the parsers' recursion limits (flow and block style, and
    // JSON, which falls back to YAML when it does not parse as JSON).
    cli_parse_error(&"[".repeat(10_000));
    cli_parse_error(&format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)));
    cli_parse_error(
        &(0..1_000)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect::<String>(),
    );
}

#[test]
fn yaml_alias_bomb_for_the_cli_is_an_error() {
    // "Billion laughs": 10^12 nodes if expanded.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for name in 'b'..='l' {
        let prev = char::from(name as u8 - 1);
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    cli_parse_error(&bomb);
}
