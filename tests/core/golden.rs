//! The seed's manifests are the reference output of the injection.

use serde_json::{Value, json};
use vespa_tls_webhook::admission::Endpoint;
use vespa_tls_webhook::policy::ClusterPolicy;

use crate::fixtures::{Obj, ingress_ns, mutated, ns, run, without_fingerprint, yaml};

fn step4() -> Value {
    yaml("tests/golden/seed-step4-vespaset.yaml")
}

#[test]
fn stripped_step4_injected_equals_step4() {
    let out = mutated(
        Obj::vespaset().json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert_eq!(without_fingerprint(out), step4());
}

#[test]
fn missing_pod_templates_are_created_exactly_as_step4() {
    let input = Obj::vespaset()
        .remove("/spec/configServer/podTemplate")
        .remove("/spec/application/podTemplate");
    let out = mutated(
        input.json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert_eq!(without_fingerprint(out), step4());
}

#[test]
fn missing_spec_and_containers_are_created_exactly_as_step4() {
    let input = Obj::vespaset()
        .remove("/spec/configServer/podTemplate/spec")
        .remove("/spec/application/podTemplate/spec/containers");
    let out = mutated(
        input.json(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert_eq!(without_fingerprint(out), step4());
}

#[test]
fn ingress_annotation_gives_step5_application_and_step4_configserver() {
    let namespace = ingress_ns("enabled");
    let out = without_fingerprint(mutated(
        Obj::vespaset().json(),
        &namespace,
        &ClusterPolicy::default(),
    ));
    let step5 = yaml("tests/golden/seed-step5-vespaset.yaml");
    assert_eq!(out["spec"]["application"], step5["spec"]["application"]);
    assert_eq!(out["spec"]["configServer"], step4()["spec"]["configServer"]);
    // Step 5 omits configServer ("remains the same"); everything else is equal.
    let mut rest = out.clone();
    rest["spec"].as_object_mut().unwrap().remove("configServer");
    assert_eq!(rest, step5);
}

#[test]
fn step4_itself_is_left_alone_but_for_the_fingerprint() {
    let d = run(
        Endpoint::Mutate,
        &step4(),
        &ns("vespa", "enabled"),
        &ClusterPolicy::default(),
    );
    assert!(d.allowed);
    assert_eq!(d.patch.len(), 1, "only the annotation: {:?}", d.patch);
    assert_eq!(d.patch[0].path, "/metadata/annotations");
}

#[test]
fn the_pods_of_an_injected_vespaset_get_no_patch() {
    // A VespaSet's pods are made from its templates, with the templates' TLS
    // and without our annotation (that is on the VespaSet). They need nothing,
    // and even the annotation alone would be a patch: any patch costs the
    // apiserver a second round of admission (README "Decisions").
    let policy = ClusterPolicy::default();
    let namespace = ingress_ns("enabled");
    let vespaset = mutated(Obj::vespaset().json(), &namespace, &policy);
    for section in ["application", "configServer"] {
        let pod = Obj::pod_of(&vespaset, section).0;
        let d = run(Endpoint::Mutate, &pod, &namespace, &policy);
        assert!(d.allowed, "{section}: {}", d.message);
        assert!(d.patch.is_empty(), "{section}: patch {:?}", d.patch);
        assert_eq!(d.reason, "already-injected", "{section}");
        // It is complete: an enforced namespace admits it as it is.
        let enforced = ingress_ns("enforced");
        let v = run(Endpoint::Validate, &pod, &enforced, &policy);
        assert!(v.allowed, "{section}: {}", v.message);
        // A bare pod of the same section is injected, annotation included.
        let bare = Obj(pod.clone()).set("/spec", json!({"containers": [{"name": "vespa"}]}));
        let injected = without_fingerprint(mutated(bare.json(), &namespace, &policy));
        assert_eq!(injected, pod, "{section}");
    }
}

#[test]
fn injecting_twice_changes_nothing() {
    let policy = ClusterPolicy::default();
    let namespace = ingress_ns("enabled");
    let once = mutated(Obj::vespaset().json(), &namespace, &policy);
    let d = run(Endpoint::Mutate, &once, &namespace, &policy);
    assert!(d.allowed);
    assert!(d.patch.is_empty(), "second patch: {:?}", d.patch);
    assert_eq!(d.reason, "already-injected");
}

#[test]
fn step4_and_step5_pass_validation_in_enforced_namespaces() {
    let policy = ClusterPolicy::default();
    let d = run(
        Endpoint::Validate,
        &step4(),
        &ns("vespa", "enforced"),
        &policy,
    );
    assert!(d.allowed, "{}", d.message);
    assert_eq!(d.reason, "conformant");
    let namespace = ingress_ns("enforced");
    let mut step5 = yaml("tests/golden/seed-step5-vespaset.yaml");
    step5["spec"]["configServer"] = step4()["spec"]["configServer"].clone();
    let d = run(Endpoint::Validate, &step5, &namespace, &policy);
    assert!(d.allowed, "{}", d.message);
    // Step 4 lacks the ingress parts the namespace now asks for.
    let d = run(Endpoint::Validate, &step4(), &namespace, &policy);
    assert!(!d.allowed);
    assert!(
        d.message.contains("VESPA_TLS_CONFIG_FILE_INGRESS"),
        "{}",
        d.message
    );
}

#[test]
fn every_golden_file_is_used() {
    let dir = crate::fixtures::repo_path("tests/golden");
    let used = [
        "seed-step4-stripped.yaml",
        "seed-step4-vespaset.yaml",
        "seed-step5-vespaset.yaml",
        // tests/core/targets.rs and deploy/check.sh (the pod webhooks' matchCondition).
        "vespa-pods.yaml",
    ];
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, used, "a golden file is unused or missing");
}
