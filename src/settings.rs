//! The effective TLS settings of a namespace, and the cert-manager csi-driver
//! volume attributes they become.
//!
//! Values are validated here the way the csi-driver validates them when a pod
//! starts, so that a bad value is refused at admission instead of leaving pods
//! stuck in `ContainerCreating`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use crate::duration::GoDuration;

/// Prefix of every label and annotation this project reads or writes.
pub const PREFIX: &str = "tls.vespa.ai/";
/// Prefix of the csi-driver's volume attributes.
pub const CSI_PREFIX: &str = "csi.cert-manager.io/";
/// The csi-driver's name.
pub const CSI_DRIVER: &str = "csi.cert-manager.io";

/// Variables the csi-driver expands in `common-name`, `dns-names` and `uri-sans`.
pub const CSI_VARIABLES: [&str; 4] = [
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_UID",
    "SERVICE_ACCOUNT_NAME",
];

/// A setting that could not be accepted. Every variant names where the value came
/// from, the value, and what would be accepted instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A value that does not parse or is out of range.
    #[error("{origin}: {value:?} is invalid; {accepted}")]
    Invalid {
        /// Where the value came from, e.g. `namespace annotation tls.vespa.ai/duration`.
        origin: String,
        /// The offending value.
        value: String,
        /// What would be accepted.
        accepted: String,
    },
    /// A value that is valid but outside the cluster policy's constraints.
    #[error("{origin}: {value:?} is not allowed by the cluster policy; {allowed}")]
    NotAllowed {
        /// Where the value came from.
        origin: String,
        /// The offending value.
        value: String,
        /// What the policy allows.
        allowed: String,
    },
    /// A required value is missing.
    #[error("{origin} is missing; {accepted}")]
    Missing {
        /// What is missing.
        origin: String,
        /// What would be accepted.
        accepted: String,
    },
}

/// Key algorithms the csi-driver supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// RSA, 2048–8192 bits.
    #[serde(rename = "RSA")]
    Rsa,
    /// ECDSA on P-256, P-384 or P-521.
    #[serde(rename = "ECDSA")]
    Ecdsa,
    /// Ed25519 (no size).
    #[serde(rename = "Ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    /// Accepted spellings, for messages.
    pub const ACCEPTED: &'static str = "one of RSA, ECDSA, Ed25519";

    /// Parse the csi-driver spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RSA" => Some(Self::Rsa),
            "ECDSA" => Some(Self::Ecdsa),
            "Ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// The csi-driver spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ecdsa => "ECDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The key size used when none is given.
    pub fn default_size(self) -> Option<u32> {
        match self {
            Self::Rsa => Some(2048),
            Self::Ecdsa => Some(256),
            Self::Ed25519 => None,
        }
    }

    fn check_size(self, size: Option<u32>) -> Result<(), &'static str> {
        match (self, size) {
            (Self::Rsa, Some(2048..=8192)) | (Self::Ecdsa, Some(256 | 384 | 521)) => Ok(()),
            (Self::Ed25519, None) => Ok(()),
            (Self::Rsa, _) => Err("RSA accepts a key-size from 2048 to 8192"),
            (Self::Ecdsa, _) => Err("ECDSA accepts a key-size of 256, 384 or 521"),
            (Self::Ed25519, Some(_)) => Err("Ed25519 takes no key-size; remove it"),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Private key encodings the csi-driver supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// PKCS#1 (RSA only).
    Pkcs1,
    /// PKCS#8.
    Pkcs8,
}

impl KeyEncoding {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pkcs1 => "PKCS1",
            Self::Pkcs8 => "PKCS8",
        }
    }
}

/// A reference to a cert-manager issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRef {
    /// `metadata.name` of the issuer.
    pub name: String,
    /// `Issuer`, `ClusterIssuer` or an external issuer's kind.
    pub kind: String,
    /// API group, `cert-manager.io` for the built-in kinds.
    pub group: String,
}

/// Values of `VESPA_TLS_INSECURE_MIXED_MODE` that Vespa understands.
pub const MIXED_MODE_VALUES: [&str; 2] =
    ["plaintext_client_mixed_server", "tls_client_mixed_server"];

/// Everything one csi-driver volume asks cert-manager for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// The issuer that signs the certificate.
    pub issuer: IssuerRef,
    /// Comma-separated DNS SANs (csi-driver variables allowed).
    pub dns_names: String,
    /// Common name (csi-driver variables allowed).
    pub common_name: String,
    /// Certificate lifetime.
    pub duration: GoDuration,
    /// How long before expiry the driver renews.
    pub renew_before: GoDuration,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Key size, none for Ed25519.
    pub key_size: Option<u32>,
    /// Private key encoding.
    pub key_encoding: KeyEncoding,
    /// Group owning the written files.
    pub fs_group: u32,
}

impl CertSpec {
    /// The csi-driver `volumeAttributes`, as in the seed's Step 4.
    pub fn volume_attributes(&self) -> Map<String, Value> {
        let mut m = Map::with_capacity(11);
        for (k, v) in self.attributes() {
            m.insert([CSI_PREFIX, k].concat(), Value::String(v.into_owned()));
        }
        m
    }

    /// The attributes (without [`CSI_PREFIX`]) and their values, in order.
    fn attributes(&self) -> impl Iterator<Item = (&'static str, Cow<'_, str>)> {
        fn text(s: &str) -> Cow<'_, str> {
            Cow::Borrowed(s)
        }
        [
            Some(("issuer-name", text(&self.issuer.name))),
            Some(("issuer-kind", text(&self.issuer.kind))),
            Some(("issuer-group", text(&self.issuer.group))),
            Some(("dns-names", text(&self.dns_names))),
            Some(("common-name", text(&self.common_name))),
            Some(("duration", text(self.duration.as_str()))),
            Some(("renew-before", text(self.renew_before.as_str()))),
            Some(("fs-group", Cow::Owned(self.fs_group.to_string()))),
            Some(("key-algorithm", text(self.key_algorithm.as_str()))),
            self.key_size
                .map(|size| ("key-size", Cow::Owned(size.to_string()))),
            Some(("key-encoding", text(self.key_encoding.as_str()))),
        ]
        .into_iter()
        .flatten()
    }

    /// Parse and validate csi-driver `volumeAttributes` found on an object.
    pub fn from_volume_attributes(
        attributes: &Map<String, Value>,
        at: &str,
    ) -> Result<CertSpec, Vec<SettingError>> {
        let mut errors = Vec::new();
        for key in attributes.keys() {
            let known = key
                .strip_prefix(CSI_PREFIX)
                .is_some_and(|k| CSI_ATTRIBUTES.contains(&k));
            if !known {
                errors.push(SettingError::Invalid {
                    origin: format!("{at}.{key}"),
                    value: attributes[key].to_string(),
                    accepted: "the csi-driver does not know this attribute".to_string(),
                });
            }
        }
        let source = |key: &str| -> Option<Sourced<'_>> {
            let full = [CSI_PREFIX, key].concat();
            attributes.get_key_value(&full).map(|(full, v)| Sourced {
                value: v
                    .as_str()
                    .map_or_else(|| v.to_string().into(), Cow::Borrowed),
                origin: Origin::Attribute { at, key: full },
            })
        };
        let spec = parse_cert_spec(&source, "issuer", &mut errors, true);
        match spec {
            Some(spec) if errors.is_empty() => Ok(spec),
            _ => Err(errors),
        }
    }
}

/// csi-driver attributes we understand (without the prefix).
const CSI_ATTRIBUTES: [&str; 15] = [
    "issuer-name",
    "issuer-kind",
    "issuer-group",
    "dns-names",
    "common-name",
    "duration",
    "renew-before",
    "fs-group",
    "key-algorithm",
    "key-size",
    "key-encoding",
    "uri-sans",
    "ip-sans",
    "key-usages",
    "reuse-private-key",
];

/// The settings that apply to one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mTLS certificate every Vespa pod gets.
    pub mtls: CertSpec,
    /// ConfigMap holding Vespa's mTLS `tls-config.json`.
    pub config_map: String,
    /// Ingress TLS for application pods, when an ingress issuer is set.
    pub ingress: Option<IngressSettings>,
    /// `VESPA_TLS_INSECURE_MIXED_MODE`, migration only.
    pub mixed_mode: Option<String>,
    /// Whether the controller should create the CA chain (seed Steps 1–2).
    pub bootstrap_ca: bool,
}

/// Ingress TLS settings (seed Step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressSettings {
    /// The ingress certificate: the mTLS spec with the ingress issuer.
    pub cert: CertSpec,
    /// ConfigMap holding Vespa's ingress `tls-config.json`.
    pub config_map: String,
}

impl TlsSettings {
    /// A short, stable fingerprint of everything that ends up in an object, written
    /// into the `tls.vespa.ai/injected` annotation.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        // Every string is fed followed by a NUL; an attribute's key is fed with
        // its CSI_PREFIX (the hash of v1 fingerprints: do not change).
        let mut h = Sha256::new();
        let mut feed = |parts: &[&str]| {
            for p in parts {
                h.update(p.as_bytes());
            }
            h.update([0u8]);
        };
        let cert = |spec: &CertSpec, feed: &mut dyn FnMut(&[&str])| {
            for (k, v) in spec.attributes() {
                feed(&[CSI_PREFIX, k]);
                feed(&[&v]);
            }
        };
        cert(&self.mtls, &mut feed);
        feed(&[&self.config_map]);
        if let Some(ing) = &self.ingress {
            feed(&["ingress"]);
            cert(&ing.cert, &mut feed);
            feed(&[&ing.config_map]);
        }
        if let Some(m) = &self.mixed_mode {
            feed(&["mixed"]);
            feed(&[m]);
        }
        let digest = h.finalize();
        let mut out = String::with_capacity(19);
        out.push_str("v1-");
        for b in digest.iter().take(8) {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

/// A raw setting and where it came from (for error messages). Borrowed from the
/// policy, the namespace or the object: these are built on every admission
/// request, and only an invalid value needs its origin spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<'a> {
    /// The raw value.
    pub value: Cow<'a, str>,
    /// Where it came from.
    pub origin: Origin<'a>,
}

/// Where a raw setting came from; its `Display` is the human description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `built-in default <setting>`.
    Builtin(&'a str),
    /// `cluster policy defaults.<setting>`.
    PolicyDefault(&'a str),
    /// `namespace annotation <annotation>` (the full annotation key).
    Annotation(&'a str),
    /// `<at>.<attribute>` (the full csi-driver attribute key).
    Attribute {
        /// Where the attributes are (`volumeAttributes`, a JSON path, ...).
        at: &'a str,
        /// The attribute.
        key: &'a str,
    },
    /// The csi-driver's own default for a missing attribute (described as "").
    DriverDefault,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin(k) => write!(f, "built-in default {k}"),
            Origin::PolicyDefault(k) => write!(f, "cluster policy defaults.{k}"),
            Origin::Annotation(key) => write!(f, "namespace annotation {key}"),
            Origin::Attribute { at, key } => write!(f, "{at}.{key}"),
            Origin::DriverDefault => Ok(()),
        }
    }
}

/// The raw settings of a namespace before parsing, keyed by annotation suffix
/// (`duration`, `issuer-name`, ...).
pub type RawSettings<'a> = BTreeMap<&'a str, Sourced<'a>>;

/// Every namespace annotation (after the prefix) that names a setting.
pub const SETTING_KEYS: [&str; 18] = [
    "issuer-name",
    "issuer-kind",
    "issuer-group",
    "dns-names",
    "common-name",
    "duration",
    "renew-before",
    "key-algorithm",
    "key-size",
    "key-encoding",
    "fs-group",
    "config-map",
    "ingress-issuer-name",
    "ingress-issuer-kind",
    "ingress-issuer-group",
    "ingress-config-map",
    "mixed-mode",
    "bootstrap-ca",
];

/// Built-in defaults; `{namespace}` is replaced by the namespace's name.
pub const BUILTIN_DEFAULTS: [(&str, &str); 14] = [
    ("issuer-name", "ca-issuer"),
    ("issuer-kind", "Issuer"),
    ("issuer-group", "cert-manager.io"),
    ("dns-names", "*.{namespace}.svc.cluster.local,localhost"),
    ("common-name", "${POD_NAME}.{namespace}.svc.cluster.local"),
    ("duration", "720h"),
    ("renew-before", "72h"),
    ("key-algorithm", "ECDSA"),
    ("key-encoding", "PKCS8"),
    ("fs-group", "1000"),
    ("config-map", "vespa-config-tls"),
    ("ingress-issuer-kind", "Issuer"),
    ("ingress-issuer-group", "cert-manager.io"),
    ("ingress-config-map", "vespa-config-tls-ingress"),
];

/// Parse raw settings into [`TlsSettings`], collecting every error.
pub fn parse_settings(raw: &RawSettings<'_>) -> Result<TlsSettings, Vec<SettingError>> {
    let mut errors = Vec::new();
    let get = |key: &str| raw.get(key).cloned();
    let mtls = parse_cert_spec(&get, "issuer", &mut errors, false);
    let config_map = required_name(&get, "config-map", &mut errors);
    let ingress = match get("ingress-issuer-name") {
        None => None,
        Some(_) => {
            let ingress_get = |key: &str| match key {
                "issuer-name" | "issuer-kind" | "issuer-group" => get(&format!("ingress-{key}")),
                _ => get(key),
            };
            let mut ingress_errors = Vec::new();
            let cert = parse_cert_spec(&ingress_get, "issuer", &mut ingress_errors, false);
            // Errors in shared fields are already reported for mTLS; keep issuer ones.
            errors.extend(
                ingress_errors
                    .into_iter()
                    .filter(|e| error_origin(e).contains("ingress-issuer")),
            );
            let config_map = required_name(&get, "ingress-config-map", &mut errors);
            match (cert, config_map) {
                (Some(cert), Some(config_map)) => Some(IngressSettings { cert, config_map }),
                _ => None,
            }
        }
    };
    let mixed_mode = get("mixed-mode").and_then(|s| {
        if MIXED_MODE_VALUES.contains(&&*s.value) {
            Some(s.value.into_owned())
        } else {
            errors.push(SettingError::Invalid {
                origin: s.origin.to_string(),
                value: s.value.into_owned(),
                accepted: format!("accepted: {}", MIXED_MODE_VALUES.join(", ")),
            });
            None
        }
    });
    let bootstrap_ca = match get("bootstrap-ca") {
        None => false,
        Some(s) => match &*s.value {
            "true" => true,
            "false" => false,
            _ => {
                errors.push(SettingError::Invalid {
                    origin: s.origin.to_string(),
                    value: s.value.into_owned(),
                    accepted: "accepted: \"true\" or \"false\"".into(),
                });
                false
            }
        },
    };
    match (mtls, config_map) {
        (Some(mtls), Some(config_map)) if errors.is_empty() => Ok(TlsSettings {
            mtls,
            config_map,
            ingress,
            mixed_mode,
            bootstrap_ca,
        }),
        _ => Err(errors),
    }
}

fn error_origin(e: &SettingError) -> &str {
    match e {
        SettingError::Invalid { origin, .. }
        | SettingError::NotAllowed { origin, .. }
        | SettingError::Missing { origin, .. } => origin,
    }
}

fn required_name<'a>(
    get: &dyn Fn(&str) -> Option<Sourced<'a>>,
    key: &str,
    errors: &mut Vec<SettingError>,
) -> Option<String> {
    match get(key) {
        None => {
            errors.push(SettingError::Missing {
                origin: format!("setting {key}"),
                accepted: "set it in the cluster policy defaults or as a namespace annotation"
                    .into(),
            });
            None
        }
        Some(s) if is_dns_subdomain(&s.value) => Some(s.value.into_owned()),
        Some(s) => {
            errors.push(SettingError::Invalid {
                origin: s.origin.to_string(),
                value: s.value.into_owned(),
                accepted: "accepted: a Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253 characters)".into(),
            });
            None
        }
    }
}

/// A Kubernetes DNS-1123 subdomain (the rule for object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Parse the certificate fields; `issuer_key` is the key prefix of the issuer
/// settings (`issuer` → `issuer-name`, ...). With `from_volume`, a missing key-size
/// for a sized algorithm is the driver's default rather than an error.
fn parse_cert_spec<'a>(
    get: &dyn Fn(&str) -> Option<Sourced<'a>>,
    issuer_key: &str,
    errors: &mut Vec<SettingError>,
    from_volume: bool,
) -> Option<CertSpec> {
    let before = errors.len();
    let mut text = |key: &str, accepted: &str| -> Option<Sourced<'a>> {
        let v = get(key);
        if v.is_none() {
            errors.push(SettingError::Missing {
                origin: if from_volume {
                    format!("attribute {CSI_PREFIX}{key}")
                } else {
                    format!("setting {key}")
                },
                accepted: accepted.to_string(),
            });
        }
        v
    };
    let issuer_name = text(&format!("{issuer_key}-name"), "name the issuer");
    let issuer_kind = if from_volume {
        // The driver defaults the kind to Issuer and the group to cert-manager.io.
        Some(get(&format!("{issuer_key}-kind")).unwrap_or(Sourced {
            value: "Issuer".into(),
            origin: Origin::DriverDefault,
        }))
    } else {
        text(
            &format!("{issuer_key}-kind"),
            "accepted: Issuer or ClusterIssuer",
        )
    };
    let issuer_group = if from_volume {
        Some(get(&format!("{issuer_key}-group")).unwrap_or(Sourced {
            value: "cert-manager.io".into(),
            origin: Origin::DriverDefault,
        }))
    } else {
        text(&format!("{issuer_key}-group"), "accepted: an API group")
    };
    let dns_names = get("dns-names");
    let common_name = get("common-name");
    let duration = get("duration");
    let renew_before = get("renew-before");
    let key_algorithm = get("key-algorithm");
    let key_size = get("key-size");
    let key_encoding = get("key-encoding");
    let fs_group = get("fs-group");

    let invalid = |errors: &mut Vec<SettingError>, s: &Sourced, accepted: String| {
        errors.push(SettingError::Invalid {
            origin: s.origin.to_string(),
            value: s.value.to_string(),
            accepted,
        });
    };

    let issuer = match (issuer_name, issuer_kind, issuer_group) {
        (Some(n), Some(k), Some(g)) => {
            if !is_dns_subdomain(&n.value) {
                invalid(errors, &n, "accepted: a Kubernetes object name".into());
            }
            if k.value.is_empty() || !k.value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                invalid(
                    errors,
                    &k,
                    "accepted: a kind such as Issuer or ClusterIssuer".into(),
                );
            }
            if !g.value.is_empty() && !is_dns_subdomain(&g.value) {
                invalid(
                    errors,
                    &g,
                    "accepted: an API group such as cert-manager.io".into(),
                );
            }
            Some(IssuerRef {
                name: n.value.into_owned(),
                kind: k.value.into_owned(),
                group: g.value.into_owned(),
            })
        }
        _ => None,
    };

    for s in [&dns_names, &common_name].into_iter().flatten() {
        if let Err(problem) = check_csi_variables(&s.value) {
            invalid(errors, s, problem);
        }
    }
    if let Some(s) = &dns_names
        && s.value.split(',').any(|n| n.trim().is_empty())
    {
        invalid(
            errors,
            s,
            "accepted: a comma-separated list of DNS names without empty entries".into(),
        );
    }

    let parse_duration = |errors: &mut Vec<SettingError>, s: &Option<Sourced>| {
        s.as_ref()
            .and_then(|s| match s.value.parse::<GoDuration>() {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => {
                    invalid(
                        errors,
                        s,
                        "accepted: a positive Go duration such as 720h or 90m".into(),
                    );
                    None
                }
                Err(e) => {
                    invalid(
                        errors,
                        s,
                        format!("{e}; accepted: a Go duration such as 720h or 90m"),
                    );
                    None
                }
            })
    };
    // The driver's defaults when an attribute is absent from a volume: 720h / 1/3 of it.
    let duration_v = parse_duration(errors, &duration)
        .or_else(|| (duration.is_none() && from_volume).then(|| GoDuration::from_hours(720)));
    let renew_v = parse_duration(errors, &renew_before)
        .or_else(|| (renew_before.is_none() && from_volume).then(|| GoDuration::from_hours(240)));
    if let (Some(d), Some(r), Some(rs)) = (&duration_v, &renew_v, &renew_before)
        && r >= d
    {
        invalid(
            errors,
            rs,
            format!(
                "accepted: a duration below duration {d} (renew-before must be shorter than the certificate's lifetime)"
            ),
        );
    }
    if duration.is_none() && !from_volume {
        errors.push(SettingError::Missing {
            origin: "setting duration".into(),
            accepted: "a Go duration such as 720h".into(),
        });
    }
    if renew_before.is_none() && !from_volume {
        errors.push(SettingError::Missing {
            origin: "setting renew-before".into(),
            accepted: "a Go duration such as 72h".into(),
        });
    }

    let algorithm = match &key_algorithm {
        None if from_volume => Some(KeyAlgorithm::Ecdsa),
        None => {
            errors.push(SettingError::Missing {
                origin: "setting key-algorithm".into(),
                accepted: KeyAlgorithm::ACCEPTED.into(),
            });
            None
        }
        Some(s) => {
            let a = KeyAlgorithm::parse(&s.value);
            if a.is_none() {
                invalid(errors, s, format!("accepted: {}", KeyAlgorithm::ACCEPTED));
            }
            a
        }
    };
    let size = match &key_size {
        None => algorithm.and_then(KeyAlgorithm::default_size),
        Some(s) => match s.value.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                invalid(
                    errors,
                    s,
                    "accepted: a number of bits such as 256 or 2048".into(),
                );
                None
            }
        },
    };
    if let (Some(a), Some(s)) = (algorithm, &key_size)
        && s.value.parse::<u32>().is_ok()
        && let Err(accepted) = a.check_size(size)
    {
        invalid(errors, s, format!("accepted: {accepted}"));
    }
    let encoding = match &key_encoding {
        None if from_volume => Some(KeyEncoding::Pkcs1),
        None => {
            errors.push(SettingError::Missing {
                origin: "setting key-encoding".into(),
                accepted: "PKCS1 or PKCS8".into(),
            });
            None
        }
        Some(s) => match &*s.value {
            "PKCS8" => Some(KeyEncoding::Pkcs8),
            "PKCS1" if algorithm == Some(KeyAlgorithm::Rsa) => Some(KeyEncoding::Pkcs1),
            "PKCS1" => {
                invalid(
                    errors,
                    s,
                    "accepted: PKCS8 (PKCS1 is only valid with key-algorithm RSA)".into(),
                );
                None
            }
            _ => {
                invalid(errors, s, "accepted: PKCS1 (RSA only) or PKCS8".into());
                None
            }
        },
    };
    let fs_group_v = match &fs_group {
        None if from_volume => Some(0),
        None => {
            errors.push(SettingError::Missing {
                origin: "setting fs-group".into(),
                accepted: "a group id such as 1000".into(),
            });
            None
        }
        Some(s) => match s.value.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Some(n),
            _ => {
                invalid(
                    errors,
                    s,
                    "accepted: a group id from 1 to 2147483647".into(),
                );
                None
            }
        },
    };

    if errors.len() > before {
        return None;
    }
    Some(CertSpec {
        issuer: issuer?,
        dns_names: dns_names.map(|s| s.value.into_owned()).unwrap_or_default(),
        common_name: common_name
            .map(|s| s.value.into_owned())
            .unwrap_or_default(),
        duration: duration_v?,
        renew_before: renew_v?,
        key_algorithm: algorithm?,
        key_size: size,
        key_encoding: encoding?,
        fs_group: fs_group_v?,
    })
}

/// Check `$VAR` / `${VAR}` references: only the csi-driver's variables are allowed
/// (an unknown variable makes the driver fail the mount).
pub fn check_csi_variables(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let rest = &s[i + 1..];
            let (name, used) = if let Some(inner) = rest.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => (&inner[..end], end + 2),
                    None => return Err("unterminated ${ in value; accepted variables: ${POD_NAME}, ${POD_NAMESPACE}, ${POD_UID}, ${SERVICE_ACCOUNT_NAME}".into()),
                }
            } else {
                let n = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                (&rest[..n], n)
            };
            if !CSI_VARIABLES.contains(&name) {
                return Err(format!(
                    "unknown variable ${name:?} (the csi-driver would fail the mount); accepted variables: ${{POD_NAME}}, ${{POD_NAMESPACE}}, ${{POD_UID}}, ${{SERVICE_ACCOUNT_NAME}}"
                ));
            }
            i += 1 + used;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_variables() {
        assert!(check_csi_variables("${POD_NAME}.vespa.svc").is_ok());
        assert!(check_csi_variables("$POD_NAMESPACE").is_ok());
        assert!(check_csi_variables("plain").is_ok());
        assert!(
            check_csi_variables("${NODE_NAME}")
                .unwrap_err()
                .contains("NODE_NAME")
        );
        assert!(check_csi_variables("${POD_NAME").is_err());
        assert!(check_csi_variables("$").is_err());
    }

    #[test]
    fn fingerprints_are_stable() {
        // Objects in clusters carry these: a change here re-injects every object.
        use crate::policy::{ClusterPolicy, NamespaceMeta};
        let fp = |annotations: &[(&str, &str)]| {
            let mut ns = NamespaceMeta::named("vespa");
            for (k, v) in annotations {
                ns = ns.with_annotation(&format!("{PREFIX}{k}"), v);
            }
            ClusterPolicy::default()
                .settings_for(&ns)
                .unwrap()
                .fingerprint()
        };
        assert_eq!(fp(&[]), "v1-9202ff567f19cf22");
        assert_eq!(fp(&[("ingress-issuer-name", "ing")]), "v1-bd5cf9ac2bc591f6");
        assert_eq!(fp(&[("key-algorithm", "Ed25519")]), "v1-d9bb2cd07d906f89");
        assert_eq!(
            fp(&[
                ("key-algorithm", "RSA"),
                ("key-size", "4096"),
                ("ingress-issuer-name", "x")
            ]),
            "v1-f9dfea728be29d04"
        );
    }

    #[test]
    fn dns_subdomain() {
        assert!(is_dns_subdomain("vespa-config-tls"));
        assert!(is_dns_subdomain("a.b"));
        assert!(!is_dns_subdomain("Vespa"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_subdomain(""));
        assert!(!is_dns_subdomain("a..b"));
    }
}
