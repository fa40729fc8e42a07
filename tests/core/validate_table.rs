//! Validation: enforced denies, enabled warns, UPDATEs, issuers and namespace
//! label protection.

use serde_json::{Value, json};
use vespa_tls_webhook::admission::{Endpoint, decide};
use vespa_tls_webhook::offline::create_review;
use vespa_tls_webhook::policy::ClusterPolicy;

use crate::fixtures::{Obj, mutated, ns, policy, run, run_update};

const VOL0: &str = "/spec/application/podTemplate/spec/volumes/0/csi/volumeAttributes";

fn injected() -> Value {
    mutated(
        Obj::vespaset().json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    )
}

#[test]
fn enforced_denies_missing_tls_saying_what_where_and_how() {
    let d = run(
        Endpoint::Validate,
        Obj::vespaset().json(),
        &ns("vespa", "enforced"),
        &ClusterPolicy::default(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, "tls-incomplete");
    for part in [
        "/spec/configServer/podTemplate/spec/containers/0/env: missing: env var VESPA_TLS_CONFIG_FILE=/etc/tls-config/tls-config.json",
        "/spec/application/podTemplate/spec/containers/0/volumeMounts: missing: a read-only mount at /etc/tls",
        "mount at /etc/tls-config/tls-config.json",
        "to fix:",
    ] {
        assert!(d.message.contains(part), "lacks {part:?}: {}", d.message);
    }
}

#[test]
fn enabled_allows_with_warnings() {
    let d = run(
        Endpoint::Validate,
        Obj::vespaset().json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert!(d.allowed);
    assert!(d.warnings.len() >= 6, "{:?}", d.warnings);
    assert!(
        d.warnings
            .iter()
            .all(|w| w.starts_with("TLS incomplete: /spec/"))
    );
}

#[test]
fn injected_output_is_conformant_and_pods_too() {
    let d = run(
        Endpoint::Validate,
        &injected(),
        &ns("vespa", "enforced"),
        &ClusterPolicy::default(),
    );
    assert!(d.allowed, "{}", d.message);
    let pod = mutated(
        Obj::vespa_pod().json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert!(
        run(
            Endpoint::Validate,
            &pod,
            &ns("vespa", "enforced"),
            &ClusterPolicy::default()
        )
        .allowed
    );
    let d = run(
        Endpoint::Validate,
        Obj::vespa_pod().json(),
        &ns("vespa", "enforced"),
        &ClusterPolicy::default(),
    );
    assert!(!d.allowed);
    assert!(
        run(
            Endpoint::Validate,
            Obj::other_pod().json(),
            &ns("vespa", "enforced"),
            &ClusterPolicy::default()
        )
        .allowed
    );
}

#[test]
fn update_removing_tls_is_denied_in_enforced() {
    let old = injected();
    let new = Obj(old.clone())
        .remove("/spec/application/podTemplate/spec/volumes")
        .0;
    let d = run_update(
        Endpoint::Validate,
        &old,
        &new,
        &ns("vespa", "enforced"),
        &ClusterPolicy::default(),
    );
    assert!(!d.allowed);
    assert!(
        d.message.contains("missing: volume \"tls-certs\""),
        "{}",
        d.message
    );
}

#[test]
fn volume_attributes_are_checked_against_the_policy() {
    let p = policy(
        "constraints:\n  allowedIssuers: [{name: ca-issuer}]\n  maxDuration: 1000h\n  minRenewBefore: 2h\n  allowedKeyAlgorithms: [ECDSA]\n",
    );
    let cases: &[(&str, Value, &str)] = &[
        (
            "issuer-name",
            json!("rogue"),
            "issuer rogue (Issuer) is not allowed",
        ),
        ("duration", json!("9000h"), "maxDuration is 1000h"),
        ("renew-before", json!("30m"), "minRenewBefore is 2h"),
        ("key-algorithm", json!("RSA"), "key-size"),
        ("duration", json!("30d"), "Go duration"),
        ("renew-before", json!("800h"), "below duration 720h"),
    ];
    for (attr, value, want) in cases {
        let obj = Obj(injected()).set(
            &format!("{VOL0}/csi.cert-manager.io~1{attr}"),
            value.clone(),
        );
        let d = run(Endpoint::Validate, obj.json(), &ns("vespa", "enforced"), &p);
        assert!(!d.allowed, "{attr}={value}");
        assert!(d.message.contains(want), "{attr}={value}: {}", d.message);
    }
    let obj = Obj(injected()).set(&format!("{VOL0}/csi.cert-manager.io~1made-up"), json!("x"));
    assert!(
        run(Endpoint::Validate, obj.json(), &ns("vespa", "enforced"), &p)
            .message
            .contains("does not know this attribute")
    );
    // Conformant but not the namespace default: allowed.
    let obj = Obj(injected()).set(
        &format!("{VOL0}/csi.cert-manager.io~1duration"),
        json!("900h"),
    );
    assert!(run(Endpoint::Validate, obj.json(), &ns("vespa", "enforced"), &p).allowed);
}

#[test]
fn subversions_are_denied_in_enforced() {
    let base = Obj(injected());
    let cases: Vec<(Obj, &str)> = vec![
        (base.clone().set("/spec/application/podTemplate/spec/volumes/0", json!({"name": "tls-certs", "emptyDir": {}})), "must be a csi volume"),
        (base.clone().set("/spec/application/podTemplate/spec/volumes/0", json!({"name": "tls-certs", "secret": {"secretName": "my-own-certs"}})), "must be a csi volume"),
        (base.clone().set("/spec/application/podTemplate/spec/volumes/0", json!({"name": "tls-certs", "hostPath": {"path": "/etc/ssl"}})), "must be a csi volume"),
        (base.clone().set("/spec/application/podTemplate/spec/containers/0/env/0/value", json!("/elsewhere")), "must be /etc/tls-config/tls-config.json"),
        (base.clone().push("/spec/application/podTemplate/spec/containers/0/env", json!({"name": "VESPA_TLS_INSECURE_MIXED_MODE", "value": "tls_client_mixed_server"})), "allowMixedMode: false"),
        (base.clone().push("/spec/application/podTemplate/spec/containers", json!({"name": "vespa"})), "second container named \"vespa\""),
        (base.clone().push("/spec/application/podTemplate/spec/initContainers", json!({"name": "vespa"})), "initContainer named \"vespa\""),
        (base.clone().set("/spec/application/podTemplate/spec/volumes/0/csi/readOnly", json!(false)), "csi.readOnly: true"),
        (base.clone().set("/spec/application/podTemplate/spec/volumes/0/csi/driver", json!("secrets-store.csi.k8s.io")), "must use the csi driver"),
        (base.clone().set("/spec/application/podTemplate/spec/containers/0/volumeMounts/0/readOnly", json!(false)), "must be readOnly"),
        (base.clone().set("/spec/application/podTemplate/spec/volumes/1", json!({"name": "tls-config", "secret": {"secretName": "x"}})), "must be a configMap volume"),
    ];
    for (obj, want) in cases {
        let d = run(
            Endpoint::Validate,
            obj.json(),
            &ns("vespa", "enforced"),
            &ClusterPolicy::default(),
        );
        assert!(!d.allowed, "{want}");
        assert!(d.message.contains(want), "{want}: {}", d.message);
    }
}

fn namespace(label: Option<&str>) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vespa", "labels": {"team": "search"}}});
    if let Some(l) = label {
        v["metadata"]["labels"]["tls.vespa.ai/injection"] = json!(l);
    }
    v
}

fn namespace_update(
    old: Option<&str>,
    new: Option<&str>,
    user: &str,
    groups: &[&str],
) -> vespa_tls_webhook::admission::Decision {
    let mut review = create_review(&namespace(new), "");
    review.request.namespace = None;
    review.request.operation = "UPDATE".into();
    review.request.old_object = Some(namespace(old));
    review.request.user_info.username = user.into();
    review.request.user_info.groups = groups.iter().map(|g| g.to_string()).collect();
    decide(Endpoint::Validate, &review, &ClusterPolicy::default(), None)
}

#[test]
fn only_label_admins_may_downgrade_enforced() {
    for new in [None, Some("enabled"), Some("disabled")] {
        let d = namespace_update(Some("enforced"), new, "alice", &["developers"]);
        assert!(!d.allowed, "{new:?}");
        assert!(
            d.message.contains("alice") && d.message.contains("labelAdmins"),
            "{}",
            d.message
        );
        assert!(namespace_update(Some("enforced"), new, "root", &["system:masters"]).allowed);
    }
    assert!(namespace_update(Some("enforced"), Some("enforced"), "alice", &[]).allowed);
    assert!(namespace_update(Some("enabled"), None, "alice", &[]).allowed);
    assert!(namespace_update(None, Some("enforced"), "alice", &[]).allowed);
    // Creating namespaces is never blocked.
    let review = create_review(&namespace(Some("enforced")), "");
    assert!(decide(Endpoint::Validate, &review, &ClusterPolicy::default(), None).allowed);
}

#[test]
fn objects_being_deleted_are_never_blocked() {
    let gone = Obj::vespaset()
        .with_annotation("tls.vespa.ai/inject", "false")
        .set("/metadata/deletionTimestamp", json!("2026-11-28T00:00:00Z"));
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let d = run_update(
            endpoint,
            gone.json(),
            gone.json(),
            &ns("vespa", "enforced"),
            &ClusterPolicy::default(),
        );
        assert!(
            d.allowed && d.patch.is_empty(),
            "{endpoint:?}: {}",
            d.message
        );
        assert_eq!(d.reason, "deleting");
    }
}
