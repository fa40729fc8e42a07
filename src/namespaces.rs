//! Namespaces from a file (`--namespaces FILE`): the offline namespace view.
//!
//! The file holds Namespace objects as a YAML list, a `v1 List` (`items:`) or
//! several YAML documents; only `metadata.name`, `labels` and `annotations` are
//! read.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::NamespaceMeta;

/// Why a namespaces file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespacesFileError {
    /// Not YAML or not Namespace objects.
    #[error("namespaces file is not valid: {0}")]
    Parse(String),
    /// An entry without a name.
    #[error("namespaces file is not valid: entry {0} has no metadata.name")]
    NoName(usize),
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    items: Option<Vec<Object>>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Parse a namespaces file.
pub fn parse(text: &str) -> Result<Vec<NamespaceMeta>, NamespacesFileError> {
    let mut objects: Vec<Object> = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| NamespacesFileError::Parse(e.to_string()))?;
        match value {
            serde_yaml::Value::Null => {}
            serde_yaml::Value::Sequence(_) => objects.extend(
                serde_yaml::from_value::<Vec<Object>>(value)
                    .map_err(|e| NamespacesFileError::Parse(e.to_string()))?,
            ),
            other => {
                let o: Object = serde_yaml::from_value(other)
                    .map_err(|e| NamespacesFileError::Parse(e.to_string()))?;
                match o.items {
                    Some(items) => objects.extend(items),
                    None => objects.push(o),
                }
            }
        }
    }
    let mut out = Vec::with_capacity(objects.len());
    for (i, o) in objects.into_iter().enumerate() {
        if let Some(kind) = o.kind.as_deref()
            && kind != "Namespace"
        {
            return Err(NamespacesFileError::Parse(format!(
                "entry {i} is a {kind}, expected Namespace"
            )));
        }
        let m = o.metadata.unwrap_or_default();
        let name = m.name.ok_or(NamespacesFileError::NoName(i))?;
        out.push(NamespaceMeta {
            name,
            labels: m.labels.unwrap_or_default(),
            annotations: m.annotations.unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_items_and_documents() {
        let list =
            "- metadata: {name: a, labels: {x: y}}\n- kind: Namespace\n  metadata: {name: b}\n";
        let items = "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: a}\n";
        let docs =
            "kind: Namespace\nmetadata: {name: a, annotations: {k: v}}\n---\nmetadata: {name: b}\n";
        assert_eq!(parse(list).unwrap().len(), 2);
        assert_eq!(parse(list).unwrap()[0].labels["x"], "y");
        assert_eq!(parse(items).unwrap()[0].name, "a");
        let d = parse(docs).unwrap();
        assert_eq!(d[0].annotations["k"], "v");
        assert_eq!(d[1].name, "b");
    }

    #[test]
    fn refuses_nameless_and_other_kinds() {
        assert_eq!(
            parse("- metadata: {}\n"),
            Err(NamespacesFileError::NoName(0))
        );
        assert!(parse("- kind: Pod\n  metadata: {name: a}\n").is_err());
        assert!(parse("[not: closed").is_err());
    }
}
