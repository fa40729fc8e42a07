//! Invariants of the production manifests under `deploy/`.
//!
//! These tests pin the properties that keep the webhook safe to run in a cluster, so that
//! nobody loosens them silently: bounded and side-effect-free webhooks, the namespaces they
//! may (and may never) see, fail-open injection vs. fail-closed enforcement, the serving
//! certificate wiring, the hardened Deployment and the policy shipped with it.
//!
//! They only parse YAML. Schema validation against current Kubernetes versions, checkov and
//! a server-side dry run are done by `deploy/check.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const NAMESPACE: &str = "vespa-tls-webhook";
const SERVICE: &str = "vespa-tls-webhook";
const EXCLUDED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "vespa-tls-webhook",
];
const INJECTION_LABEL: &str = "tls.vespa.ai/injection";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(file: &str) -> String {
    let path = deploy_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every non-empty YAML document of a (multi-document) file under deploy/.
fn docs(file: &str) -> Vec<Value> {
    let text = read(file);
    serde_yaml::Deserializer::from_str(&text)
        .enumerate()
        .map(|(i, doc)| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("deploy/{file}: document {i} is not valid YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn one(file: &str, kind: &str) -> Value {
    let found: Vec<Value> = docs(file)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "deploy/{file} must hold exactly one {kind}, found {}",
        found.len()
    );
    found.into_iter().next().unwrap()
}

fn str_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("<unnamed>")
}

struct Configs {
    mutating: Value,
    validating: Value,
}

fn configs() -> Configs {
    let all = docs("webhook-configurations.yaml");
    let kinds: Vec<&str> = all
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ],
        "deploy/webhook-configurations.yaml must hold exactly one Mutating and one Validating \
         WebhookConfiguration (all webhook configurations live in this file: the binary embeds it)"
    );
    let mut it = all.into_iter();
    Configs {
        mutating: it.next().unwrap(),
        validating: it.next().unwrap(),
    }
}

/// (configuration kind, webhook) for every webhook of both configurations.
fn all_webhooks() -> Vec<(&'static str, Value)> {
    let c = configs();
    let mut out = Vec::new();
    for (kind, cfg) in [("mutating", &c.mutating), ("validating", &c.validating)] {
        let hooks = cfg["webhooks"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind} configuration has no webhooks list"));
        assert!(!hooks.is_empty(), "{kind} configuration has no webhooks");
        out.extend(hooks.iter().map(|h| (kind, h.clone())));
    }
    out
}

fn hook_name(h: &Value) -> &str {
    h["name"].as_str().unwrap_or("<unnamed>")
}

/// The rules of a webhook as (group, version, resource, operations, scope) tuples.
fn rules(h: &Value) -> Vec<(String, String, String, BTreeSet<String>, String)> {
    let mut out = Vec::new();
    for r in h["rules"].as_array().unwrap_or(&Vec::new()) {
        for g in str_set(&r["apiGroups"]) {
            for v in str_set(&r["apiVersions"]) {
                for res in str_set(&r["resources"]) {
                    out.push((
                        g.clone(),
                        v.clone(),
                        res,
                        str_set(&r["operations"]),
                        r["scope"].as_str().unwrap_or("*").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

fn resources_of(h: &Value) -> BTreeSet<String> {
    rules(h).into_iter().map(|r| r.2).collect()
}

/// The vespaset and pod webhooks (of both configurations).
fn workload_webhooks() -> Vec<(&'static str, Value)> {
    all_webhooks()
        .into_iter()
        .filter(|(_, h)| {
            let r = resources_of(h);
            r.contains("vespasets") || r.contains("pods")
        })
        .collect()
}

#[test]
fn every_webhook_is_bounded_side_effect_free_and_points_at_the_service() {
    let mut names = BTreeSet::new();
    for (kind, h) in all_webhooks() {
        let n = hook_name(&h).to_owned();
        assert!(names.insert(n.clone()), "webhook name {n} is used twice");
        let timeout = h["timeoutSeconds"].as_u64().unwrap_or_else(|| {
            panic!("{kind} webhook {n}: timeoutSeconds must be set explicitly (the default is 10s)")
        });
        assert!(
            (1..=5).contains(&timeout),
            "{kind} webhook {n}: timeoutSeconds must be <= 5 (a slow webhook stalls every \
             matching request), got {timeout}"
        );
        assert_eq!(
            h["sideEffects"], "None",
            "{kind} webhook {n}: sideEffects must be None"
        );
        assert!(
            str_set(&h["admissionReviewVersions"]).contains("v1"),
            "{kind} webhook {n}: admissionReviewVersions must contain v1"
        );
        assert_eq!(
            h["matchPolicy"], "Equivalent",
            "{kind} webhook {n}: matchPolicy must be Equivalent (so other versions of the \
             matched resources cannot bypass it)"
        );
        let cc = &h["clientConfig"];
        assert!(
            cc.get("url").is_none(),
            "{kind} webhook {n}: clientConfig must use the Service, not a url"
        );
        let svc = &cc["service"];
        assert_eq!(
            svc["namespace"], NAMESPACE,
            "{kind} webhook {n}: clientConfig.service.namespace"
        );
        assert_eq!(
            svc["name"], SERVICE,
            "{kind} webhook {n}: clientConfig.service.name"
        );
        assert_eq!(
            svc["port"], 443,
            "{kind} webhook {n}: clientConfig.service.port must be 443"
        );
        let path = if kind == "mutating" {
            "/mutate"
        } else {
            "/validate"
        };
        assert_eq!(
            svc["path"], path,
            "{kind} webhook {n}: clientConfig.service.path must be {path}"
        );
        for (g, v, res, ops, _) in rules(&h) {
            assert!(
                g != "*" && v != "*" && res != "*" && !ops.contains("*"),
                "{kind} webhook {n}: rules must not use wildcards ({g}/{v}/{res} {ops:?})"
            );
            assert!(
                !res.contains('/'),
                "{kind} webhook {n}: rules must not match subresources ({res})"
            );
        }
    }
}

#[test]
fn failure_policies_injection_fails_open_enforcement_fails_closed() {
    for (kind, h) in all_webhooks() {
        let n = hook_name(&h);
        if kind == "mutating" {
            assert_eq!(
                h["failurePolicy"], "Ignore",
                "mutating webhook {n}: failurePolicy must be Ignore (injection fails open; \
                 enforcement is the validating webhook's job)"
            );
            assert_eq!(
                h["reinvocationPolicy"], "IfNeeded",
                "mutating webhook {n}: reinvocationPolicy must be IfNeeded (re-inject after \
                 other mutating webhooks changed the object)"
            );
        } else {
            assert_eq!(
                h["failurePolicy"], "Fail",
                "validating webhook {n}: failurePolicy must be Fail (enforcement fails closed)"
            );
        }
    }
}

#[test]
fn rules_cover_vespasets_create_update_and_pods_create() {
    let c = configs();
    for (kind, cfg) in [("mutating", &c.mutating), ("validating", &c.validating)] {
        let hooks = cfg["webhooks"].as_array().unwrap();
        let all_rules: Vec<_> = hooks.iter().flat_map(rules).collect();
        let find =
            |res: &str| -> Vec<_> { all_rules.iter().filter(|r| r.2 == res).cloned().collect() };

        let vs = find("vespasets");
        assert_eq!(
            vs.len(),
            1,
            "{kind}: exactly one rule must match vespasets, found {vs:?}"
        );
        let (g, v, _, ops, scope) = &vs[0];
        assert_eq!(
            (g.as_str(), v.as_str()),
            ("k8s.ai.vespa", "v1"),
            "{kind}: vespasets rule must be k8s.ai.vespa/v1"
        );
        assert_eq!(
            ops,
            &set(&["CREATE", "UPDATE"]),
            "{kind}: vespasets rule must cover exactly CREATE and UPDATE"
        );
        assert_eq!(
            scope, "Namespaced",
            "{kind}: vespasets rule scope must be Namespaced"
        );

        let pods = find("pods");
        assert_eq!(
            pods.len(),
            1,
            "{kind}: exactly one rule must match pods, found {pods:?}"
        );
        let (g, v, _, ops, scope) = &pods[0];
        assert_eq!(
            (g.as_str(), v.as_str()),
            ("", "v1"),
            "{kind}: pods rule must be core v1"
        );
        assert_eq!(
            ops,
            &set(&["CREATE"]),
            "{kind}: pods rule must cover exactly CREATE"
        );
        assert_eq!(
            scope, "Namespaced",
            "{kind}: pods rule scope must be Namespaced"
        );

        for r in &all_rules {
            assert!(
                ["vespasets", "pods", "namespaces"].contains(&r.2.as_str()),
                "{kind}: unexpected rule for resource {} — the webhook only handles vespasets, \
                 pods and (validating) namespaces",
                r.2
            );
        }
    }
    let n = c.mutating["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(rules)
        .filter(|r| r.2 == "namespaces")
        .count();
    assert_eq!(n, 0, "mutating: the webhook must never mutate namespaces");
}

#[test]
fn workload_webhooks_only_see_labelled_non_system_namespaces() {
    let hooks = workload_webhooks();
    assert_eq!(
        hooks.len(),
        4,
        "expected vespaset and pod webhooks in both configurations, found {}",
        hooks.len()
    );
    for (kind, h) in hooks {
        let n = hook_name(&h);
        let sel = &h["namespaceSelector"];
        let exprs = sel["matchExpressions"].as_array().unwrap_or_else(|| {
            panic!("{kind} webhook {n}: namespaceSelector.matchExpressions is missing (it would match every namespace)")
        });
        let injection = exprs
            .iter()
            .find(|e| e["key"] == INJECTION_LABEL && e["operator"] == "In");
        let injection = injection.unwrap_or_else(|| {
            panic!("{kind} webhook {n}: namespaceSelector must require {INJECTION_LABEL} In [enabled, enforced]")
        });
        // Injection serves enabled and enforced namespaces; enforcement (which fails
        // closed) only enforced ones, so an outage never blocks an `enabled` namespace.
        let want: &[&str] = if kind == "validating" {
            &["enforced"]
        } else {
            &["enabled", "enforced"]
        };
        assert_eq!(
            str_set(&injection["values"]),
            set(want),
            "{kind} webhook {n}: namespaceSelector {INJECTION_LABEL} must be In exactly {want:?}"
        );
        let excluded: BTreeSet<String> = exprs
            .iter()
            .filter(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
            .flat_map(|e| str_set(&e["values"]))
            .collect();
        for ns in EXCLUDED_NAMESPACES {
            assert!(
                excluded.contains(ns),
                "{kind} webhook {n}: namespaceSelector must exclude namespace {ns} \
                 (kubernetes.io/metadata.name NotIn ...), excluded: {excluded:?}"
            );
        }
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            assert!(
                key == INJECTION_LABEL || key == "kubernetes.io/metadata.name",
                "{kind} webhook {n}: unexpected namespaceSelector expression on {key}"
            );
        }
        assert!(
            h.get("objectSelector")
                .is_none_or(|o| o.as_object().is_some_and(|m| m.is_empty())),
            "{kind} webhook {n}: no objectSelector: Vespa pods are recognised by container name, \
             which a label selector cannot express"
        );
    }
}

/// The pod webhooks' one matchCondition, exactly: only pods with a container named
/// `vespa` are sent (the webhook's own rule, `target::is_vespa_pod`). What the
/// expression selects is checked by deploy/check.sh, which evaluates it on
/// tests/golden/vespa-pods.yaml; this pins that it is there, on the pod webhooks only.
#[test]
fn only_vespa_pods_are_sent_to_the_pod_webhooks() {
    let want = json!([{
        "name": "vespa-pods-only",
        "expression": "object.spec.containers.exists(c, c.name == 'vespa')",
    }]);
    let mut pod_hooks = 0;
    for (kind, h) in all_webhooks() {
        let n = hook_name(&h);
        if resources_of(&h).contains("pods") {
            pod_hooks += 1;
            assert_eq!(
                h["matchConditions"], want,
                "{kind} webhook {n}: the pod webhooks must select Vespa pods by container name"
            );
        } else {
            assert!(
                h.get("matchConditions").is_none(),
                "{kind} webhook {n}: only the pod webhooks have matchConditions"
            );
        }
    }
    assert_eq!(pod_hooks, 2, "a mutating and a validating pod webhook");
}

#[test]
fn namespace_webhook_guards_the_enforced_label() {
    let c = configs();
    let hooks: Vec<Value> = c.validating["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| resources_of(h).contains("namespaces"))
        .cloned()
        .collect();
    assert_eq!(
        hooks.len(),
        1,
        "validating: exactly one webhook must guard namespaces"
    );
    let h = &hooks[0];
    let n = hook_name(h);
    let r = rules(h);
    assert_eq!(
        r.len(),
        1,
        "validating webhook {n}: one rule (core v1 namespaces UPDATE)"
    );
    assert_eq!(
        (r[0].0.as_str(), r[0].1.as_str(), &r[0].3, r[0].4.as_str()),
        ("", "v1", &set(&["UPDATE"]), "Cluster"),
        "validating webhook {n}: must match core v1 namespaces UPDATE (scope Cluster)"
    );
    // The apiserver evaluates namespaceSelector on a Namespace request against the NEW
    // object only, so requiring the label there would let exactly the update that removes
    // it through. objectSelector is evaluated against old and new object (either matches).
    let obj = &h["objectSelector"];
    let by_labels = obj["matchLabels"][INJECTION_LABEL] == "enforced";
    let by_expr = obj["matchExpressions"].as_array().is_some_and(|es| {
        es.iter().any(|e| {
            e["key"] == INJECTION_LABEL
                && e["operator"] == "In"
                && str_set(&e["values"]) == set(&["enforced"])
        })
    });
    assert!(
        by_labels || by_expr,
        "validating webhook {n}: objectSelector must select namespaces labelled {INJECTION_LABEL}=enforced"
    );
    let ns_sel = &h["namespaceSelector"];
    let requires_label = ns_sel["matchLabels"].get(INJECTION_LABEL).is_some()
        || ns_sel["matchExpressions"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["key"] == INJECTION_LABEL));
    assert!(
        !requires_label,
        "validating webhook {n}: namespaceSelector must not test {INJECTION_LABEL} (it sees only \
         the new labels, so removing the label would bypass the webhook); use objectSelector"
    );
}

#[test]
fn ca_injection_names_the_serving_certificate() {
    let certs = docs("certificates.yaml");
    let c = configs();
    let deployment = one("deployment.yaml", "Deployment");
    let tls_secret = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "tls"))
        .map(|v| v["secret"]["secretName"].clone())
        .expect("Deployment must have a Secret volume named tls");
    for (kind, cfg) in [("mutating", &c.mutating), ("validating", &c.validating)] {
        let ann = cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            .as_str()
            .unwrap_or_else(|| {
                panic!("{kind} configuration must carry cert-manager.io/inject-ca-from")
            });
        let (ns, cert_name) = ann.split_once('/').unwrap_or_else(|| {
            panic!("{kind}: inject-ca-from must be <namespace>/<certificate>, got {ann}")
        });
        let cert = certs
            .iter()
            .find(|d| d["kind"] == "Certificate" && d["metadata"]["name"] == cert_name)
            .unwrap_or_else(|| panic!("{kind}: inject-ca-from names Certificate {ann}, which is not in deploy/certificates.yaml"));
        assert_eq!(
            cert["metadata"]["namespace"], ns,
            "{kind}: inject-ca-from namespace must be the Certificate's"
        );
        assert_eq!(
            ns, NAMESPACE,
            "{kind}: inject-ca-from must point into {NAMESPACE}"
        );
        let dns = str_set(&cert["spec"]["dnsNames"]);
        for d in [
            format!("{SERVICE}.{NAMESPACE}.svc"),
            format!("{SERVICE}.{NAMESPACE}.svc.cluster.local"),
        ] {
            assert!(
                dns.contains(&d),
                "Certificate {cert_name} must include dnsName {d}"
            );
        }
        assert_eq!(
            cert["spec"]["secretName"], tls_secret,
            "Certificate {cert_name} must write the Secret that the Deployment mounts as its serving cert"
        );
        assert_eq!(
            cert["spec"]["privateKey"]["algorithm"], "ECDSA",
            "serving Certificate key algorithm"
        );
        assert_eq!(
            cert["spec"]["privateKey"]["size"], 256,
            "serving Certificate key size (P-256)"
        );
        let issuer = cert["spec"]["issuerRef"]["name"].as_str().unwrap_or("");
        let ca_issuer = certs
            .iter()
            .find(|d| d["kind"] == "Issuer" && d["metadata"]["name"] == issuer)
            .unwrap_or_else(|| panic!("Certificate {cert_name} is issued by Issuer {issuer}, not in deploy/certificates.yaml"));
        assert!(
            ca_issuer["spec"]["ca"].is_object(),
            "Issuer {issuer} must be a CA issuer (not self-signed)"
        );
        assert!(
            cert["spec"]["isCA"] != true,
            "the serving Certificate {cert_name} must not be a CA"
        );
    }
}

fn deployment_pod() -> (Value, Value) {
    let d = one("deployment.yaml", "Deployment");
    let pod = d["spec"]["template"]["spec"].clone();
    (d, pod)
}

fn webhook_container(pod: &Value) -> Value {
    let cs = pod["containers"]
        .as_array()
        .expect("Deployment has no containers");
    assert_eq!(
        cs.len(),
        1,
        "the webhook Deployment runs exactly one container"
    );
    cs[0].clone()
}

#[test]
fn deployment_is_hardened_and_highly_available() {
    let (d, pod) = deployment_pod();
    let replicas = d["spec"]["replicas"]
        .as_u64()
        .expect("Deployment must set spec.replicas");
    assert!(
        replicas >= 2,
        "Deployment must run >= 2 replicas (validating webhook fails closed), got {replicas}"
    );
    let strategy = &d["spec"]["strategy"];
    assert_eq!(
        strategy["type"], "RollingUpdate",
        "Deployment strategy must be RollingUpdate"
    );
    assert_eq!(
        strategy["rollingUpdate"]["maxUnavailable"], 0,
        "Deployment rollingUpdate.maxUnavailable must be 0 (never fewer ready webhook pods during a rollout)"
    );
    assert_eq!(
        pod["priorityClassName"], "system-cluster-critical",
        "pod priorityClassName"
    );
    for f in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod[f] != true, "pod must not set {f}");
    }
    let psc = &pod["securityContext"];
    assert_eq!(
        psc["runAsNonRoot"], true,
        "pod securityContext.runAsNonRoot must be true"
    );
    let c = webhook_container(&pod);
    let sc = &c["securityContext"];
    assert_eq!(
        sc["runAsNonRoot"], true,
        "container securityContext.runAsNonRoot must be true"
    );
    let uid = sc["runAsUser"]
        .as_u64()
        .or(psc["runAsUser"].as_u64())
        .expect("runAsUser must be set");
    assert!(uid > 0, "runAsUser must not be root");
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "container securityContext.readOnlyRootFilesystem must be true"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "container securityContext.allowPrivilegeEscalation must be false"
    );
    assert!(sc["privileged"] != true, "container must not be privileged");
    assert!(
        str_set(&sc["capabilities"]["drop"]).contains("ALL"),
        "container securityContext.capabilities.drop must contain ALL"
    );
    assert!(
        sc["capabilities"].get("add").is_none(),
        "container must not add capabilities"
    );
    let seccomp = sc["seccompProfile"]["type"]
        .as_str()
        .or(psc["seccompProfile"]["type"].as_str());
    assert_eq!(
        seccomp,
        Some("RuntimeDefault"),
        "seccompProfile must be RuntimeDefault"
    );
    assert!(
        c["resources"]["limits"]["memory"].is_string(),
        "container must have a memory limit"
    );
    assert!(
        c["resources"]["requests"]["cpu"].is_string(),
        "container must request CPU"
    );
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let g = &c[probe]["httpGet"];
        assert_eq!(g["scheme"], "HTTPS", "{probe} must use HTTPS");
        assert_eq!(g["path"], path, "{probe} path");
    }

    // The PDB must protect the pods and still allow a drain.
    let pdb = one("pdb.yaml", "PodDisruptionBudget");
    assert_eq!(
        pdb["apiVersion"], "policy/v1",
        "PodDisruptionBudget must be policy/v1"
    );
    assert_eq!(
        pdb["spec"]["selector"], d["spec"]["selector"],
        "PodDisruptionBudget selector must equal the Deployment's"
    );
    match (
        pdb["spec"]["minAvailable"].as_u64(),
        pdb["spec"]["maxUnavailable"].as_u64(),
    ) {
        (Some(min), None) => assert!(
            min >= 1 && min < replicas,
            "PDB minAvailable must be in 1..replicas ({replicas}) or drains block forever, got {min}"
        ),
        (None, Some(max)) => assert!(
            max >= 1 && max < replicas,
            "PDB maxUnavailable must be in 1..replicas"
        ),
        other => panic!(
            "PDB must set exactly one of minAvailable/maxUnavailable as an integer, got {other:?}"
        ),
    }
}

#[test]
fn deployment_mounts_cert_and_policy_as_directories() {
    let (_, pod) = deployment_pod();
    let c = webhook_container(&pod);
    let args: Vec<String> = c["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let arg = |flag: &str| -> String {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("container args must contain {flag}"));
        args.get(i + 1)
            .cloned()
            .unwrap_or_else(|| panic!("{flag} needs a value"))
    };
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "container must run `serve`"
    );
    assert_eq!(arg("--tls-cert"), "/etc/webhook/tls/tls.crt", "--tls-cert");
    assert_eq!(arg("--tls-key"), "/etc/webhook/tls/tls.key", "--tls-key");
    assert_eq!(
        arg("--policy"),
        "/etc/webhook/policy/policy.yaml",
        "--policy"
    );
    assert!(
        arg("--addr").ends_with(":8443"),
        "--addr must listen on 8443"
    );
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    for (vol, path) in [
        ("tls", "/etc/webhook/tls"),
        ("policy", "/etc/webhook/policy"),
    ] {
        let m = mounts
            .iter()
            .find(|m| m["name"] == vol)
            .unwrap_or_else(|| panic!("container must mount volume {vol}"));
        assert_eq!(m["mountPath"], path, "volume {vol} mountPath");
        assert_eq!(m["readOnly"], true, "volume {vol} must be mounted readOnly");
        assert!(
            m.get("subPath").is_none(),
            "volume {vol} must be mounted as a directory, not with subPath (subPath mounts never see updates)"
        );
    }
    let env = c["env"].as_array().expect("env");
    let pod_ns = env
        .iter()
        .find(|e| e["name"] == "POD_NAMESPACE")
        .expect("env POD_NAMESPACE must be set");
    assert_eq!(
        pod_ns["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace",
        "POD_NAMESPACE from the downward API"
    );
    let policy_cm = pod["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "policy"))
        .map(|v| v["configMap"]["name"].clone())
        .expect("Deployment must have a ConfigMap volume named policy");
    assert_eq!(
        policy_cm, "vespa-tls-webhook-policy",
        "policy volume must use the generated ConfigMap"
    );
}

/// Least privilege, on purpose: the webhook reads namespaces; the controller
/// (`serve --controller`) creates and restores the TLS ConfigMaps, the bootstrap CA chain
/// (cert-manager Issuers and Certificates), Events, and holds one Lease in its own namespace.
/// Nothing may update or delete workloads, read Secrets, or use wildcards.
#[test]
fn rbac_is_least_privilege_for_the_webhook_and_its_controller() {
    let rbac = docs("rbac.yaml");
    let of_kind =
        |kind: &str| -> Vec<&Value> { rbac.iter().filter(|d| d["kind"] == kind).collect() };
    let (cluster_roles, roles) = (of_kind("ClusterRole"), of_kind("Role"));
    assert_eq!(
        (cluster_roles.len(), roles.len()),
        (1, 1),
        "deploy/rbac.yaml must hold exactly one ClusterRole and one Role (leader election)"
    );
    assert_eq!(
        cluster_roles[0]["rules"],
        json!([
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": ["cert-manager.io"], "resources": ["issuers", "certificates"], "verbs": ["get", "create", "patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ]),
        "ClusterRole {} must grant exactly: namespaces get/list/watch (webhook, controller); \
         configmaps get/list/watch/create/patch, cert-manager issuers/certificates get/create/patch, \
         events create/patch (controller)",
        name(cluster_roles[0])
    );
    let role = roles[0];
    assert_eq!(
        role["metadata"]["namespace"], NAMESPACE,
        "the leader-election Role lives in the webhook's namespace"
    );
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["vespa-tls-webhook-controller"], "verbs": ["get", "update"]},
        ]),
        "Role {} must grant creating Leases and get/update of the one Lease vespa-tls-webhook-controller",
        name(role)
    );
    for r in cluster_roles.iter().chain(roles.iter()) {
        for rule in r["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !str_set(&rule[field]).contains("*"),
                    "{}: no wildcards ({field})",
                    name(r)
                );
            }
            assert!(
                !str_set(&rule["resources"]).contains("secrets"),
                "{}: never Secrets",
                name(r)
            );
            assert!(
                str_set(&rule["verbs"]).is_disjoint(&set(&[
                    "delete",
                    "deletecollection",
                    "escalate",
                    "bind",
                    "impersonate"
                ])),
                "{}: never delete, escalate, bind or impersonate",
                name(r)
            );
        }
    }
    // Both bound to the webhook's ServiceAccount, in its namespace.
    let sa =
        json!([{"kind": "ServiceAccount", "name": "vespa-tls-webhook", "namespace": NAMESPACE}]);
    for (binding, role_kind, role) in [
        ("ClusterRoleBinding", "ClusterRole", cluster_roles[0]),
        ("RoleBinding", "Role", role),
    ] {
        let b = one("rbac.yaml", binding);
        assert_eq!(b["roleRef"]["kind"], role_kind, "{binding} roleRef.kind");
        assert_eq!(
            b["roleRef"]["name"], role["metadata"]["name"],
            "{binding} roleRef.name"
        );
        assert_eq!(b["subjects"], sa, "{binding} subjects");
    }
    // The controller runs in the webhook pods (only the Lease holder acts).
    let (_, pod) = deployment_pod();
    let args = str_set(&webhook_container(&pod)["args"]);
    assert!(
        args.contains("--controller"),
        "the Deployment must run `serve --controller`"
    );
}

#[test]
fn kustomization_installs_every_manifest_and_generates_the_policy() {
    let k = docs("kustomization.yaml").remove(0);
    assert_eq!(k["namespace"], NAMESPACE, "kustomization namespace");
    let resources = str_set(&k["resources"]);
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if file.ends_with(".yaml")
            && !["kustomization.yaml", "policy.yaml"].contains(&file.as_str())
            && !file.starts_with('.')
        {
            assert!(
                resources.contains(&file),
                "deploy/{file} is not listed in deploy/kustomization.yaml resources"
            );
        }
    }
    let generators = k["configMapGenerator"]
        .as_array()
        .expect("kustomization must have a configMapGenerator");
    let policy = generators
        .iter()
        .find(|g| g["name"] == "vespa-tls-webhook-policy")
        .expect("configMapGenerator must generate vespa-tls-webhook-policy");
    assert_eq!(
        str_set(&policy["files"]),
        set(&["policy.yaml"]),
        "the policy ConfigMap must be generated from deploy/policy.yaml alone (key policy.yaml)"
    );
    assert_eq!(
        policy["options"]["disableNameSuffixHash"], true,
        "the policy ConfigMap needs disableNameSuffixHash: true so the mounted file updates in place"
    );
}

#[test]
fn shipped_policy_is_the_contract_default() {
    let policy = docs("policy.yaml").remove(0);
    let expected = json!({
        "defaultMode": "disabled",
        "excludedNamespaces": ["kube-system", "kube-public", "kube-node-lease", "vespa-tls-webhook"],
        "defaults": {
            "issuer-name": "ca-issuer",
            "issuer-kind": "Issuer",
            "issuer-group": "cert-manager.io",
            "duration": "720h",
            "renew-before": "72h",
            "key-algorithm": "ECDSA",
            "key-size": "256",
            "key-encoding": "PKCS8",
            "fs-group": "1000",
            "config-map": "vespa-config-tls",
            "ingress-issuer-kind": "Issuer",
            "ingress-config-map": "vespa-config-tls-ingress"
        },
        "constraints": {
            "allowedIssuers": [
                {"name": "ca-issuer", "kind": "Issuer"},
                {"name": "ingress-issuer", "kind": "Issuer"}
            ],
            "maxDuration": "2160h",
            "minRenewBefore": "2h",
            "allowedKeyAlgorithms": ["ECDSA", "RSA", "Ed25519"],
            "allowNamespaceOverrides": true,
            "allowOptOut": true,
            "allowMixedMode": false
        },
        "labelAdmins": {"users": [], "groups": ["system:masters"]}
    });
    assert_eq!(
        policy, expected,
        "deploy/policy.yaml (the source of the vespa-tls-webhook-policy ConfigMap) differs from the \
         contract defaults; change both on purpose"
    );
    let excluded = str_set(&policy["excludedNamespaces"]);
    for ns in EXCLUDED_NAMESPACES {
        assert!(
            excluded.contains(ns),
            "policy excludedNamespaces must contain {ns}"
        );
    }
}

#[test]
fn network_policy_admits_only_the_serving_ports() {
    let np = one("networkpolicy.yaml", "NetworkPolicy");
    let mut ports = BTreeSet::new();
    for rule in np["spec"]["ingress"]
        .as_array()
        .expect("NetworkPolicy ingress rules")
    {
        let rule_ports = rule["ports"]
            .as_array()
            .expect("every ingress rule must name its ports");
        for p in rule_ports {
            ports.insert(p["port"].as_u64().expect("numeric port"));
            if p["port"] == 9090 {
                assert!(
                    rule["from"].is_array(),
                    "metrics port 9090 must be restricted to named sources"
                );
            }
        }
    }
    assert_eq!(
        ports,
        [8443, 9090].into_iter().collect(),
        "NetworkPolicy must admit only 8443 and 9090"
    );
}
