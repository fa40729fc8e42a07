//! The validator: does an object have complete TLS that conforms to the cluster
//! policy? It checks conformance, not equality with the namespace's defaults: a
//! CSI volume with other attributes passes as long as they are valid and within
//! the policy's constraints.

use serde_json::{Map, Value};

use crate::layout::{CONFIG_KEY, CONTAINER, ENV_MIXED_MODE, Part, parts};
use crate::policy::Constraints;
use crate::settings::{CSI_DRIVER, CertSpec, TlsSettings};
use crate::target::{Kind, templates};

/// One thing wrong with an object's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// JSON pointer of where it is (or should be).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// How to fix findings, appended once to a denial.
pub const FIX_HINT: &str = "to fix: remove your own TLS entries and let the webhook inject them (it does so in namespaces labelled tls.vespa.ai/injection=enabled or enforced), or add exactly what `vespa-tls-webhook inject` prints";

/// Everything wrong with the object's TLS; empty when it is complete and conforms.
pub fn check(
    obj: &Value,
    kind: Kind,
    settings: &TlsSettings,
    constraints: &Constraints,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for c in crate::inject::override_conflicts(obj, kind, settings, constraints.allow_mixed_mode) {
        findings.push(Finding {
            path: c.path,
            problem: format!(
                "{} must not differ from what TLS needs ({})",
                c.what, c.wanted
            ),
        });
    }
    let templates = templates(kind, obj);
    if kind == Kind::VespaSet && templates.is_empty() {
        findings.push(Finding {
            path: "/spec".into(),
            problem: "has neither configServer nor application, so no pod template to secure"
                .into(),
        });
    }
    for t in &templates {
        let mut f = |path: String, problem: String| findings.push(Finding { path, problem });
        let Some(spec) = crate::target::pointer(obj, t.pointer).and_then(Value::as_object) else {
            f(
                t.pointer.to_string(),
                "missing: no pod spec, so no TLS env var, mounts or volumes".into(),
            );
            continue;
        };
        let containers = array(spec, "containers");
        let vespa: Vec<(usize, &Map<String, Value>)> = containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.get("name").and_then(Value::as_str) == Some(CONTAINER))
            .filter_map(|(i, c)| c.as_object().map(|c| (i, c)))
            .collect();
        let init = array(spec, "initContainers");
        if let Some(i) = init
            .iter()
            .position(|c| c.get("name").and_then(Value::as_str) == Some(CONTAINER))
        {
            f(
                format!("{}/initContainers/{i}", t.pointer),
                "an initContainer named \"vespa\" is not allowed".into(),
            );
        }
        let (index, container) = match vespa.as_slice() {
            [] => {
                f(
                    format!("{}/containers", t.pointer),
                    "missing: no container named \"vespa\" to carry TLS".into(),
                );
                continue;
            }
            [one] => *one,
            [_, second, ..] => {
                f(
                    format!("{}/containers/{}", t.pointer, second.0),
                    "a second container named \"vespa\" is not allowed".into(),
                );
                continue;
            }
        };
        let cpath = format!("{}/containers/{index}", t.pointer);
        let env = array(container, "env");
        let mounts = array(container, "volumeMounts");
        let volumes = array(spec, "volumes");
        let volume = |name: &str| {
            volumes
                .iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
        };
        if !constraints.allow_mixed_mode
            && let Some(i) = env
                .iter()
                .position(|e| e.get("name").and_then(Value::as_str) == Some(ENV_MIXED_MODE))
        {
            f(
                format!("{cpath}/env/{i}"),
                format!(
                    "{ENV_MIXED_MODE} is set, but the cluster policy sets allowMixedMode: false"
                ),
            );
        }
        for part in parts(settings, t.role) {
            check_env(env, &part, &cpath, &mut f);
            let mount = |path: &str| {
                mounts
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.get("mountPath").and_then(Value::as_str) == Some(path))
            };
            match mount(part.certs_path) {
                None => f(
                    format!("{cpath}/volumeMounts"),
                    format!(
                        "missing: a read-only mount at {} of the csi.cert-manager.io volume {:?}",
                        part.certs_path, part.certs_volume
                    ),
                ),
                Some((i, m)) => {
                    let mpath = format!("{cpath}/volumeMounts/{i}");
                    if m.get("readOnly") != Some(&Value::Bool(true)) {
                        f(
                            mpath.clone(),
                            format!("the mount at {} must be readOnly: true", part.certs_path),
                        );
                    }
                    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                    match volume(name) {
                        None => f(
                            format!("{}/volumes", t.pointer),
                            format!("missing: volume {name:?} mounted at {}", part.certs_path),
                        ),
                        Some(v) => check_csi_volume(v, name, t.pointer, constraints, &mut f),
                    }
                }
            }
            match mount(part.config_path) {
                None => f(
                    format!("{cpath}/volumeMounts"),
                    format!(
                        "missing: a read-only mount at {} (subPath {CONFIG_KEY}) of the ConfigMap volume {:?}",
                        part.config_path, part.config_volume
                    ),
                ),
                Some((i, m)) => {
                    let mpath = format!("{cpath}/volumeMounts/{i}");
                    if m.get("subPath").and_then(Value::as_str) != Some(CONFIG_KEY) {
                        f(
                            mpath.clone(),
                            format!(
                                "the mount at {} must have subPath {CONFIG_KEY}",
                                part.config_path
                            ),
                        );
                    }
                    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                    match volume(name) {
                        Some(v) if v.get("configMap").is_some() => {}
                        Some(_) => f(
                            format!("{}/volumes", t.pointer),
                            format!(
                                "volume {name:?} mounted at {} must be a configMap volume",
                                part.config_path
                            ),
                        ),
                        None => f(
                            format!("{}/volumes", t.pointer),
                            format!(
                                "missing: ConfigMap volume {name:?} mounted at {}",
                                part.config_path
                            ),
                        ),
                    }
                }
            }
        }
    }
    findings
}

fn array<'a>(m: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    m.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn check_env(env: &[Value], part: &Part, cpath: &str, f: &mut dyn FnMut(String, String)) {
    match env
        .iter()
        .enumerate()
        .find(|(_, e)| e.get("name").and_then(Value::as_str) == Some(part.env))
    {
        None => f(
            format!("{cpath}/env"),
            format!("missing: env var {}={}", part.env, part.config_path),
        ),
        Some((i, e)) => {
            if e.get("value").and_then(Value::as_str) != Some(part.config_path) {
                f(
                    format!("{cpath}/env/{i}"),
                    format!("env var {} must be {}", part.env, part.config_path),
                );
            }
        }
    }
}

fn check_csi_volume(
    v: &Value,
    name: &str,
    template: &str,
    constraints: &Constraints,
    f: &mut dyn FnMut(String, String),
) {
    let vpath = format!("{template}/volumes[name={name}]");
    let Some(csi) = v.get("csi") else {
        f(
            vpath,
            format!("volume {name:?} must be a csi volume of driver {CSI_DRIVER}"),
        );
        return;
    };
    if csi.get("driver").and_then(Value::as_str) != Some(CSI_DRIVER) {
        f(
            vpath.clone(),
            format!("volume {name:?} must use the csi driver {CSI_DRIVER}"),
        );
    }
    if csi.get("readOnly") != Some(&Value::Bool(true)) {
        f(
            vpath.clone(),
            format!("volume {name:?} must have csi.readOnly: true"),
        );
    }
    let empty = Map::new();
    let attributes = csi
        .get("volumeAttributes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match CertSpec::from_volume_attributes(attributes, "volumeAttributes") {
        Err(errors) => {
            for e in errors {
                f(vpath.clone(), e.to_string());
            }
        }
        Ok(spec) => {
            if let Err(allowed) = constraints.check_issuer(&spec.issuer.name, &spec.issuer.kind) {
                f(
                    vpath.clone(),
                    format!(
                        "issuer {} ({}) is not allowed by the cluster policy; {allowed}",
                        spec.issuer.name, spec.issuer.kind
                    ),
                );
            }
            let origin = |key: &str| format!("volumeAttributes.csi.cert-manager.io/{key}");
            for e in constraints.check_cert(&spec, &origin) {
                f(vpath.clone(), e.to_string());
            }
        }
    }
}
