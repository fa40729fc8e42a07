//! The hand-written reader of the usual review (`src/scan.rs`): what it reads
//! it reads exactly as serde does (the projection, the values, numbers, key
//! order), and on anything it is not sure of it gives up, so that serde reads
//! the body — with serde's answer or serde's error.

use serde_json::{Value, json};
use vespa_tls_webhook::admission::{Endpoint, Review};
use vespa_tls_webhook::admission::{parse_review_complete, parse_review_for, parse_review_serde};
use vespa_tls_webhook::projection::Purpose;
use vespa_tls_webhook::scan;

use crate::fixtures::Obj;

const PURPOSES: [(Purpose, Endpoint); 2] = [
    (Purpose::Review, Endpoint::Validate),
    (Purpose::Mutation, Endpoint::Mutate),
];

/// A review of `object` (a Pod) as the apiserver writes it, with `extra`
/// members of `request` written after `userInfo`.
fn review_text(object: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"705ab4f5","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"requestKind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"vespa","operation":"CREATE","userInfo":{{"username":"system:serviceaccount:kube-system:statefulset-controller","uid":"1","groups":["system:serviceaccounts","system:authenticated"]}}{extra},"object":{object},"oldObject":null,"dryRun":false,"options":{{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}}}}"#
    )
}

/// The fast path reads `text`, and exactly as serde does, for both endpoints.
fn reads_like_serde(text: &str) -> Review {
    let mut out = None;
    for (purpose, endpoint) in PURPOSES {
        let scanned =
            scan::read(text, purpose).unwrap_or_else(|| panic!("the fast path gave up on {text}"));
        let serde = parse_review_serde(text.as_bytes(), purpose).unwrap();
        assert_eq!(scanned, serde, "{text}");
        // Key order too (Value's equality ignores it).
        assert_eq!(
            serde_json::to_string(&scanned.request.object).unwrap(),
            serde_json::to_string(&serde.request.object).unwrap()
        );
        assert_eq!(parse_review_for(endpoint, text.as_bytes()).unwrap(), serde);
        out = Some(scanned);
    }
    out.unwrap()
}

/// The fast path gives up on `text`; the server's reading is serde's (its
/// review or its error).
fn left_to_serde(text: &str) {
    for (purpose, endpoint) in PURPOSES {
        assert_eq!(scan::read(text, purpose), None, "{text}");
        assert_eq!(
            parse_review_for(endpoint, text.as_bytes()),
            parse_review_serde(text.as_bytes(), purpose)
        );
    }
}

#[test]
fn a_review_as_the_apiserver_writes_it() {
    let pod = Obj::vespa_pod()
        .with_env("VESPA_CONFIGSERVERS", "cfg-0.cfg")
        .with_label("app", "vespa")
        .with_annotation(
            "kubectl.kubernetes.io/last-applied-configuration",
            r#"{"a":"b\u0026c","d":["\t"]}"#,
        );
    let text = review_text(&pod.json().to_string(), "");
    let review = reads_like_serde(&text);
    assert_eq!(review.request.uid, "705ab4f5");
    assert_eq!(review.request.dry_run, Some(false));
    assert_eq!(review.request.user_info.groups.len(), 2);
    assert_eq!(review.request.old_object, None);
    // The projection: what the decision does not read is gone.
    let complete = parse_review_complete(text.as_bytes()).unwrap();
    assert_ne!(review.request.object, complete.request.object);
}

#[test]
fn values_kept_whole_are_serde_json_values() {
    // An annotation of ours is kept whole, whatever it holds.
    for value in [
        // Numbers of every form serde_json reads differently.
        r#"{"a":0,"b":-0,"c":-7,"d":18446744073709551615,"e":18446744073709551616,"f":-9223372036854775808,"g":1.5,"h":-0.0,"i":123456789012345678901234567890}"#,
        // Escapes, surrogate pairs, other scripts; duplicate keys keep the last in the first's place.
        r#"{"a":"\"\\\/\b\f\n\r\t","b":"\u00e9\ud83d\ude00","c":"æøå 日本","a":"again"}"#,
        r#"{"n":null,"t":true,"f":false,"l":[1,[],{},[{"x":[null]}]],"m":{}}"#,
    ] {
        let object = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p","annotations":{{"tls.vespa.ai/kept":{value}}}}},"spec":{{"containers":[]}}}}"#
        );
        let review = reads_like_serde(&review_text(&object, ""));
        let kept = &review.request.object.as_ref().unwrap()["metadata"]["annotations"]["tls.vespa.ai/kept"];
        assert_eq!(kept, &serde_json::from_str::<Value>(value).unwrap());
    }
}

#[test]
fn keyed_entries_as_the_projection_keeps_them() {
    let object = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tls-certs", "csi": {"driver": "csi.cert-manager.io"}}, {"name": 3}],
            "containers": [{
                "name": "vespa", "image": "i",
                "env": [
                    {"name": "A", "value": "1"},
                    {"value": "/var/tls/tls.json", "name": "VESPA_TLS_CONFIG_FILE"},
                    {"name": "VESPA_TLS_CONFIG_FILE", "valueFrom": {"x": [1.25]}},
                    {"name": 7}, "text", 12, null, {"value": "no name"},
                ],
                "volumeMounts": [{"name": "m", "mountPath": "/m"}, {"mountPath": "/var/tls", "name": "tls-certs"}],
            }],
        },
        "status": {"phase": "Pending", "conditions": [{"type": "x", "lastProbeTime": null}]},
    });
    let review = reads_like_serde(&review_text(&object.to_string(), ""));
    let env = &review.request.object.as_ref().unwrap()["spec"]["containers"][0]["env"];
    assert_eq!(env[0], Value::Null, "not a TLS variable");
    assert_eq!(env[1]["value"], "/var/tls/tls.json");
    // An escaped name is read as its value.
    let escaped = review_text(
        r#"{"spec":{"containers":[{"env":[{"name":"VESPA_TLS_CONFIG\u005fFILE","value":"v"},{"name":"\u0041"}]}]}}"#,
        "",
    );
    let review = reads_like_serde(&escaped);
    let env = &review.request.object.as_ref().unwrap()["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["name"], "VESPA_TLS_CONFIG_FILE");
    assert_eq!(env[1], Value::Null);
}

#[test]
fn whitespace_and_a_vespaset() {
    let set = Obj::vespaset().json().clone();
    let body = serde_json::to_string_pretty(&json!({
        "apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "k8s.ai.vespa", "version": "v1", "kind": "VespaSet"},
            "operation": "UPDATE", "userInfo": {}, "name": null, "object": set.clone(), "oldObject": set},
    }))
    .unwrap();
    let review = reads_like_serde(&format!(" \r\n\t{body}\n"));
    assert!(review.request.old_object.is_some());
    assert_eq!(review.api_version, "admission.k8s.io/v1beta1");
}

/// Each of these is one thing the fast path leaves to serde; several are
/// valid reviews (serde reads them), the rest are serde's errors.
#[test]
fn what_it_is_not_sure_of_is_left_to_serde() {
    let plain = r#"{"metadata":{"name":"p"}}"#;
    let object = |o: &str| review_text(o, "");
    let cases = [
        // Numbers that might be out of range, and bad numbers.
        object(r#"{"status":{"x":1e400}}"#),
        object(r#"{"status":{"x":1e3}}"#),
        object(&format!(r#"{{"status":{{"x":{}}}}}"#, "9".repeat(400))),
        object(r#"{"status":{"x":01}}"#),
        object(r#"{"status":{"x":1.}}"#),
        object(r#"{"status":{"x":-}}"#),
        // Surrogates not in a pair, bad escapes, control characters.
        object(r#"{"status":"\ud800"}"#),
        object(r#"{"status":"\ud800\u0041"}"#),
        object(r#"{"status":"\udc00"}"#),
        object(r#"{"status":"\x"}"#),
        object(r#"{"status":"\u12g4"}"#),
        object("{\"status\":\"a\tb\"}"),
        // ... also in the last bytes of the body.
        object(plain).strip_suffix('}').unwrap().to_owned() + ",\"x\":\"\t\"}",
        // Keys written with escapes, serde_json's raw-value key.
        object(r#"{"metad\u0061ta":{"name":"p"}}"#),
        object(r#"{"status":{"$serde_json::private::RawValue":"1"}}"#),
        // Deep nesting.
        object(&format!(
            r#"{{"status":{}1{}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        )),
        // A keyed entry's key twice.
        object(
            r#"{"spec":{"containers":[{"env":[{"name":"A","name":"VESPA_TLS_CONFIG_FILE"}]}]}}"#,
        ),
        object(r#"{"spec":{"containers":[{"env":[{"name":"A","name":"B"}]}]}}"#),
        // Syntax.
        object(r#"{"status":[1,]}"#),
        object(r#"{"status":tru}"#),
        object(r#"{"status":{"a" 1}}"#),
        object(plain) + "x",
        object(plain)[..200].to_string(),
        // The request: a field twice, `object` before `kind`, wrong types, missing fields.
        review_text(plain, r#","uid":"again""#),
        review_text(plain, r#","kind":{"group":"","version":"v1","kind":"Pod"}"#),
        review_text(plain, r#","dryRun":1"#),
        review_text(plain, r#","userInfo":null"#),
        review_text(plain, r#","namespace":7"#),
        object(plain).replacen(
            r#""kind":{"group":"","version":"v1","kind":"Pod"}"#,
            r#""kind":["","v1","Pod"]"#,
            1,
        ),
        object(plain).replacen(r#","operation":"CREATE""#, "", 1),
        object(plain).replacen(r#""uid":"705ab4f5","#, "", 1),
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","object":{plain},"kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE"}}}}"#
        ),
        // The envelope: another version, no request, a null request.
        object(plain).replacen("admission.k8s.io/v1", "admission.k8s.io/v2", 1),
        object(plain).replacen("AdmissionReview", "Review", 1),
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_string(),
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#
            .to_string(),
        String::new(),
        "[]".to_string(),
    ];
    for text in &cases {
        left_to_serde(text);
    }
    // Invalid UTF-8 never reaches the fast path (it reads `str`); serde's error.
    let mut bytes = object(plain).into_bytes();
    bytes[30] = 0xff;
    assert_eq!(
        parse_review_for(Endpoint::Mutate, &bytes),
        parse_review_serde(&bytes, Purpose::Mutation)
    );
}

/// The `review` fuzz targets' seeds for this reader (`fuzz/seeds.py`): the
/// compact reviews, as the apiserver writes them, are read by it; the edge
/// cases are read by it or left to serde as intended.
#[test]
fn the_fuzz_seeds_reach_both_readings() {
    let dir = crate::fixtures::repo_path("fuzz/corpus/review");
    for (file, by_hand) in [
        ("compact-pod-v1-create.json", true),
        ("compact-vespaset-step4-v1-create.json", true),
        ("scan-surrogate-pair.json", true),
        ("scan-numbers.json", true),
        ("scan-escaped-env-name.json", true),
        ("scan-escaped-key.json", false),
        ("scan-lone-surrogate.json", false),
        ("scan-exponent.json", false),
        ("scan-duplicate-uid.json", false),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        if by_hand {
            reads_like_serde(&text);
        } else {
            left_to_serde(&text);
        }
    }
}
