//! What TLS looks like inside a pod spec: the env vars, mounts and volumes of the
//! seed's Step 4 (mTLS) and Step 5 (ingress), built from [`TlsSettings`].
//! The injector adds these; the validator checks for them.

use serde_json::{Map, Value};

use crate::settings::{CSI_DRIVER, CertSpec, TlsSettings};

/// The container that gets TLS.
pub const CONTAINER: &str = "vespa";
/// Env var pointing Vespa at its mTLS config.
pub const ENV_CONFIG: &str = "VESPA_TLS_CONFIG_FILE";
/// Env var pointing Vespa at its ingress TLS config.
pub const ENV_CONFIG_INGRESS: &str = "VESPA_TLS_CONFIG_FILE_INGRESS";
/// Env var enabling Vespa's insecure mixed mode.
pub const ENV_MIXED_MODE: &str = "VESPA_TLS_INSECURE_MIXED_MODE";

/// Whether an env var is one TLS injection or validation reads: every name
/// above (and any other `VESPA_TLS*`). The admission path keeps only these env
/// entries of a Pod ([`crate::projection`]), so every env name read must match.
pub fn is_tls_env(name: &str) -> bool {
    name.starts_with("VESPA_TLS")
}

/// Whether a volume mount is one TLS injection or validation reads: mounted at
/// a path of [`MTLS`] or [`INGRESS`]. The admission path keeps only these mounts
/// of a container ([`crate::projection`]), so every mount read must be found by
/// such a path.
pub fn is_tls_mount_path(path: &str) -> bool {
    [MTLS, INGRESS]
        .iter()
        .any(|p| p.certs_path == path || p.config_path == path)
}

/// Whether a volume is one TLS injection reads: named as a volume of [`MTLS`]
/// or [`INGRESS`]. `/mutate` keeps only these volumes of a pod spec
/// ([`crate::projection::Purpose::Mutation`]); validation reads whole volumes.
pub fn is_tls_volume(name: &str) -> bool {
    [MTLS, INGRESS]
        .iter()
        .any(|p| p.certs_volume == name || p.config_volume == name)
}

/// The mTLS parts.
pub const MTLS: Part = Part {
    env: ENV_CONFIG,
    certs_volume: "tls-certs",
    certs_path: "/etc/tls",
    config_volume: "tls-config",
    config_path: "/etc/tls-config/tls-config.json",
};

/// The ingress TLS parts (application pods only).
pub const INGRESS: Part = Part {
    env: ENV_CONFIG_INGRESS,
    certs_volume: "tls-certs-ingress",
    certs_path: "/etc/tls-ingress",
    config_volume: "tls-config-ingress",
    config_path: "/etc/tls-config-ingress/tls-config.json",
};

/// The ConfigMap key holding Vespa's TLS config JSON.
pub const CONFIG_KEY: &str = "tls-config.json";

/// One set of TLS parts: an env var, a CSI volume with its mount, and a ConfigMap
/// volume with its mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Env var holding the config file path.
    pub env: &'static str,
    /// Name of the CSI volume.
    pub certs_volume: &'static str,
    /// Where the certificates are mounted.
    pub certs_path: &'static str,
    /// Name of the ConfigMap volume.
    pub config_volume: &'static str,
    /// Where the config file is mounted.
    pub config_path: &'static str,
}

/// Which pods of a Vespa deployment a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Config servers: mTLS only.
    ConfigServer,
    /// Application (container/content) pods: mTLS, plus ingress when enabled.
    Application,
}

/// The env vars, mounts and volumes one pod template must have.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// Env entries for the `vespa` container, in order.
    pub env: Vec<Value>,
    /// Volume mounts for the `vespa` container, in order.
    pub mounts: Vec<Value>,
    /// Pod volumes, in order.
    pub volumes: Vec<Value>,
}

impl Part {
    fn env_entry(&self) -> Value {
        object([
            ("name", self.env.into()),
            ("value", self.config_path.into()),
        ])
    }

    fn mounts(&self) -> [Value; 2] {
        [
            object([
                ("name", self.certs_volume.into()),
                ("mountPath", self.certs_path.into()),
                ("readOnly", true.into()),
            ]),
            object([
                ("name", self.config_volume.into()),
                ("mountPath", self.config_path.into()),
                ("readOnly", true.into()),
                ("subPath", CONFIG_KEY.into()),
            ]),
        ]
    }

    fn volumes(&self, cert: &CertSpec, config_map: &str) -> [Value; 2] {
        let csi = object([
            ("driver", CSI_DRIVER.into()),
            ("readOnly", true.into()),
            ("volumeAttributes", Value::Object(cert.volume_attributes())),
        ]);
        [
            object([("name", self.certs_volume.into()), ("csi", csi)]),
            object([
                ("name", self.config_volume.into()),
                ("configMap", object([("name", config_map.into())])),
            ]),
        ]
    }
}

/// A JSON object of these entries, in order. Built directly: these run on every
/// admission request, and `json!` neither sizes the map nor moves a `Value` in
/// (it copies it through serde).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in entries {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

/// What a template of the given role must contain under these settings.
pub fn wanted(settings: &TlsSettings, role: Role) -> Wanted {
    let mut w = Wanted {
        env: vec![MTLS.env_entry()],
        mounts: MTLS.mounts().into(),
        volumes: MTLS.volumes(&settings.mtls, &settings.config_map).into(),
    };
    if let (Role::Application, Some(ingress)) = (role, &settings.ingress) {
        w.env.push(INGRESS.env_entry());
        w.mounts.extend(INGRESS.mounts());
        w.volumes
            .extend(INGRESS.volumes(&ingress.cert, &ingress.config_map));
    }
    if let Some(mode) = &settings.mixed_mode {
        w.env.push(object([
            ("name", ENV_MIXED_MODE.into()),
            ("value", mode.as_str().into()),
        ]));
    }
    w
}

/// The parts a template of this role must have (for the validator).
pub fn parts(settings: &TlsSettings, role: Role) -> Vec<Part> {
    match (role, &settings.ingress) {
        (Role::Application, Some(_)) => vec![MTLS, INGRESS],
        _ => vec![MTLS],
    }
}
