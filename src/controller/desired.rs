//! What the controller wants to exist in a namespace — pure, no I/O.
//!
//! For a namespace whose mode (under the current cluster policy) is `enabled` or
//! `enforced`:
//! - the mTLS ConfigMap named by the namespace's `config-map` setting (default
//!   `vespa-config-tls`), key `tls-config.json`, pointing Vespa at exactly the
//!   files the injected CSI volume provides (seed Step 3);
//! - with ingress TLS, the ingress ConfigMap (`ingress-config-map`) pointing at
//!   `/etc/tls-ingress/...` (seed "Enabling TLS for Ingress Traffic", Step 4);
//! - with `tls.vespa.ai/bootstrap-ca: "true"`, the namespace-local CA chain of
//!   seed Steps 1–2: Issuer `root-selfsigned` (selfSigned) → Certificate `root-ca`
//!   (isCA, ECDSA 256 PKCS8, 87600h, Secret `root-ca-secret`) → CA Issuer named as
//!   the namespace's `issuer-name`.
//!
//! Every object carries `app.kubernetes.io/managed-by: vespa-tls-webhook`; the
//! controller only ever changes objects carrying it.

use serde_json::{Map, Value, json};

use crate::layout::{CONFIG_KEY, INGRESS, MTLS, Part};
use crate::policy::{ClusterPolicy, Mode, NamespaceMeta};
use crate::settings::{SettingError, TlsSettings};

/// The label marking objects the controller owns.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "vespa-tls-webhook";
/// The label selector matching objects the controller owns.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=vespa-tls-webhook";
/// API group of cert-manager.
pub const CERT_MANAGER_GROUP: &str = "cert-manager.io";
/// Name of the bootstrap self-signed Issuer (seed Step 1).
pub const BOOTSTRAP_ISSUER: &str = "root-selfsigned";
/// Name of the root CA Certificate (seed Step 1).
pub const ROOT_CA_CERTIFICATE: &str = "root-ca";
/// Secret holding the root CA (seed Steps 1–2).
pub const ROOT_CA_SECRET: &str = "root-ca-secret";
/// Lifetime of the root CA (seed Step 1: 10 years).
pub const ROOT_CA_DURATION: &str = "87600h";

/// The kinds of object the controller creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `v1` ConfigMap.
    ConfigMap,
    /// `cert-manager.io/v1` Issuer.
    Issuer,
    /// `cert-manager.io/v1` Certificate.
    Certificate,
}

impl ObjectKind {
    /// `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "v1",
            ObjectKind::Issuer | ObjectKind::Certificate => "cert-manager.io/v1",
        }
    }

    /// API group (`""` for core).
    pub fn group(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "",
            ObjectKind::Issuer | ObjectKind::Certificate => CERT_MANAGER_GROUP,
        }
    }

    /// `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Issuer => "Issuer",
            ObjectKind::Certificate => "Certificate",
        }
    }

    /// Resource name (plural).
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Issuer => "issuers",
            ObjectKind::Certificate => "certificates",
        }
    }
}

/// One object the controller keeps in place.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    /// What it is.
    pub kind: ObjectKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// Why it exists, for events and logs.
    pub purpose: String,
    /// The full object as applied (apiVersion, kind, metadata, data/spec).
    pub body: Value,
}

impl DesiredObject {
    /// `Kind/name`, for messages.
    pub fn display(&self) -> String {
        format!("{} {}", self.kind.kind(), self.name)
    }
}

/// Everything the controller wants in one namespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The objects, ConfigMaps first, then the CA chain in dependency order.
    pub objects: Vec<DesiredObject>,
    /// Things asked for that cannot be done (reported as Warning events); the
    /// objects above are still created.
    pub warnings: Vec<String>,
}

/// Why nothing can be planned for a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    /// The injection label has a value that is not a mode.
    #[error("{0}")]
    InvalidLabel(SettingError),
    /// The namespace's settings are refused (the webhook denies its objects too).
    #[error("the namespace's TLS settings are refused: {}", join(.0))]
    InvalidSettings(Vec<SettingError>),
}

fn join(errors: &[SettingError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Vespa's TLS config file for one set of parts: the CA, certificate and key the
/// csi-driver writes under `part.certs_path`. Formatted as in the seed (two-space
/// indentation, trailing newline).
pub fn tls_config_json(part: &Part) -> String {
    let dir = part.certs_path;
    let value = json!({
        "files": {
            "ca-certificates": format!("{dir}/ca.crt"),
            "certificates": format!("{dir}/tls.crt"),
            "private-key": format!("{dir}/tls.key"),
        }
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn metadata(name: &str, namespace: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
    })
}

fn config_map(ns: &str, name: &str, part: &Part, purpose: &str) -> DesiredObject {
    let kind = ObjectKind::ConfigMap;
    DesiredObject {
        kind,
        name: name.to_string(),
        namespace: ns.to_string(),
        purpose: format!(
            "{purpose}: {CONFIG_KEY} points Vespa at {dir}/ca.crt, {dir}/tls.crt and {dir}/tls.key",
            dir = part.certs_path
        ),
        body: json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind(),
            "metadata": metadata(name, ns),
            "data": {CONFIG_KEY: tls_config_json(part)},
        }),
    }
}

fn cert_manager(
    kind: ObjectKind,
    ns: &str,
    name: &str,
    purpose: String,
    spec: Value,
) -> DesiredObject {
    DesiredObject {
        kind,
        name: name.to_string(),
        namespace: ns.to_string(),
        purpose,
        body: json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind(),
            "metadata": metadata(name, ns),
            "spec": spec,
        }),
    }
}

/// The CA chain of seed Steps 1–2, or why it cannot be created.
fn bootstrap(ns: &str, settings: &TlsSettings) -> Result<Vec<DesiredObject>, String> {
    let issuer = &settings.mtls.issuer;
    if issuer.kind != "Issuer" || issuer.group != CERT_MANAGER_GROUP {
        return Err(format!(
            "tls.vespa.ai/bootstrap-ca: \"true\" creates a namespaced cert-manager.io Issuer, but the namespace's issuer is {} {:?} (group {}); set tls.vespa.ai/issuer-kind: Issuer or remove bootstrap-ca",
            issuer.kind, issuer.name, issuer.group
        ));
    }
    if issuer.name == BOOTSTRAP_ISSUER {
        return Err(format!(
            "tls.vespa.ai/bootstrap-ca: \"true\" names its self-signed bootstrap Issuer {BOOTSTRAP_ISSUER:?}, which the csi-driver cannot issue through; choose another tls.vespa.ai/issuer-name"
        ));
    }
    Ok(vec![
        cert_manager(
            ObjectKind::Issuer,
            ns,
            BOOTSTRAP_ISSUER,
            "self-signed Issuer that signs the namespace's root CA (seed Step 1)".into(),
            json!({"selfSigned": {}}),
        ),
        cert_manager(
            ObjectKind::Certificate,
            ns,
            ROOT_CA_CERTIFICATE,
            format!("root CA certificate, Secret {ROOT_CA_SECRET} (seed Step 1)"),
            json!({
                "isCA": true,
                "commonName": ROOT_CA_CERTIFICATE,
                "secretName": ROOT_CA_SECRET,
                "duration": ROOT_CA_DURATION,
                "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"},
                "issuerRef": {"name": BOOTSTRAP_ISSUER, "kind": "Issuer"},
            }),
        ),
        cert_manager(
            ObjectKind::Issuer,
            ns,
            &issuer.name,
            format!(
                "CA Issuer signing the pods' certificates from Secret {ROOT_CA_SECRET} (seed Step 2)"
            ),
            json!({"ca": {"secretName": ROOT_CA_SECRET}}),
        ),
    ])
}

/// What the controller keeps in place in `ns` under `policy`. Disabled and
/// excluded namespaces get an empty plan.
pub fn desired(ns: &NamespaceMeta, policy: &ClusterPolicy) -> Result<Plan, DesiredError> {
    match policy.mode_for(ns).map_err(DesiredError::InvalidLabel)? {
        Mode::Disabled => return Ok(Plan::default()),
        Mode::Enabled | Mode::Enforced => {}
    }
    let settings = policy
        .settings_for(ns)
        .map_err(DesiredError::InvalidSettings)?;
    let mut plan = Plan::default();
    plan.objects.push(config_map(
        &ns.name,
        &settings.config_map,
        &MTLS,
        "Vespa mTLS config",
    ));
    if let Some(ingress) = &settings.ingress {
        if ingress.config_map == settings.config_map {
            plan.warnings.push(format!(
                "tls.vespa.ai/ingress-config-map names the mTLS ConfigMap {:?}; the ingress config needs its own (mounts /etc/tls-ingress)",
                ingress.config_map
            ));
        } else {
            plan.objects.push(config_map(
                &ns.name,
                &ingress.config_map,
                &INGRESS,
                "Vespa ingress TLS config",
            ));
        }
    }
    if settings.bootstrap_ca {
        match bootstrap(&ns.name, &settings) {
            Ok(chain) => plan.objects.extend(chain),
            Err(w) => plan.warnings.push(w),
        }
    }
    Ok(plan)
}

/// Whether an object carries the controller's managed-by label.
pub fn is_managed(obj: &Value) -> bool {
    crate::target::pointer(obj, "/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        == Some(MANAGED_BY)
}

/// Where `existing` differs from `desired` in content (`data` of a ConfigMap,
/// `spec` of the others), as dotted paths. Only what `desired` sets is compared:
/// fields added by others (cert-manager defaults, extra keys) are not differences.
/// Strings that hold equal JSON (a reformatted `tls-config.json`) are equal.
pub fn content_differences(existing: &Value, desired: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for top in ["data", "spec"] {
        if let Some(want) = desired.get(top) {
            diff(existing.get(top), want, top, &mut out);
        }
    }
    out
}

/// Whether the managed-by label (or another desired label) is missing.
pub fn label_differences(existing: &Value, desired: &Value) -> Vec<String> {
    let empty = Map::new();
    let want = crate::target::pointer(desired, "/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let have = crate::target::pointer(existing, "/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    want.iter()
        .filter_map(|(k, v)| match have.get(k) {
            Some(h) if h == v => None,
            Some(_) => Some(format!("metadata.labels.{k} differs")),
            None => Some(format!("metadata.labels.{k} is missing")),
        })
        .collect()
}

fn diff(have: Option<&Value>, want: &Value, path: &str, out: &mut Vec<String>) {
    match (have, want) {
        (Some(Value::Object(h)), Value::Object(w)) => {
            for (k, wv) in w {
                diff(h.get(k), wv, &format!("{path}.{k}"), out);
            }
        }
        (None, Value::Object(w)) if !w.is_empty() => {
            for (k, wv) in w {
                diff(None, wv, &format!("{path}.{k}"), out);
            }
        }
        (Some(h), w) if equal(h, w) => {}
        (None, _) => out.push(format!("{path} is missing")),
        (Some(_), _) => out.push(format!("{path} differs")),
    }
}

fn equal(have: &Value, want: &Value) -> bool {
    if have == want {
        return true;
    }
    match (have, want) {
        (Value::String(h), Value::String(w)) => {
            match (
                serde_json::from_str::<Value>(h),
                serde_json::from_str::<Value>(w),
            ) {
                (Ok(h), Ok(w)) => h.is_object() && h == w,
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::INJECTION_LABEL;

    fn ns(mode: &str) -> NamespaceMeta {
        NamespaceMeta::named("vespa").with_label(INJECTION_LABEL, mode)
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.objects.iter().map(DesiredObject::display).collect()
    }

    #[test]
    fn tls_config_is_the_seed_step3_text() {
        assert_eq!(
            tls_config_json(&MTLS),
            "{\n  \"files\": {\n    \"ca-certificates\": \"/etc/tls/ca.crt\",\n    \"certificates\": \"/etc/tls/tls.crt\",\n    \"private-key\": \"/etc/tls/tls.key\"\n  }\n}\n"
        );
        let ingress: Value = serde_json::from_str(&tls_config_json(&INGRESS)).unwrap();
        assert_eq!(
            ingress,
            json!({"files": {"ca-certificates": "/etc/tls-ingress/ca.crt", "certificates": "/etc/tls-ingress/tls.crt", "private-key": "/etc/tls-ingress/tls.key"}})
        );
    }

    #[test]
    fn enabled_and_enforced_namespaces_get_the_mtls_config_map() {
        for mode in ["enabled", "enforced"] {
            let plan = desired(&ns(mode), &ClusterPolicy::default()).unwrap();
            assert_eq!(names(&plan), ["ConfigMap vespa-config-tls"], "{mode}");
            let cm = &plan.objects[0];
            assert_eq!(cm.namespace, "vespa");
            assert_eq!(
                cm.body,
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "vespa-config-tls", "namespace": "vespa", "labels": {"app.kubernetes.io/managed-by": "vespa-tls-webhook"}},
                    "data": {"tls-config.json": tls_config_json(&MTLS)},
                })
            );
            assert!(plan.warnings.is_empty());
        }
    }

    #[test]
    fn disabled_unlabelled_and_excluded_namespaces_get_nothing() {
        let p = ClusterPolicy::default();
        assert_eq!(desired(&ns("disabled"), &p).unwrap(), Plan::default());
        assert_eq!(
            desired(&NamespaceMeta::named("vespa"), &p).unwrap(),
            Plan::default()
        );
        let excluded = NamespaceMeta::named("kube-system").with_label(INJECTION_LABEL, "enabled");
        assert_eq!(desired(&excluded, &p).unwrap(), Plan::default());
    }

    #[test]
    fn the_current_policy_decides_the_mode() {
        let p = ClusterPolicy::from_yaml("defaultMode: enabled\n").unwrap();
        let plan = desired(&NamespaceMeta::named("team-a"), &p).unwrap();
        assert_eq!(names(&plan), ["ConfigMap vespa-config-tls"]);
        let p = ClusterPolicy::from_yaml("excludedNamespaces: [vespa]\n").unwrap();
        assert!(desired(&ns("enabled"), &p).unwrap().objects.is_empty());
    }

    #[test]
    fn config_map_names_follow_the_settings_and_ingress_adds_its_own() {
        let meta = ns("enabled")
            .with_annotation("tls.vespa.ai/config-map", "my-tls")
            .with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress-issuer");
        let plan = desired(&meta, &ClusterPolicy::default()).unwrap();
        assert_eq!(
            names(&plan),
            ["ConfigMap my-tls", "ConfigMap vespa-config-tls-ingress"]
        );
        assert_eq!(
            plan.objects[1].body["data"]["tls-config.json"],
            json!(tls_config_json(&INGRESS))
        );
        let meta = meta.with_annotation("tls.vespa.ai/ingress-config-map", "my-tls");
        let plan = desired(&meta, &ClusterPolicy::default()).unwrap();
        assert_eq!(names(&plan), ["ConfigMap my-tls"]);
        assert!(
            plan.warnings[0].contains("needs its own"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn bootstrap_ca_creates_the_seed_chain_named_by_issuer_name() {
        let meta = ns("enabled").with_annotation("tls.vespa.ai/bootstrap-ca", "true");
        let plan = desired(&meta, &ClusterPolicy::default()).unwrap();
        assert_eq!(
            names(&plan),
            [
                "ConfigMap vespa-config-tls",
                "Issuer root-selfsigned",
                "Certificate root-ca",
                "Issuer ca-issuer"
            ]
        );
        let spec = |i: usize| plan.objects[i].body["spec"].clone();
        assert_eq!(spec(1), json!({"selfSigned": {}}));
        assert_eq!(
            spec(2),
            json!({
                "isCA": true, "commonName": "root-ca", "secretName": "root-ca-secret",
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"},
                "issuerRef": {"name": "root-selfsigned", "kind": "Issuer"},
            })
        );
        assert_eq!(spec(3), json!({"ca": {"secretName": "root-ca-secret"}}));
        for o in &plan.objects[1..] {
            assert_eq!(o.body["apiVersion"], "cert-manager.io/v1");
            assert!(is_managed(&o.body));
        }
        let named = meta.with_annotation("tls.vespa.ai/issuer-name", "team-ca");
        let plan = desired(&named, &ClusterPolicy::default()).unwrap();
        assert_eq!(plan.objects[3].display(), "Issuer team-ca");
    }

    #[test]
    fn bootstrap_ca_that_cannot_work_warns_and_keeps_the_config_map() {
        let base = ns("enabled").with_annotation("tls.vespa.ai/bootstrap-ca", "true");
        let cluster = base
            .clone()
            .with_annotation("tls.vespa.ai/issuer-kind", "ClusterIssuer");
        let plan = desired(&cluster, &ClusterPolicy::default()).unwrap();
        assert_eq!(names(&plan), ["ConfigMap vespa-config-tls"]);
        assert!(
            plan.warnings[0].contains("ClusterIssuer"),
            "{:?}",
            plan.warnings
        );
        let selfsigned = base.with_annotation("tls.vespa.ai/issuer-name", "root-selfsigned");
        let plan = desired(&selfsigned, &ClusterPolicy::default()).unwrap();
        assert_eq!(plan.objects.len(), 1);
        assert!(
            plan.warnings[0].contains("cannot issue"),
            "{:?}",
            plan.warnings
        );
        let off = ns("enabled").with_annotation("tls.vespa.ai/bootstrap-ca", "false");
        assert_eq!(
            desired(&off, &ClusterPolicy::default())
                .unwrap()
                .objects
                .len(),
            1
        );
    }

    #[test]
    fn invalid_label_or_settings_are_errors() {
        let e = desired(&ns("sometimes"), &ClusterPolicy::default()).unwrap_err();
        assert!(matches!(e, DesiredError::InvalidLabel(_)), "{e}");
        let bad = ns("enabled").with_annotation("tls.vespa.ai/key-size", "7");
        let e = desired(&bad, &ClusterPolicy::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("tls.vespa.ai/key-size: \"7\" is invalid"),
            "{e}"
        );
    }

    #[test]
    fn differences_compare_only_what_is_desired() {
        let want = desired(&ns("enabled"), &ClusterPolicy::default())
            .unwrap()
            .objects
            .remove(0)
            .body;
        let mut have = want.clone();
        have["metadata"]["uid"] = json!("x");
        have["data"]["extra"] = json!("kept");
        assert!(content_differences(&have, &want).is_empty());
        assert!(label_differences(&have, &want).is_empty());
        // Reformatted but equal JSON is not a difference.
        have["data"]["tls-config.json"] = json!(
            "{\"files\":{\"private-key\":\"/etc/tls/tls.key\",\"certificates\":\"/etc/tls/tls.crt\",\"ca-certificates\":\"/etc/tls/ca.crt\"}}"
        );
        assert!(content_differences(&have, &want).is_empty());
        have["data"]["tls-config.json"] = json!("{\"files\":{}}");
        assert_eq!(
            content_differences(&have, &want),
            ["data.tls-config.json differs"]
        );
        have.as_object_mut().unwrap().remove("data");
        assert_eq!(
            content_differences(&have, &want),
            ["data.tls-config.json is missing"]
        );
        have["metadata"]["labels"] = json!({});
        assert!(!is_managed(&have));
        assert_eq!(
            label_differences(&have, &want),
            ["metadata.labels.app.kubernetes.io/managed-by is missing"]
        );
        // Non-JSON strings compare exactly.
        assert!(!equal(&json!("a"), &json!("b")));
        assert!(!equal(&json!("1"), &json!("1.0")));
    }

    #[test]
    fn spec_differences_ignore_fields_added_by_cert_manager() {
        let meta = ns("enabled").with_annotation("tls.vespa.ai/bootstrap-ca", "true");
        let cert = desired(&meta, &ClusterPolicy::default())
            .unwrap()
            .objects
            .remove(2)
            .body;
        let mut have = cert.clone();
        have["spec"]["privateKey"]["rotationPolicy"] = json!("Never");
        have["status"] = json!({"conditions": []});
        assert!(content_differences(&have, &cert).is_empty());
        have["spec"]["duration"] = json!("1h");
        have["spec"]["issuerRef"]["name"] = json!("other");
        assert_eq!(
            content_differences(&have, &cert),
            ["spec.duration differs", "spec.issuerRef.name differs"]
        );
    }
}
