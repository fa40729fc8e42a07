//! Injection: missing arrays, preserved user entries, conflicts, pods of both
//! roles, opt-out, UPDATE.

use serde_json::{Value, json};
use vespa_tls_webhook::admission::Endpoint;
use vespa_tls_webhook::inject::{InjectError, inject};
use vespa_tls_webhook::policy::ClusterPolicy;
use vespa_tls_webhook::target::Kind;

use crate::fixtures::{Obj, ingress_ns, mutated, ns, policy, run, run_update};

const APP: &str = "/spec/application/podTemplate/spec";
const CFG: &str = "/spec/configServer/podTemplate/spec";

fn names(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    e.get("name")
                        .or(e.get("mountPath"))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn enabled() -> vespa_tls_webhook::policy::NamespaceMeta {
    ns("vespa", "enabled")
}

#[test]
fn user_containers_env_mounts_and_volumes_are_kept_in_order() {
    let input = Obj::vespaset()
        .set(
            &format!("{APP}/containers"),
            json!([
                {"name": "sidecar", "image": "busybox"},
                {"name": "vespa", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            ]),
        )
        .set(
            &format!("{APP}/volumes"),
            json!([{"name": "data", "emptyDir": {}}]),
        );
    let out = mutated(input.json(), &enabled(), &ClusterPolicy::default());
    assert_eq!(
        names(&out, &format!("{APP}/containers")),
        ["sidecar", "vespa"]
    );
    assert_eq!(
        out.pointer(&format!("{APP}/containers/0")),
        input.json().pointer(&format!("{APP}/containers/0"))
    );
    assert_eq!(
        names(&out, &format!("{APP}/containers/1/env")),
        ["A", "B", "VESPA_TLS_CONFIG_FILE"]
    );
    assert_eq!(
        names(&out, &format!("{APP}/containers/1/volumeMounts")),
        ["data", "tls-certs", "tls-config"]
    );
    assert_eq!(
        names(&out, &format!("{APP}/volumes")),
        ["data", "tls-certs", "tls-config"]
    );
    // The config server section had nothing of the user's: gets exactly the seed's.
    assert_eq!(
        names(&out, &format!("{CFG}/volumes")),
        ["tls-certs", "tls-config"]
    );
}

#[test]
fn a_missing_vespa_container_is_appended_after_the_users() {
    let input = Obj::vespaset().set(&format!("{APP}/containers"), json!([{"name": "exporter"}]));
    let out = mutated(input.json(), &enabled(), &ClusterPolicy::default());
    assert_eq!(
        names(&out, &format!("{APP}/containers")),
        ["exporter", "vespa"]
    );
    assert_eq!(
        names(&out, &format!("{APP}/containers/1/env")),
        ["VESPA_TLS_CONFIG_FILE"]
    );
}

#[test]
fn missing_arrays_each_added_whole() {
    for missing in ["containers", "volumes"] {
        let input = Obj::vespaset().remove(&format!("{APP}/{missing}"));
        let d = run(
            Endpoint::Mutate,
            input.json(),
            &enabled(),
            &ClusterPolicy::default(),
        );
        assert!(d.allowed);
        assert!(
            d.patch
                .iter()
                .any(|op| op.path == format!("{APP}/{missing}")),
            "{missing}: {:?}",
            d.patch
        );
    }
    // A VespaSet whose sections are absent is not given sections it did not have.
    let input = Obj::vespaset().remove("/spec/configServer");
    let out = mutated(input.json(), &enabled(), &ClusterPolicy::default());
    assert!(out.pointer("/spec/configServer").is_none());
    assert!(out.pointer(APP).is_some());
}

#[test]
fn identical_entries_are_not_added_again_even_with_apiserver_defaults() {
    let once = mutated(
        Obj::vespa_pod().json(),
        &enabled(),
        &ClusterPolicy::default(),
    );
    // The apiserver defaults configMap volumes' defaultMode on Pods.
    let mut defaulted = once.clone();
    defaulted["spec"]["volumes"][1]["configMap"]["defaultMode"] = json!(420);
    let d = run(
        Endpoint::Mutate,
        &defaulted,
        &enabled(),
        &ClusterPolicy::default(),
    );
    assert!(d.allowed && d.patch.is_empty(), "{:?}", d.patch);
}

#[test]
fn conflicts_are_rejected_naming_both_sides_and_nothing_is_patched() {
    let cases: Vec<(Obj, &str, &str)> = vec![
        (
            Obj::vespa_pod().push(
                "/spec/volumes",
                json!({"name": "tls-certs", "hostPath": {"path": "/etc/ssl"}}),
            ),
            "volume \"tls-certs\" at /spec/volumes/0",
            "hostPath",
        ),
        (
            Obj::vespa_pod().push(
                "/spec/volumes",
                json!({"name": "tls-certs", "emptyDir": {}}),
            ),
            "volume \"tls-certs\"",
            "emptyDir",
        ),
        (
            Obj::vespa_pod().push(
                "/spec/volumes",
                json!({"name": "tls-certs", "secret": {"secretName": "my-own-certs"}}),
            ),
            "volume \"tls-certs\"",
            "my-own-certs",
        ),
        (
            Obj::vespa_pod().push(
                "/spec/volumes",
                json!({"name": "tls-config", "secret": {"secretName": "mine"}}),
            ),
            "volume \"tls-config\"",
            "secretName",
        ),
        (
            Obj::vespa_pod().push(
                "/spec/containers/0/volumeMounts",
                json!({"name": "mine", "mountPath": "/etc/tls"}),
            ),
            "mount at /etc/tls at /spec/containers/0/volumeMounts/0",
            "\"mine\"",
        ),
        (
            Obj::vespa_pod().with_env("VESPA_TLS_CONFIG_FILE", "/tmp/evil.json"),
            "env var \"VESPA_TLS_CONFIG_FILE\" at /spec/containers/0/env/0",
            "/tmp/evil.json",
        ),
        (
            Obj::vespa_pod().with_env(
                "VESPA_TLS_INSECURE_MIXED_MODE",
                "plaintext_client_mixed_server",
            ),
            "VESPA_TLS_INSECURE_MIXED_MODE",
            "allowMixedMode: false",
        ),
    ];
    for (obj, what, theirs) in cases {
        for mode in ["enabled", "enforced"] {
            let d = run(
                Endpoint::Mutate,
                obj.json(),
                &ns("vespa", mode),
                &ClusterPolicy::default(),
            );
            assert!(!d.allowed, "{what} allowed in {mode}");
            assert!(d.patch.is_empty());
            assert_eq!(d.reason, "conflict");
            assert!(
                d.message.contains(what) && d.message.contains(theirs),
                "{what}: {}",
                d.message
            );
            assert!(
                d.message.contains("but TLS needs "),
                "names our side: {}",
                d.message
            );
        }
    }
}

#[test]
fn duplicate_and_init_vespa_containers_are_refused() {
    let two = Obj::vespa_pod().push("/spec/containers", json!({"name": "vespa"}));
    let init = Obj::vespa_pod().push("/spec/initContainers", json!({"name": "vespa"}));
    for (obj, path) in [
        (two, "/spec/containers/1"),
        (init, "/spec/initContainers/0"),
    ] {
        let err = inject(
            obj.json(),
            Kind::Pod,
            &ClusterPolicy::default().settings_for(&enabled()).unwrap(),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(&err, InjectError::Malformed { path: p, .. } if p == path),
            "{err}"
        );
        let d = run(
            Endpoint::Mutate,
            obj.json(),
            &enabled(),
            &ClusterPolicy::default(),
        );
        assert!(!d.allowed);
    }
}

#[test]
fn malformed_structure_is_refused_not_overwritten() {
    let obj = Obj::vespaset().set(&format!("{APP}/volumes"), json!("oops"));
    let d = run(
        Endpoint::Mutate,
        obj.json(),
        &enabled(),
        &ClusterPolicy::default(),
    );
    assert!(!d.allowed);
    assert!(
        d.message
            .contains(&format!("{APP}/volumes: expected a list, found a string")),
        "{}",
        d.message
    );
}

#[test]
fn previously_injected_entries_follow_new_settings_with_a_warning() {
    let policy = ClusterPolicy::default();
    let old = mutated(Obj::vespaset().json(), &enabled(), &policy);
    let changed = enabled().with_annotation("tls.vespa.ai/duration", "500h");
    let d = run(Endpoint::Mutate, &old, &changed, &policy);
    assert!(d.allowed, "{}", d.message);
    assert!(
        d.warnings.iter().any(|w| w.contains("replaced")),
        "{:?}",
        d.warnings
    );
    let new = vespa_tls_webhook::inject::apply(&old, &d.patch).unwrap();
    let attr = |v: &Value, p: &str| {
        v.pointer(&format!(
            "{p}/volumes/0/csi/volumeAttributes/csi.cert-manager.io~1duration"
        ))
        .cloned()
    };
    assert_eq!(attr(&new, APP), Some(json!("500h")));
    assert_eq!(attr(&new, CFG), Some(json!("500h")));
    assert_ne!(
        new.pointer("/metadata/annotations/tls.vespa.ai~1injected"),
        old.pointer("/metadata/annotations/tls.vespa.ai~1injected")
    );
    // Without our annotation the same difference is a conflict.
    let mut foreign = old.clone();
    foreign["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert!(!run(Endpoint::Mutate, &foreign, &changed, &policy).allowed);
}

#[test]
fn pods_of_both_roles() {
    let n = ingress_ns("enabled");
    let cfg = mutated(
        Obj::configserver_pod().json(),
        &n,
        &ClusterPolicy::default(),
    );
    assert_eq!(names(&cfg, "/spec/volumes"), ["tls-certs", "tls-config"]);
    assert_eq!(
        names(&cfg, "/spec/containers/0/env"),
        ["VESPA_TLS_CONFIG_FILE"]
    );
    let app = mutated(Obj::vespa_pod().json(), &n, &ClusterPolicy::default());
    assert_eq!(
        names(&app, "/spec/volumes"),
        [
            "tls-certs",
            "tls-config",
            "tls-certs-ingress",
            "tls-config-ingress"
        ]
    );
    assert_eq!(
        names(&app, "/spec/containers/0/env"),
        ["VESPA_TLS_CONFIG_FILE", "VESPA_TLS_CONFIG_FILE_INGRESS"]
    );
    // The seed's Step 5 volume for ingress: same attributes, ingress issuer.
    assert_eq!(
        app["spec"]["volumes"][2]["csi"]["volumeAttributes"]["csi.cert-manager.io/issuer-name"],
        "ingress-issuer"
    );
    // A pod without a vespa container is not touched.
    let d = run(
        Endpoint::Mutate,
        Obj::other_pod().json(),
        &n,
        &ClusterPolicy::default(),
    );
    assert!(d.allowed && d.patch.is_empty());
    assert_eq!(d.reason, "not-vespa");
}

#[test]
fn pods_are_mutated_on_create_only_vespasets_on_update_too() {
    let policy = ClusterPolicy::default();
    let pod = Obj::vespa_pod();
    let d = run_update(
        Endpoint::Mutate,
        pod.json(),
        pod.json(),
        &enabled(),
        &policy,
    );
    assert!(d.allowed && d.patch.is_empty());
    let vs = Obj::vespaset();
    let d = run_update(Endpoint::Mutate, vs.json(), vs.json(), &enabled(), &policy);
    assert!(d.allowed && !d.patch.is_empty());
}

#[test]
fn opt_out() {
    let policy = ClusterPolicy::default();
    let out = Obj::vespaset().with_annotation("tls.vespa.ai/inject", "false");
    let d = run(Endpoint::Mutate, out.json(), &enabled(), &policy);
    assert!(d.allowed && d.patch.is_empty());
    assert_eq!(d.reason, "opt-out");
    let d = run(Endpoint::Validate, out.json(), &enabled(), &policy);
    assert!(d.allowed && d.warnings.iter().any(|w| w.contains("opted out")));
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let d = run(endpoint, out.json(), &ns("vespa", "enforced"), &policy);
        assert!(!d.allowed);
        assert!(
            d.message.contains("tls.vespa.ai/inject") && d.message.contains("enforced"),
            "{}",
            d.message
        );
        let d = run(
            endpoint,
            out.json(),
            &enabled(),
            &self::policy("constraints:\n  allowOptOut: false\n"),
        );
        assert!(
            !d.allowed && d.message.contains("allowOptOut: false"),
            "{}",
            d.message
        );
    }
    let bad = Obj::vespaset().with_annotation("tls.vespa.ai/inject", "no");
    let d = run(Endpoint::Mutate, bad.json(), &enabled(), &policy);
    assert!(!d.allowed && d.message.contains("\"no\""));
    let explicit = Obj::vespaset().with_annotation("tls.vespa.ai/inject", "true");
    assert!(
        !run(Endpoint::Mutate, explicit.json(), &enabled(), &policy)
            .patch
            .is_empty()
    );
}

#[test]
fn disabled_unlabelled_and_other_kinds_are_untouched() {
    let policy = ClusterPolicy::default();
    for n in [
        ns("vespa", "disabled"),
        vespa_tls_webhook::policy::NamespaceMeta::named("vespa"),
    ] {
        let d = run(Endpoint::Mutate, Obj::vespaset().json(), &n, &policy);
        assert!(d.allowed && d.patch.is_empty());
        assert_eq!(d.reason, "namespace-disabled");
    }
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}});
    let d = run(Endpoint::Mutate, &deploy, &enabled(), &policy);
    assert_eq!(d.reason, "kind-ignored");
}

#[test]
fn namespace_settings_change_the_injected_attributes() {
    let n = enabled()
        .with_annotation("tls.vespa.ai/issuer-name", "team-ca")
        .with_annotation("tls.vespa.ai/key-algorithm", "RSA")
        .with_annotation("tls.vespa.ai/config-map", "team-tls")
        .with_annotation("tls.vespa.ai/mixed-mode", "tls_client_mixed_server");
    let p = policy("constraints:\n  allowMixedMode: true\n");
    let out = mutated(Obj::vespa_pod().json(), &n, &p);
    let attrs = &out["spec"]["volumes"][0]["csi"]["volumeAttributes"];
    assert_eq!(attrs["csi.cert-manager.io/issuer-name"], "team-ca");
    assert_eq!(attrs["csi.cert-manager.io/key-algorithm"], "RSA");
    assert_eq!(attrs["csi.cert-manager.io/key-size"], "2048");
    assert_eq!(out["spec"]["volumes"][1]["configMap"]["name"], "team-tls");
    assert_eq!(
        names(&out, "/spec/containers/0/env"),
        ["VESPA_TLS_CONFIG_FILE", "VESPA_TLS_INSECURE_MIXED_MODE"]
    );
}

#[test]
fn profile_templates_may_not_override_tls() {
    let policy = ClusterPolicy::default();
    let profile = |spec: Value| {
        Obj::vespaset().set(
            "/spec/profiles",
            json!({"large": {"podTemplate": {"spec": spec}}}),
        )
    };
    let cases = [
        (
            json!({"volumes": [{"name": "tls-certs", "emptyDir": {}}]}),
            "/spec/profiles/large/podTemplate/spec/volumes/0",
        ),
        (
            json!({"containers": [{"name": "vespa", "env": [{"name": "VESPA_TLS_CONFIG_FILE", "value": "/tmp/x"}]}]}),
            "/spec/profiles/large/podTemplate/spec/containers/0/env/0",
        ),
        (
            json!({"containers": [{"name": "vespa", "volumeMounts": [{"name": "mine", "mountPath": "/etc/tls"}]}]}),
            "/spec/profiles/large/podTemplate/spec/containers/0/volumeMounts/0",
        ),
        (
            json!({"containers": [{"name": "vespa", "env": [{"name": "VESPA_TLS_INSECURE_MIXED_MODE", "value": "tls_client_mixed_server"}]}]}),
            "/spec/profiles/large/podTemplate/spec/containers/0/env/0",
        ),
    ];
    for (spec, path) in cases {
        let obj = profile(spec);
        for mode in ["enabled", "enforced"] {
            let d = run(Endpoint::Mutate, obj.json(), &ns("vespa", mode), &policy);
            assert!(
                !d.allowed && d.message.contains(path) && d.message.contains("profile override"),
                "{mode}: {}",
                d.message
            );
        }
        let d = run(
            Endpoint::Validate,
            obj.json(),
            &ns("vespa", "enforced"),
            &policy,
        );
        assert!(!d.allowed && d.message.contains(path), "{}", d.message);
    }
    // Unrelated overrides (resources, other env) are fine and left alone; so is a
    // list of profiles.
    let fine = profile(
        json!({"containers": [{"name": "vespa", "env": [{"name": "JAVA_OPTS", "value": "-Xmx4g"}]}]}),
    );
    let out = mutated(fine.json(), &enabled(), &policy);
    assert_eq!(out["spec"]["profiles"], fine.json()["spec"]["profiles"]);
    let listed = Obj::vespaset().set("/spec/profiles", json!([{"name": "x", "podTemplate": {"spec": {"volumes": [{"name": "tls-config", "secret": {"secretName": "s"}}]}}}]));
    let d = run(Endpoint::Mutate, listed.json(), &enabled(), &policy);
    assert!(
        !d.allowed
            && d.message
                .contains("/spec/profiles/0/podTemplate/spec/volumes/0"),
        "{}",
        d.message
    );
}

#[test]
fn a_vespaset_without_sections_gets_no_patch_and_no_injected_annotation() {
    let policy = ClusterPolicy::default();
    let vs = Obj::vespaset()
        .remove("/spec/configServer")
        .remove("/spec/application");
    let d = run(Endpoint::Mutate, vs.json(), &enabled(), &policy);
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reason, "no-pod-templates");
    assert!(d.patch.is_empty(), "{:?}", d.patch);
    assert!(
        d.warnings[0].contains("neither spec.configServer nor spec.application"),
        "{:?}",
        d.warnings
    );
    // The library call agrees: nothing to inject, nothing claimed.
    let settings = policy.settings_for(&enabled()).unwrap();
    let injection = inject(vs.json(), Kind::VespaSet, &settings, false).unwrap();
    assert!(injection.patch.is_empty());
    // A section added later is injected as a first injection: a conflicting
    // entry of the user's is reported, not replaced as if it were ours.
    let with_app = vs.set(
        "/spec/application",
        json!({"podTemplate": {"spec": {"volumes": [{"name": "tls-certs", "emptyDir": {}}]}}}),
    );
    let d = run(Endpoint::Mutate, with_app.json(), &enabled(), &policy);
    assert!(!d.allowed && d.reason == "conflict", "{d:?}");
}
