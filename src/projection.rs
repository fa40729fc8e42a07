//! Reading an admitted Pod or VespaSet as only the fields the decision reads.
//!
//! A Pod review is mostly content the webhook never looks at: images, ports,
//! probes, resources, owner references, managed fields, and env vars, mounts
//! and volumes that are not TLS's. Materialising all of it as a
//! `serde_json::Value` (a `String` per key and per string, a map per object)
//! was most of the server's CPU per review. [`Projected`] reads a Pod object in
//! one pass and keeps only:
//!
//! | where | kept |
//! |---|---|
//! | the object | `apiVersion`, `kind`, `metadata`, `spec` |
//! | `metadata` | `name`, `generateName`, `namespace`, `deletionTimestamp`; of `labels` only [`COMPONENT_LABEL`], of `annotations` only those under [`ANNOTATION_PREFIX`] (each still an object when none is kept) |
//! | `spec` | `containers`, `initContainers` (their entries as below), `volumes` (for [`Purpose::Mutation`] as below, otherwise whole) |
//! | a container | `name`, `env` and `volumeMounts` (entries as below) |
//! | an entry of a keyed list ([`Keyed`]) | the whole entry when its key (`name`, `mountPath`) is a TLS one or not a string; otherwise `null`, so that every index stays the same |
//!
//! A VespaSet likewise: `apiVersion`, `kind`, `metadata` as above, and of its
//! `spec` only `configServer` and `application` (of each only
//! `podTemplate.spec`, read as a Pod's `spec`) and `profiles` (whole).
//!
//! Volumes are kept whole for `/validate`: it follows the mount at a TLS path to
//! the volume that mount names, whatever its name, and `volumes` comes before
//! `containers` in the apiserver's JSON, so one pass cannot know that name when
//! it reads the volumes. `/mutate` reads only volumes of its own names.
//!
//! Everything else is still parsed — its syntax, UTF-8, numbers and nesting are
//! checked exactly as a full parse checks them, so the same bodies are refused
//! with the same errors — but never stored.
//!
//! The contract: the injector, the validator and the admission decision give the
//! same answer on the projection as on the full object (the `/mutate` decision
//! also on the [`Purpose::Mutation`] projection). `tests/core/projection.rs`
//! and the `review` fuzz targets check exactly that against
//! [`crate::admission::parse_review_complete`], the reading without projection.
//! Where the projection cannot be exact in one pass — a second key (`name`,
//! `mountPath`) in a list entry whose first was not a TLS one, or serde_json's
//! internal raw-value key — it stops with [`REPARSE`] and the review is read
//! again without projection.
//!
//! Namespaces are small and read whole.
//!
//! This module is the reference reading of the projection. The server reads
//! the usual review with a hand-written reader, [`crate::scan`], which gives
//! the same projection and hands everything it is not sure of back to this one.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::layout::{is_tls_env, is_tls_mount_path, is_tls_volume};
use crate::target::COMPONENT_LABEL;

/// The prefix of the annotations the decision reads on a Pod or VespaSet
/// ([`crate::policy::INJECT_ANNOTATION`], [`crate::policy::INJECTED_ANNOTATION`]);
/// the projection keeps no other annotation (a `kubectl apply`'s
/// `last-applied-configuration` copy of the object is the usual large one).
pub const ANNOTATION_PREFIX: &str = "tls.vespa.ai/";

/// The error message that makes [`crate::admission::parse_review`] read the
/// review again without projection.
pub const REPARSE: &str = "vespa-tls-webhook: projection not exact here; read again in full";

/// serde_json's private key marking a raw value (its `raw_value` feature):
/// a full parse treats a map starting with it specially, so we do not project it.
pub(crate) const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// What part of a Pod a value is, and so what of it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Everything.
    Whole,
    /// A Pod object.
    Pod,
    /// A VespaSet object.
    VespaSet,
    /// A VespaSet's `spec`.
    VespaSetSpec,
    /// `spec.configServer` or `spec.application`.
    Section,
    /// A section's `podTemplate`.
    PodTemplate,
    /// `metadata`.
    Metadata,
    /// `metadata.labels`.
    Labels,
    /// `metadata.annotations`.
    Annotations,
    /// `spec`.
    PodSpec,
    /// `containers` or `initContainers`.
    Containers,
    /// One container.
    Container,
    /// A list whose entries are kept by their key.
    List(Keyed),
    /// One entry of such a list.
    Entry(Keyed),
}

/// A list whose entries are kept whole only when their key is one the decision
/// reads (or not a string); the others are read as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    /// A container's `env`, by `name` ([`is_tls_env`]).
    Env,
    /// A container's `volumeMounts`, by `mountPath` ([`is_tls_mount_path`]).
    Mounts,
    /// A pod spec's `volumes`, by `name` ([`is_tls_volume`]); only for
    /// [`Purpose::Mutation`].
    Volumes,
}

impl Keyed {
    /// The member that names an entry.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Keyed::Env | Keyed::Volumes => "name",
            Keyed::Mounts => "mountPath",
        }
    }

    /// Whether the decision reads an entry of this key.
    pub(crate) fn reads(self, key: &str) -> bool {
        match self {
            Keyed::Env => is_tls_env(key),
            Keyed::Mounts => is_tls_mount_path(key),
            Keyed::Volumes => is_tls_volume(key),
        }
    }
}

/// Which decisions a projection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Both endpoints' (volumes kept whole).
    Review,
    /// Only `/mutate`'s (volumes kept by name).
    Mutation,
}

impl Shape {
    /// The shape of the member `key` of a map of this shape; `None`: not kept.
    /// Shapes that are not maps (a list, or `Whole`) keep every member whole.
    pub(crate) fn member(self, key: &str, purpose: Purpose) -> Option<Shape> {
        match (self, key) {
            (Shape::Pod | Shape::VespaSet, "apiVersion" | "kind") => Some(Shape::Whole),
            (Shape::Pod | Shape::VespaSet, "metadata") => Some(Shape::Metadata),
            (Shape::Pod, "spec") => Some(Shape::PodSpec),
            (Shape::VespaSet, "spec") => Some(Shape::VespaSetSpec),
            (Shape::VespaSetSpec, "configServer" | "application") => Some(Shape::Section),
            (Shape::VespaSetSpec, "profiles") => Some(Shape::Whole),
            (Shape::Section, "podTemplate") => Some(Shape::PodTemplate),
            (Shape::PodTemplate, "spec") => Some(Shape::PodSpec),
            (Shape::Metadata, "name" | "generateName" | "namespace" | "deletionTimestamp") => {
                Some(Shape::Whole)
            }
            (Shape::Metadata, "labels") => Some(Shape::Labels),
            (Shape::Metadata, "annotations") => Some(Shape::Annotations),
            (Shape::Labels, COMPONENT_LABEL) => Some(Shape::Whole),
            (Shape::Annotations, key) if key.starts_with(ANNOTATION_PREFIX) => Some(Shape::Whole),
            (Shape::PodSpec, "containers" | "initContainers") => Some(Shape::Containers),
            (Shape::PodSpec, "volumes") => Some(match purpose {
                Purpose::Review => Shape::Whole,
                Purpose::Mutation => Shape::List(Keyed::Volumes),
            }),
            (Shape::Container, "name") => Some(Shape::Whole),
            (Shape::Container, "env") => Some(Shape::List(Keyed::Env)),
            (Shape::Container, "volumeMounts") => Some(Shape::List(Keyed::Mounts)),
            (Shape::Whole | Shape::Containers | Shape::List(_) | Shape::Entry(_), _) => {
                Some(Shape::Whole)
            }
            _ => None,
        }
    }

    /// The shape of the elements of a list of this shape.
    pub(crate) fn element(self) -> Shape {
        match self {
            Shape::Containers => Shape::Container,
            Shape::List(keyed) => Shape::Entry(keyed),
            _ => Shape::Whole,
        }
    }
}

/// Read a value of the given shape as its projection for the given decisions
/// (a [`DeserializeSeed`]).
#[derive(Debug, Clone, Copy)]
pub struct Projected(pub Shape, pub Purpose);

impl<'de> DeserializeSeed<'de> for Projected {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            // serde_json's own reading, exactly as a full parse.
            Shape::Whole => Value::deserialize(d),
            shape => d.deserialize_any(ProjectedVisitor(shape, self.1)),
        }
    }
}

struct ProjectedVisitor(Shape, Purpose);

impl<'de> Visitor<'de> for ProjectedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    // Scalars: as serde_json's `Value` reads them.
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Projected(self.0, self.1).deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let element = Projected(self.0.element(), self.1);
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(element)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if let Shape::Entry(keyed) = self.0 {
            return keyed_entry(map, keyed);
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == RAW_VALUE_KEY {
                return Err(de::Error::custom(REPARSE));
            }
            match self.0.member(&key.0, self.1) {
                Some(shape) => {
                    let value = map.next_value_seed(Projected(shape, self.1))?;
                    out.insert(key.0.into_owned(), value);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Value::Object(out))
    }
}

/// One entry of a keyed list: whole, or `null` when its key is a string the
/// decision does not read.
fn keyed_entry<'de, A: MapAccess<'de>>(mut map: A, keyed: Keyed) -> Result<Value, A::Error> {
    let mut entry = Map::new();
    let mut dropped = false;
    while let Some(key) = map.next_key::<Key<'de>>()? {
        if key.0 == RAW_VALUE_KEY {
            return Err(de::Error::custom(REPARSE));
        }
        if key.0 != keyed.key() {
            if dropped {
                map.next_value_seed(Skip)?;
            } else {
                let value = map.next_value::<Value>()?;
                entry.insert(key.0.into_owned(), value);
            }
            continue;
        }
        // Borrowed from the body: a key that is dropped costs no allocation.
        let name = map.next_value::<Name<'de>>()?;
        let not_tls = matches!(&name, Name::Str(s) if !keyed.reads(s));
        if dropped && !not_tls {
            // A later key (the last one wins) makes the entry TLS's, but its
            // other members were skipped: read the review again in full.
            return Err(de::Error::custom(REPARSE));
        }
        if not_tls {
            dropped = true;
            entry = Map::new();
        } else {
            entry.insert(key.0.into_owned(), name.into_value());
        }
    }
    Ok(if dropped {
        Value::Null
    } else {
        Value::Object(entry)
    })
}

/// A keyed entry's key (`name`, `mountPath`): a string (borrowed from the body
/// when it has no escapes), or any other value, read as a full parse reads it.
enum Name<'de> {
    Str(Cow<'de, str>),
    Other(Value),
}

impl Name<'_> {
    fn into_value(self) -> Value {
        match self {
            Name::Str(s) => Value::String(s.into_owned()),
            Name::Other(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        const WHOLE: ProjectedVisitor = ProjectedVisitor(Shape::Whole, Purpose::Review);
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Name<'de>, E> {
                WHOLE.visit_bool(v).map(Name::Other)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Name<'de>, E> {
                WHOLE.visit_i64(v).map(Name::Other)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Name<'de>, E> {
                WHOLE.visit_u64(v).map(Name::Other)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Name<'de>, E> {
                WHOLE.visit_f64(v).map(Name::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Name<'de>, E> {
                WHOLE.visit_unit().map(Name::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Name<'de>, E> {
                WHOLE.visit_none().map(Name::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Name<'de>, D::Error> {
                WHOLE.visit_some(d).map(Name::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Name<'de>, A::Error> {
                WHOLE.visit_seq(seq).map(Name::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Name<'de>, A::Error> {
                WHOLE.visit_map(map).map(Name::Other)
            }
        }
        d.deserialize_any(NameVisitor)
    }
}

/// A map key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Read a value and keep nothing of it, checking it as strictly as a full parse
/// does (UTF-8, escapes, number range, nesting limit) — unlike
/// [`serde::de::IgnoredAny`], whose skipping serde_json does not check.
#[derive(Debug, Clone, Copy)]
pub struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(text: &str) -> Result<Value, String> {
        project_for(text, Purpose::Review)
    }

    fn project_for(text: &str, purpose: Purpose) -> Result<Value, String> {
        let mut d = serde_json::Deserializer::from_str(text);
        let v = Projected(Shape::Pod, purpose)
            .deserialize(&mut d)
            .map_err(|e| e.to_string())?;
        d.end().map_err(|e| e.to_string())?;
        Ok(v)
    }

    #[test]
    fn keeps_only_what_the_decision_reads() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "uid": "x", "labels": {"a": "b", "app.kubernetes.io/component": "c"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "tls.vespa.ai/inject": "true"},
                "ownerReferences": [{"kind": "StatefulSet"}]},
            "spec": {
                "hostname": "h",
                "volumes": [
                    {"name": "v", "emptyDir": {}},
                    {"configMap": {"name": "c"}, "name": "tls-config"},
                    {"name": ["odd"]}
                ],
                "containers": [
                    {"name": "vespa", "image": "i", "env": [
                        {"name": "A", "value": "1"},
                        {"value": "/x", "name": "VESPA_TLS_CONFIG_FILE"},
                        {"name": 7, "value": "odd"},
                        "not an object"
                    ], "volumeMounts": [
                        {"name": "m", "mountPath": "/m"},
                        {"name": "mine", "mountPath": "/etc/tls"},
                        {"name": "n"}
                    ]},
                    {"name": "sidecar", "ports": [{"containerPort": 1}]}
                ]
            },
            "status": {"phase": "Pending"}
        });
        let expected = |volumes: Value| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {"app.kubernetes.io/component": "c"},
                    "annotations": {"tls.vespa.ai/inject": "true"}},
                "spec": {
                    "volumes": volumes,
                    "containers": [
                        {"name": "vespa", "env": [
                            null,
                            {"value": "/x", "name": "VESPA_TLS_CONFIG_FILE"},
                            {"name": 7, "value": "odd"},
                            "not an object"
                        ], "volumeMounts": [
                            null,
                            {"name": "mine", "mountPath": "/etc/tls"},
                            {"name": "n"}
                        ]},
                        {"name": "sidecar"}
                    ]
                }
            })
        };
        // For both endpoints, volumes whole: /validate follows a mount to a
        // volume of any name.
        assert_eq!(
            project(&pod.to_string()).unwrap(),
            expected(pod["spec"]["volumes"].clone())
        );
        // For /mutate, only volumes of TLS's names (and odd ones) are kept.
        assert_eq!(
            project_for(&pod.to_string(), Purpose::Mutation).unwrap(),
            expected(json!([
                null,
                {"configMap": {"name": "c"}, "name": "tls-config"},
                {"name": ["odd"]}
            ]))
        );
    }

    #[test]
    fn labels_and_annotations_stay_objects_when_none_is_kept() {
        // The injector asks whether `annotations` is an object before adding
        // its own to it: an object with none kept must stay one.
        let pod = r#"{"kind":"Pod","metadata":{"labels":{"a":"b"},"annotations":{"x":"y","tls.vespa.ai/other":"z"}}}"#;
        assert_eq!(
            project(pod).unwrap(),
            json!({"kind": "Pod", "metadata": {"labels": {}, "annotations": {"tls.vespa.ai/other": "z"}}})
        );
        let pod = r#"{"kind":"Pod","metadata":{"labels":["a"],"annotations":{}}}"#;
        assert_eq!(
            project(pod).unwrap(),
            json!({"kind": "Pod", "metadata": {"labels": ["a"], "annotations": {}}})
        );
    }

    #[test]
    fn other_shapes_in_projected_places_are_kept_whole() {
        let text = r#"{"metadata":[1,{"a":2}],"spec":{"containers":{"x":{"image":"i"}}}}"#;
        assert_eq!(
            project(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(project("17").unwrap(), json!(17));
        assert_eq!(project("null").unwrap(), Value::Null);
    }

    #[test]
    fn duplicate_keys_keep_the_last_and_a_late_tls_name_asks_for_a_full_read() {
        let text = r#"{"metadata":{"name":"a","name":"b"}}"#;
        assert_eq!(project(text).unwrap(), json!({"metadata": {"name": "b"}}));
        // The last name is not TLS's: still exact.
        let text = r#"{"spec":{"containers":[{"env":[{"name":"VESPA_TLS_CONFIG_FILE","value":"v","name":"A"}]}]}}"#;
        assert_eq!(
            project(text).unwrap(),
            json!({"spec": {"containers": [{"env": [null]}]}})
        );
        let text = r#"{"spec":{"containers":[{"env":[{"name":"A","value":"v","name":"VESPA_TLS_CONFIG_FILE"}]}]}}"#;
        assert!(project(text).unwrap_err().starts_with(REPARSE));
        let text = r#"{"spec":{"containers":[{"volumeMounts":[{"mountPath":"/m","name":"x","mountPath":"/etc/tls"}]}]}}"#;
        assert!(project(text).unwrap_err().starts_with(REPARSE));
        let text = r#"{"spec":{"volumes":[{"name":"data","emptyDir":{},"name":"tls-certs"}]}}"#;
        assert!(
            project(text).is_ok(),
            "volumes are whole for both endpoints"
        );
        let e = project_for(text, Purpose::Mutation).unwrap_err();
        assert!(e.starts_with(REPARSE));
        let text = format!(r#"{{"spec":{{"{RAW_VALUE_KEY}":"1"}}}}"#);
        assert!(project(&text).unwrap_err().starts_with(REPARSE));
    }

    #[test]
    fn skipped_parts_are_checked_like_a_full_parse() {
        for text in [
            r#"{"status":{"x":1e400}}"#,
            "{\"status\":\"\\ud800\"}",
            r#"{"spec":{"hostname":"\x"}}"#,
            r#"{"status":[1,]}"#,
        ] {
            let full = serde_json::from_str::<Value>(text).unwrap_err().to_string();
            assert_eq!(project(text).unwrap_err(), full, "{text}");
        }
        let deep = format!(r#"{{"status":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        let full = serde_json::from_str::<Value>(&deep)
            .unwrap_err()
            .to_string();
        assert_eq!(project(&deep).unwrap_err(), full);
        let mut bytes = br#"{"status":"ab"}"#.to_vec();
        bytes[11] = 0xff;
        let full = serde_json::from_slice::<Value>(&bytes)
            .unwrap_err()
            .to_string();
        let mut d = serde_json::Deserializer::from_slice(&bytes);
        let projected = Projected(Shape::Pod, Purpose::Review)
            .deserialize(&mut d)
            .unwrap_err()
            .to_string();
        assert_eq!(projected, full);
    }
}
