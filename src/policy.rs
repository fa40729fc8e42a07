//! The cluster policy (the `--policy` file) and how it combines with a namespace's
//! labels and annotations into the [`TlsSettings`] that apply there.
//!
//! Layering, lowest first: built-in defaults (the seed's values), the policy's
//! `defaults`, then the namespace's `tls.vespa.ai/*` annotations (when the policy's
//! `allowNamespaceOverrides` permits). The result must satisfy the policy's
//! `constraints`. `key-size` follows `key-algorithm`: a layer that changes the
//! algorithm without giving a size gets that algorithm's default size (RSA 2048,
//! ECDSA 256, none for Ed25519), never a size meant for another algorithm.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::GoDuration;
use crate::settings::{
    BUILTIN_DEFAULTS, KeyAlgorithm, Origin, PREFIX, RawSettings, SETTING_KEYS, SettingError,
    Sourced, TlsSettings, is_dns_subdomain, parse_settings,
};

/// The namespace label that switches injection on.
pub const INJECTION_LABEL: &str = "tls.vespa.ai/injection";
/// The object annotation that opts out of injection (`"false"`).
pub const INJECT_ANNOTATION: &str = "tls.vespa.ai/inject";
/// The annotation written on injected objects (fingerprint of the settings).
pub const INJECTED_ANNOTATION: &str = "tls.vespa.ai/injected";

/// What the webhook does in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nothing is changed or checked.
    #[default]
    Disabled,
    /// TLS is injected; objects may opt out (if the policy allows); incomplete TLS
    /// gives warnings.
    Enabled,
    /// TLS is injected and anything without complete, conformant TLS is rejected.
    Enforced,
}

impl Mode {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disabled => "disabled",
            Mode::Enabled => "enabled",
            Mode::Enforced => "enforced",
        }
    }
}

/// The labels and annotations of a namespace: all the policy needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl NamespaceMeta {
    /// A namespace with no labels or annotations.
    pub fn named(name: &str) -> Self {
        NamespaceMeta {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Builder: add a label.
    pub fn with_label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.to_string(), v.to_string());
        self
    }

    /// Builder: add an annotation.
    pub fn with_annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.to_string(), v.to_string());
        self
    }

    /// A namespace's metadata with only what the policy reads of it: the
    /// [`INJECTION_LABEL`] label and the annotations under `tls.vespa.ai/`
    /// (unknown ones too: the policy reports them). The admission path builds
    /// one per review from the apiserver's namespace, so its cost must not grow
    /// with labels and annotations that are not ours (a namespace's
    /// `kubectl.kubernetes.io/last-applied-configuration` can be kilobytes).
    pub fn policy_view<'a>(
        name: &str,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        NamespaceMeta {
            name: name.to_string(),
            labels: labels
                .into_iter()
                .filter(|(k, _)| k.as_str() == INJECTION_LABEL)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            annotations: annotations
                .into_iter()
                .filter(|(k, _)| k.starts_with(PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// An issuer the policy allows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedIssuer {
    /// Issuer name.
    pub name: String,
    /// Issuer kind (default `Issuer`).
    #[serde(default = "default_issuer_kind")]
    pub kind: String,
}

fn default_issuer_kind() -> String {
    "Issuer".into()
}

/// Bounds on what namespaces may choose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Constraints {
    /// Issuers that may be used; empty means any.
    pub allowed_issuers: Vec<AllowedIssuer>,
    /// Longest certificate lifetime.
    pub max_duration: Option<GoDuration>,
    /// Shortest renew-before.
    pub min_renew_before: Option<GoDuration>,
    /// Key algorithms that may be used; empty means any.
    pub allowed_key_algorithms: Vec<KeyAlgorithm>,
    /// Whether namespace annotations may override the defaults.
    pub allow_namespace_overrides: bool,
    /// Whether objects may opt out with `tls.vespa.ai/inject: "false"` (never in
    /// `enforced` namespaces).
    pub allow_opt_out: bool,
    /// Whether `VESPA_TLS_INSECURE_MIXED_MODE` may be set.
    pub allow_mixed_mode: bool,
}

/// Who may remove or downgrade `tls.vespa.ai/injection=enforced`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelAdmins {
    /// User names.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Default for LabelAdmins {
    fn default() -> Self {
        LabelAdmins {
            users: Vec::new(),
            groups: vec!["system:masters".into()],
        }
    }
}

/// The cluster-wide policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPolicy {
    /// Mode for namespaces without the injection label.
    pub default_mode: Mode,
    /// Namespaces never touched.
    pub excluded_namespaces: Vec<String>,
    /// Defaults after the built-ins, keyed by setting name.
    pub defaults: BTreeMap<String, String>,
    /// Bounds.
    pub constraints: Constraints,
    /// Who may downgrade an enforced namespace.
    pub label_admins: LabelAdmins,
}

/// Why a policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyFileError {
    /// Not YAML, or not the expected shape.
    #[error("policy file is not valid: {0}")]
    Parse(String),
    /// Parsed, but a value is wrong.
    #[error("policy file is not valid: {0}")]
    Invalid(String),
    /// The defaults do not satisfy the constraints (or do not parse).
    #[error("policy file is not valid: its defaults are refused: {}", join(.0))]
    Defaults(Vec<SettingError>),
}

fn join(errors: &[SettingError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default_mode: Mode,
    excluded_namespaces: Option<Vec<String>>,
    #[serde(default)]
    defaults: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    constraints: ConstraintsFile,
    #[serde(default)]
    label_admins: LabelAdmins,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConstraintsFile {
    #[serde(default)]
    allowed_issuers: Vec<AllowedIssuer>,
    max_duration: Option<String>,
    min_renew_before: Option<String>,
    #[serde(default)]
    allowed_key_algorithms: Vec<String>,
    #[serde(default = "yes")]
    allow_namespace_overrides: bool,
    #[serde(default = "yes")]
    allow_opt_out: bool,
    #[serde(default)]
    allow_mixed_mode: bool,
}

fn yes() -> bool {
    true
}

impl Default for ConstraintsFile {
    fn default() -> Self {
        ConstraintsFile {
            allowed_issuers: Vec::new(),
            max_duration: None,
            min_renew_before: None,
            allowed_key_algorithms: Vec::new(),
            allow_namespace_overrides: true,
            allow_opt_out: true,
            allow_mixed_mode: false,
        }
    }
}

/// Namespaces excluded when the policy does not list its own.
pub const DEFAULT_EXCLUDED: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy {
            default_mode: Mode::Disabled,
            excluded_namespaces: DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect(),
            defaults: BTreeMap::new(),
            constraints: Constraints {
                allow_namespace_overrides: true,
                allow_opt_out: true,
                ..Constraints::default()
            },
            label_admins: LabelAdmins::default(),
        }
    }
}

impl ClusterPolicy {
    /// Parse and validate a policy file. An empty file is the built-in policy.
    pub fn from_yaml(text: &str) -> Result<Self, PolicyFileError> {
        if text.trim().is_empty() {
            return Ok(ClusterPolicy::default());
        }
        let file: PolicyFile =
            serde_yaml::from_str(text).map_err(|e| PolicyFileError::Parse(e.to_string()))?;
        let mut defaults = BTreeMap::new();
        for (key, value) in file.defaults {
            if !SETTING_KEYS.contains(&key.as_str()) {
                return Err(PolicyFileError::Invalid(format!(
                    "defaults.{key} is not a known setting; known: {}",
                    SETTING_KEYS.join(", ")
                )));
            }
            let text = match value {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(PolicyFileError::Invalid(format!(
                        "defaults.{key} must be a string, got {other:?}"
                    )));
                }
            };
            defaults.insert(key, text);
        }
        let c = file.constraints;
        let duration =
            |field: &str, v: Option<String>| -> Result<Option<GoDuration>, PolicyFileError> {
                v.map(|s| {
                    s.parse::<GoDuration>().map_err(|e| {
                        PolicyFileError::Invalid(format!(
                            "constraints.{field} {s:?}: {e}; accepted: a Go duration such as 2160h"
                        ))
                    })
                })
                .transpose()
            };
        let mut algorithms = Vec::new();
        for a in &c.allowed_key_algorithms {
            algorithms.push(KeyAlgorithm::parse(a).ok_or_else(|| {
                PolicyFileError::Invalid(format!(
                    "constraints.allowedKeyAlgorithms: {a:?} is not {}",
                    KeyAlgorithm::ACCEPTED
                ))
            })?);
        }
        let constraints = Constraints {
            allowed_issuers: c.allowed_issuers,
            max_duration: duration("maxDuration", c.max_duration)?,
            min_renew_before: duration("minRenewBefore", c.min_renew_before)?,
            allowed_key_algorithms: algorithms,
            allow_namespace_overrides: c.allow_namespace_overrides,
            allow_opt_out: c.allow_opt_out,
            allow_mixed_mode: c.allow_mixed_mode,
        };
        if let (Some(max), Some(min)) = (&constraints.max_duration, &constraints.min_renew_before)
            && min >= max
        {
            return Err(PolicyFileError::Invalid(format!(
                "constraints.minRenewBefore {min} must be below constraints.maxDuration {max}"
            )));
        }
        let excluded = file
            .excluded_namespaces
            .unwrap_or_else(|| DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect());
        if let Some(bad) = excluded.iter().find(|n| !is_dns_subdomain(n)) {
            return Err(PolicyFileError::Invalid(format!(
                "excludedNamespaces: {bad:?} is not a namespace name"
            )));
        }
        let policy = ClusterPolicy {
            default_mode: file.default_mode,
            excluded_namespaces: excluded,
            defaults,
            constraints,
            label_admins: file.label_admins,
        };
        // The defaults themselves must be usable in any namespace.
        policy
            .settings_for(&NamespaceMeta::named("policy-check"))
            .map_err(PolicyFileError::Defaults)?;
        Ok(policy)
    }

    /// Also exclude the webhook's own namespace.
    pub fn excluding(mut self, namespace: &str) -> Self {
        if !namespace.is_empty() && !self.is_excluded(namespace) {
            self.excluded_namespaces.push(namespace.to_string());
        }
        self
    }

    /// Whether the namespace is never touched.
    pub fn is_excluded(&self, namespace: &str) -> bool {
        self.excluded_namespaces.iter().any(|n| n == namespace)
    }

    /// The namespace's mode from its label, or the policy's default mode.
    /// Excluded namespaces are always [`Mode::Disabled`].
    pub fn mode_for(&self, ns: &NamespaceMeta) -> Result<Mode, SettingError> {
        if self.is_excluded(&ns.name) {
            return Ok(Mode::Disabled);
        }
        match ns.labels.get(INJECTION_LABEL).map(String::as_str) {
            None => Ok(self.default_mode),
            Some("enabled") => Ok(Mode::Enabled),
            Some("enforced") => Ok(Mode::Enforced),
            Some("disabled") => Ok(Mode::Disabled),
            Some(other) => Err(SettingError::Invalid {
                origin: format!("namespace label {INJECTION_LABEL}"),
                value: other.to_string(),
                accepted: "accepted: enabled, enforced or disabled".into(),
            }),
        }
    }

    /// The effective TLS settings of a namespace, or every reason they are refused.
    pub fn settings_for(&self, ns: &NamespaceMeta) -> Result<TlsSettings, Vec<SettingError>> {
        let mut errors = Vec::new();
        let mut raw: RawSettings<'_> = BTreeMap::new();
        for (k, v) in BUILTIN_DEFAULTS {
            raw.insert(
                k,
                Sourced {
                    value: with_namespace(v, &ns.name),
                    origin: Origin::Builtin(k),
                },
            );
        }
        for (k, v) in &self.defaults {
            if k == "key-algorithm" && !self.defaults.contains_key("key-size") {
                raw.remove("key-size");
            }
            raw.insert(
                k,
                Sourced {
                    value: with_namespace(v, &ns.name),
                    origin: Origin::PolicyDefault(k),
                },
            );
        }
        for (key, value) in &ns.annotations {
            let Some(setting) = key.strip_prefix(PREFIX) else {
                continue;
            };
            if !SETTING_KEYS.contains(&setting) {
                errors.push(SettingError::Invalid {
                    origin: format!("namespace annotation {key}"),
                    value: value.clone(),
                    accepted: format!(
                        "unknown annotation; known: {}",
                        SETTING_KEYS.map(|k| format!("{PREFIX}{k}")).join(", ")
                    ),
                });
                continue;
            }
            if !self.constraints.allow_namespace_overrides {
                errors.push(SettingError::NotAllowed {
                    origin: format!("namespace annotation {key}"),
                    value: value.clone(),
                    allowed: "the cluster policy sets allowNamespaceOverrides: false; remove the annotation".into(),
                });
                continue;
            }
            if setting == "key-algorithm"
                && !ns.annotations.contains_key(&format!("{PREFIX}key-size"))
            {
                raw.remove("key-size");
            }
            raw.insert(
                setting,
                Sourced {
                    value: value.into(),
                    origin: Origin::Annotation(key),
                },
            );
        }
        let settings = parse_settings(&raw);
        let settings = match settings {
            Ok(s) if errors.is_empty() => s,
            Ok(_) => return Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                return Err(errors);
            }
        };
        let origin = |key: &str| {
            raw.get(key)
                .map_or_else(|| format!("setting {key}"), |s| s.origin.to_string())
        };
        let c = &self.constraints;
        let mut issuers = vec![("issuer-name", &settings.mtls.issuer)];
        if let Some(ing) = &settings.ingress {
            issuers.push(("ingress-issuer-name", &ing.cert.issuer));
        }
        for (key, issuer) in issuers {
            if let Err(allowed) = c.check_issuer(&issuer.name, &issuer.kind) {
                errors.push(SettingError::NotAllowed {
                    origin: origin(key),
                    value: format!("{} ({})", issuer.name, issuer.kind),
                    allowed,
                });
            }
        }
        errors.extend(c.check_cert(&settings.mtls, &origin));
        if settings.mixed_mode.is_some() && !c.allow_mixed_mode {
            errors.push(SettingError::NotAllowed {
                origin: origin("mixed-mode"),
                value: settings.mixed_mode.clone().unwrap_or_default(),
                allowed: "the cluster policy sets allowMixedMode: false".into(),
            });
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }

    /// Whether the user may remove or downgrade `enforced` on a namespace.
    pub fn is_label_admin(&self, user: &str, groups: &[String]) -> bool {
        self.label_admins.users.iter().any(|u| u == user)
            || groups
                .iter()
                .any(|g| self.label_admins.groups.iter().any(|a| a == g))
    }
}

/// `{namespace}` in a default replaced by the namespace's name. (Most defaults
/// have none: `replace` would still build a searcher and scan.)
fn with_namespace<'a>(value: &'a str, namespace: &str) -> Cow<'a, str> {
    if value.contains('{') {
        value.replace("{namespace}", namespace).into()
    } else {
        value.into()
    }
}

impl Constraints {
    /// Whether the issuer is allowed; the error describes what is.
    pub fn check_issuer(&self, name: &str, kind: &str) -> Result<(), String> {
        if self.allowed_issuers.is_empty()
            || self
                .allowed_issuers
                .iter()
                .any(|a| a.name == name && a.kind == kind)
        {
            return Ok(());
        }
        Err(format!(
            "allowed issuers: {}",
            self.allowed_issuers
                .iter()
                .map(|a| format!("{} ({})", a.name, a.kind))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Lifetime and key bounds of one certificate; `origin` names a field's source.
    pub fn check_cert(
        &self,
        cert: &crate::settings::CertSpec,
        origin: &dyn Fn(&str) -> String,
    ) -> Vec<SettingError> {
        let mut errors = Vec::new();
        if let Some(max) = &self.max_duration
            && cert.duration > *max
        {
            errors.push(SettingError::NotAllowed {
                origin: origin("duration"),
                value: cert.duration.to_string(),
                allowed: format!("maxDuration is {max}"),
            });
        }
        if let Some(min) = &self.min_renew_before
            && cert.renew_before < *min
        {
            errors.push(SettingError::NotAllowed {
                origin: origin("renew-before"),
                value: cert.renew_before.to_string(),
                allowed: format!("minRenewBefore is {min}"),
            });
        }
        if !self.allowed_key_algorithms.is_empty()
            && !self.allowed_key_algorithms.contains(&cert.key_algorithm)
        {
            errors.push(SettingError::NotAllowed {
                origin: origin("key-algorithm"),
                value: cert.key_algorithm.to_string(),
                allowed: format!(
                    "allowedKeyAlgorithms: {}",
                    self.allowed_key_algorithms
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        errors
    }
}
