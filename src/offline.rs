//! `inject` and `check`: the admission decision applied to files, with no cluster.
//!
//! Each document runs through exactly the same [`decide`] as a review on
//! `/mutate` or `/validate` would, as a CREATE in the chosen namespace.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::admission::{Decision, Endpoint, GroupVersionKind, Request, Review, UserInfo, decide};
use crate::inject::apply;
use crate::ordered;
use crate::policy::{ClusterPolicy, NamespaceMeta};

/// Why an offline run failed. [`OfflineError::Denied`] exits 1, the others 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Input is not YAML/JSON objects.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--namespace-label`/`--namespace-annotation` that is not `key=value`.
    #[error("{flag} {value:?} is not key=value")]
    KeyValue {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// The policy file was refused.
    #[error("--policy: {0}")]
    Policy(String),
    /// The namespaces file was refused.
    #[error("--namespaces: {0}")]
    Namespaces(String),
    /// At least one object would be rejected.
    #[error("{}", .0.join("\n"))]
    Denied(Vec<String>),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(clap::ValueEnum))]
pub enum Format {
    /// YAML documents separated by `---`.
    Yaml,
    /// JSON (one object; an array for several, or when the input is a JSON array).
    Json,
}

/// Where the namespace's labels and annotations come from.
#[derive(Debug, Clone, Default)]
pub struct NamespaceSource {
    /// Namespace name overriding the objects' own.
    pub namespace: Option<String>,
    /// `k=v` labels.
    pub labels: Vec<String>,
    /// `k=v` annotations.
    pub annotations: Vec<String>,
    /// A namespaces file.
    pub namespaces_file: Option<std::path::PathBuf>,
}

/// Read a file, or stdin for `-`.
pub fn read_input(path: &str) -> Result<String, OfflineError> {
    let mut text = String::new();
    let result = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    result.map_err(|e| OfflineError::Read {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    Ok(text)
}

/// Parse YAML (multi-document) or JSON into objects; also tells which it was.
pub fn parse_documents(text: &str, path: &str) -> Result<(Vec<Value>, Format), OfflineError> {
    let parse_err = |reason: String| OfflineError::Parse {
        path: path.to_string(),
        reason,
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // One JSON value; anything else (e.g. JSON documents separated by `---`)
        // is read as YAML, of which JSON is a subset.
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            let docs = match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            return Ok((docs, Format::Json));
        }
    }
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| parse_err(e.to_string()))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok((docs, Format::Yaml))
}

/// Load the policy file, or the built-in policy.
pub fn load_policy(path: Option<&Path>) -> Result<ClusterPolicy, OfflineError> {
    match path {
        None => Ok(ClusterPolicy::default()),
        Some(p) => {
            let text = read_input(&p.display().to_string())?;
            ClusterPolicy::from_yaml(&text).map_err(|e| OfflineError::Policy(e.to_string()))
        }
    }
}

fn split_kv(flag: &'static str, s: &str) -> Result<(String, String), OfflineError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| OfflineError::KeyValue {
            flag,
            value: s.to_string(),
        })
}

impl NamespaceSource {
    /// The namespace an object is admitted into.
    fn resolve(
        &self,
        obj: &Value,
        from_file: &[NamespaceMeta],
    ) -> Result<NamespaceMeta, OfflineError> {
        let name = self
            .namespace
            .clone()
            .or_else(|| {
                crate::target::pointer(obj, "/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "default".to_string());
        let mut ns = from_file
            .iter()
            .find(|n| n.name == name)
            .cloned()
            .unwrap_or_else(|| NamespaceMeta::named(&name));
        for l in &self.labels {
            let (k, v) = split_kv("--namespace-label", l)?;
            ns.labels.insert(k, v);
        }
        for a in &self.annotations {
            let (k, v) = split_kv("--namespace-annotation", a)?;
            ns.annotations.insert(k, v);
        }
        Ok(ns)
    }

    fn file(&self) -> Result<Vec<NamespaceMeta>, OfflineError> {
        match &self.namespaces_file {
            None => Ok(Vec::new()),
            Some(p) => {
                let text = read_input(&p.display().to_string())?;
                crate::namespaces::parse(&text).map_err(|e| OfflineError::Namespaces(e.to_string()))
            }
        }
    }
}

/// The review the apiserver would send for creating `obj` in `ns`.
pub fn create_review(obj: &Value, ns: &str) -> Review {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let text = |p: &str| {
        crate::target::pointer(obj, p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Review {
        api_version: "admission.k8s.io/v1".into(),
        request: Request {
            uid: "offline".into(),
            kind: GroupVersionKind {
                group: group.to_string(),
                version: version.to_string(),
                kind: text("/kind").unwrap_or_default(),
            },
            sub_resource: None,
            name: text("/metadata/name"),
            namespace: Some(ns.to_string()),
            operation: "CREATE".into(),
            user_info: UserInfo::default(),
            object: Some(obj.clone()),
            old_object: None,
            dry_run: Some(true),
        },
    }
}

/// The decisions for every document of the input.
fn decide_all(
    docs: &[Value],
    endpoint: Endpoint,
    policy: &ClusterPolicy,
    source: &NamespaceSource,
) -> Result<Vec<(String, Decision)>, OfflineError> {
    let from_file = source.file()?;
    let mut out = Vec::with_capacity(docs.len());
    for obj in docs {
        let ns = source.resolve(obj, &from_file)?;
        let review = create_review(obj, &ns.name);
        let label = format!(
            "{} {}",
            obj.get("kind").and_then(Value::as_str).unwrap_or("object"),
            review.object_name()
        );
        out.push((label, decide(endpoint, &review, policy, Some(&ns))));
    }
    Ok(out)
}

/// `inject`: the mutated documents, serialized in `format`. Warnings go to `warn`.
///
/// Each document is printed with its keys in the user's order ([`ordered`]),
/// and the TLS the patch adds after them. Where that reading is not the same
/// document as the patched `Value` (which every document is checked for), the
/// `Value` is printed instead: the same content, its keys sorted.
pub fn inject_text(
    text: &str,
    path: &str,
    policy: &ClusterPolicy,
    source: &NamespaceSource,
    format: Option<Format>,
    warn: &mut dyn FnMut(&str),
) -> Result<String, OfflineError> {
    let (docs, detected) = parse_documents(text, path)?;
    let decisions = decide_all(&docs, Endpoint::Mutate, policy, source)?;
    let in_order = match detected {
        Format::Json => ordered::read_json(text),
        Format::Yaml => ordered::read_yaml(text),
    }
    .filter(|o| o.len() == docs.len())
    .unwrap_or_default();
    let mut denied = Vec::new();
    let mut out = Vec::with_capacity(docs.len());
    for (i, (obj, (label, d))) in docs.iter().zip(&decisions).enumerate() {
        for w in &d.warnings {
            warn(&format!("warning: {label}: {w}"));
        }
        if !d.allowed {
            denied.push(format!("{label}: denied: {}", d.message));
            continue;
        }
        let patched = apply(obj, &d.patch).map_err(|e| OfflineError::Parse {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let printed = in_order
            .get(i)
            .and_then(|doc| ordered::apply(doc, &d.patch))
            .filter(|doc| ordered::same(doc, &patched));
        out.push(match printed {
            Some(doc) => doc,
            None => serde_yaml::to_value(&patched).map_err(|e| output_error(e.to_string()))?,
        });
    }
    if !denied.is_empty() {
        return Err(OfflineError::Denied(denied));
    }
    // A JSON list in gives a list out, even of one document: `[[...]]` printed as
    // `[...]` would read back as a list of other documents.
    let was_list = detected == Format::Json && text.trim_start().starts_with('[');
    match format.unwrap_or(detected) {
        Format::Json if was_list => serialize(&[Yaml::Sequence(out)], Format::Json),
        format => serialize(&out, format),
    }
}

fn output_error(reason: String) -> OfflineError {
    OfflineError::Parse {
        path: "output".into(),
        reason,
    }
}

/// Serialize documents, each mapping's keys in its order.
pub fn serialize(docs: &[Yaml], format: Format) -> Result<String, OfflineError> {
    let err = |e: serde_json::Error| output_error(e.to_string());
    let yaml_err = |e: serde_yaml::Error| output_error(e.to_string());
    match format {
        Format::Json => {
            let text = match docs {
                [one] => serde_json::to_string_pretty(one),
                many => serde_json::to_string_pretty(many),
            };
            text.map(|s| s + "\n").map_err(err)
        }
        Format::Yaml => {
            let mut s = String::new();
            for (i, d) in docs.iter().enumerate() {
                if i > 0 {
                    s.push_str("---\n");
                }
                s.push_str(&serde_yaml::to_string(d).map_err(yaml_err)?);
            }
            Ok(s)
        }
    }
}

/// `check`: one line per document; denials make it an error.
pub fn check_text(
    text: &str,
    path: &str,
    policy: &ClusterPolicy,
    source: &NamespaceSource,
    warn: &mut dyn FnMut(&str),
) -> Result<String, OfflineError> {
    let (docs, _) = parse_documents(text, path)?;
    let decisions = decide_all(&docs, Endpoint::Validate, policy, source)?;
    let mut report = String::new();
    let mut denied = Vec::new();
    for (label, d) in &decisions {
        for w in &d.warnings {
            warn(&format!("warning: {label}: {w}"));
        }
        if d.allowed {
            report.push_str(&format!("allowed {label} ({})\n", d.reason));
        } else {
            denied.push(format!("{label}: denied: {}", d.message));
        }
    }
    if denied.is_empty() {
        Ok(report)
    } else {
        Err(OfflineError::Denied(denied))
    }
}
