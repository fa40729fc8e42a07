//! A user's documents with their keys in the user's order, for `inject` to print.
//!
//! The crate builds serde_json without `preserve_order`: a `serde_json::Value`'s
//! objects keep their keys sorted (a `BTreeMap`), which makes the server read a
//! review about 6% faster than with an `IndexMap` hashed with SipHash
//! (`docs/performance.md`). The decision never depends on key order. But
//! `inject` prints a user's manifest back with TLS added, and a manifest kept in
//! Git should come back with its keys where they were. So `inject` also reads
//! each document as a [`serde_yaml::Value`], whose mappings keep their order,
//! applies the decision's patch to it with [`apply`], and prints it — if it is
//! [`same`] as the `Value` the patch made, which is checked for every document.
//!
//! Keys the patch adds come after the user's keys of the same mapping. Inside an
//! object the injector built (a container, a volume, a mount, an env var) `name`
//! comes first and the other keys are sorted.

use serde::Deserialize;
use serde_yaml::Value as Yaml;

use crate::patch::{Op, Operation};
use crate::target::{array_index as index, unescape_token};

/// The JSON text's documents (one value, or the items of a top-level array),
/// keys in order; `None` if it does not read.
pub fn read_json(text: &str) -> Option<Vec<Yaml>> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let doc = Yaml::deserialize(&mut reader).ok()?;
    reader.end().ok()?;
    Some(match doc {
        Yaml::Sequence(items) => items,
        one => vec![one],
    })
}

/// The YAML text's documents, empty ones left out, keys in order; `None` if one
/// does not read.
pub fn read_yaml(text: &str) -> Option<Vec<Yaml>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let doc = Yaml::deserialize(doc).ok()?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Some(docs)
}

/// `doc` with `patch` applied, each mapping's keys where they were; `None` if an
/// operation does not apply (the caller then prints the `serde_json` result).
pub fn apply(doc: &Yaml, patch: &[Operation]) -> Option<Yaml> {
    let mut out = doc.clone();
    for op in patch {
        let value = name_first(serde_yaml::to_value(op.value.to_value()).ok()?);
        let (parent, last) = op.path.rsplit_once('/')?;
        let last = unescape_token(last);
        match (op.op, walk(&mut out, parent)?) {
            (Op::Add, Yaml::Mapping(map)) => {
                // An existing key keeps its place (an `IndexMap` insert).
                map.insert(Yaml::String(last.into_owned()), value);
            }
            (Op::Replace, Yaml::Mapping(map)) => *map.get_mut(&*last)? = value,
            (Op::Add, Yaml::Sequence(items)) => {
                let at = if last == "-" {
                    items.len()
                } else {
                    index(&last)?
                };
                if at > items.len() {
                    return None;
                }
                items.insert(at, value);
            }
            (Op::Replace, Yaml::Sequence(items)) => *items.get_mut(index(&last)?)? = value,
            _ => return None,
        }
    }
    Some(out)
}

/// `value` (an object the injector built, its keys sorted) with each mapping's
/// `name` first, as people write Kubernetes objects.
fn name_first(value: Yaml) -> Yaml {
    match value {
        Yaml::Mapping(map) => {
            let (name, rest): (Vec<_>, Vec<_>) = map.into_iter().partition(|(k, _)| k == "name");
            name.into_iter()
                .chain(rest)
                .map(|(k, v)| (k, name_first(v)))
                .collect::<serde_yaml::Mapping>()
                .into()
        }
        Yaml::Sequence(items) => items.into_iter().map(name_first).collect(),
        other => other,
    }
}

/// Whether `doc` is the document `json` is: the same content, key order aside.
pub fn same(doc: &Yaml, json: &serde_json::Value) -> bool {
    serde_json::to_value(doc).is_ok_and(|v| v == *json)
}

/// Whether every key `a` and `b` both have is in the same order in both, at
/// every depth (lists compared item by item): `b` keeps `a`'s order.
pub fn same_order(a: &Yaml, b: &Yaml) -> bool {
    match (a, b) {
        (Yaml::Mapping(a), Yaml::Mapping(b)) => {
            shared_keys(a, b) == shared_keys(b, a)
                && a.iter()
                    .all(|(k, v)| b.get(k).is_none_or(|w| same_order(v, w)))
        }
        (Yaml::Sequence(a), Yaml::Sequence(b)) => a.iter().zip(b).all(|(v, w)| same_order(v, w)),
        _ => true,
    }
}

/// `x`'s keys that `y` has too, in `x`'s order.
fn shared_keys<'a>(x: &'a serde_yaml::Mapping, y: &serde_yaml::Mapping) -> Vec<&'a Yaml> {
    x.keys().filter(|k| y.contains_key(*k)).collect()
}

/// The value at JSON pointer `pointer` (`""` is the whole document).
fn walk<'a>(mut at: &'a mut Yaml, pointer: &str) -> Option<&'a mut Yaml> {
    if pointer.is_empty() {
        return Some(at);
    }
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = unescape_token(token);
        at = match at {
            Yaml::Mapping(map) => map.get_mut(&*token)?,
            Yaml::Sequence(items) => items.get_mut(index(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::patch::PatchValue;

    fn keys(v: &Yaml) -> Vec<&str> {
        v.as_mapping()
            .map(|m| m.keys().filter_map(Yaml::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn keeps_the_order_and_adds_after() {
        let doc = &read_yaml("kind: Pod\nmetadata:\n  name: p\n  annotations:\n    z: '1'\n    a: '2'\nspec:\n  containers: [{name: c, image: i}]\n").unwrap()[0];
        let patch = [
            Operation::add(
                "/metadata/annotations/tls.vespa.ai~1injected".into(),
                PatchValue::Built(json!("x")),
            ),
            Operation::add(
                "/spec/containers/0/env".into(),
                PatchValue::Built(json!([{"name": "E", "value": "v"}])),
            ),
            Operation::replace(
                "/metadata/annotations/z".into(),
                PatchValue::Built(json!("3")),
            ),
            Operation::add(
                "/spec/containers/0".into(),
                PatchValue::Built(json!({"name": "first"})),
            ),
        ];
        let out = apply(doc, &patch).unwrap();
        assert_eq!(keys(&out), ["kind", "metadata", "spec"]);
        assert_eq!(
            keys(&out["metadata"]["annotations"]),
            ["z", "a", "tls.vespa.ai/injected"]
        );
        assert_eq!(out["metadata"]["annotations"]["z"], "3");
        assert_eq!(
            keys(&out["spec"]["containers"][1]),
            ["name", "image", "env"]
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "first");
        assert_eq!(
            keys(&out["spec"]["containers"][1]["env"][0]),
            ["name", "value"]
        );
        let as_json = serde_json::to_value(doc).unwrap();
        let expected = crate::inject::apply(&as_json, &patch).unwrap();
        assert!(same(&out, &expected));
        assert!(!same(doc, &expected));
        assert!(same_order(doc, &out));
        let sorted = serde_yaml::to_value(&expected).unwrap();
        assert!(
            !same_order(doc, &sorted),
            "the sorted reading loses the order"
        );
    }

    #[test]
    fn refuses_what_does_not_apply() {
        let doc = &read_json(r#"{"b": {"x": 1}, "a": [1, 2]}"#).unwrap()[0];
        assert_eq!(keys(doc), ["b", "a"]);
        let built = |v| PatchValue::Built(v);
        for op in [
            Operation::replace("/b/y".into(), built(json!(1))),
            Operation::add("/missing/y".into(), built(json!(1))),
            Operation::add("/a/3".into(), built(json!(1))),
            Operation::add("/a/01".into(), built(json!(1))),
            Operation::replace("/a/2".into(), built(json!(1))),
            Operation::add("/b/x/y".into(), built(json!(1))),
            Operation::add("no-slash".into(), built(json!(1))),
        ] {
            assert_eq!(apply(doc, std::slice::from_ref(&op)), None, "{op:?}");
        }
        let ok = apply(doc, &[Operation::add("/a/2".into(), built(json!(3)))]).unwrap();
        assert_eq!(ok["a"], serde_yaml::to_value([1, 2, 3]).unwrap());
    }

    #[test]
    fn reads_documents_as_the_json_reading_does() {
        assert_eq!(
            read_json("[{\"a\": 1}, {\"b\": 2}]").map(|d| d.len()),
            Some(2)
        );
        assert_eq!(read_json("{\"a\": 1} trailing"), None);
        assert_eq!(
            read_yaml("a: 1\n---\n---\nb: 2\n").map(|d| d.len()),
            Some(2)
        );
        assert_eq!(read_yaml("a: [\n"), None);
    }
}
