//! JSON Patch operations (RFC 6902) as the injector builds them.
//!
//! Most of a patch is the namespace's wanted entries (env vars, mounts and the
//! CSI and ConfigMap volumes), the same for every pod of the namespace. They are
//! [`Shared`]: built and written as JSON once per namespace settings
//! ([`crate::ready::Ready`]), and a patch holds a reference to them. Building
//! a patch copies no entry, and writing it copies each entry's JSON text. The
//! bytes are exactly those of the same operations as `serde_json::Value`s.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One operation of a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `add` or `replace`.
    pub op: Op,
    /// JSON pointer of the target.
    pub path: String,
    /// The value added or put in place.
    pub value: PatchValue,
}

/// The operations the injector makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add a member, or insert into a list (`…/-` appends).
    Add,
    /// Replace the value at the path.
    Replace,
}

impl Op {
    /// The operation's name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
        }
    }
}

/// The value of an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchValue {
    /// Built for this object (a whole container, annotations).
    Built(Value),
    /// One wanted entry.
    Shared(Shared),
    /// A whole list of wanted entries (the list was missing).
    List(Vec<Shared>),
}

impl PatchValue {
    /// The value as a `serde_json::Value` (a copy).
    pub fn to_value(&self) -> Value {
        match self {
            PatchValue::Built(v) => v.clone(),
            PatchValue::Shared(s) => s.value().clone(),
            PatchValue::List(l) => Value::Array(l.iter().map(|s| s.value().clone()).collect()),
        }
    }
}

impl Operation {
    /// `add` of `value` at `path`.
    pub fn add(path: String, value: PatchValue) -> Operation {
        Operation {
            op: Op::Add,
            path,
            value,
        }
    }

    /// `replace` with `value` at `path`.
    pub fn replace(path: String, value: PatchValue) -> Operation {
        Operation {
            op: Op::Replace,
            path,
            value,
        }
    }

    /// The operation as a `serde_json::Value` (`{"op", "path", "value"}`).
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::with_capacity(3);
        m.insert("op".into(), self.op.as_str().into());
        m.insert("path".into(), self.path.clone().into());
        m.insert("value".into(), self.value.to_value());
        Value::Object(m)
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut op = s.serialize_struct("Operation", 3)?;
        op.serialize_field("op", self.op.as_str())?;
        op.serialize_field("path", &self.path)?;
        op.serialize_field("value", &self.value)?;
        op.end()
    }
}

impl Serialize for PatchValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PatchValue::Built(v) => v.serialize(s),
            PatchValue::Shared(shared) => shared.serialize(s),
            PatchValue::List(list) => s.collect_seq(list),
        }
    }
}

/// A value many patches hold: its JSON text is written once, when it is made.
/// Cloning it is a reference count.
#[derive(Debug, Clone)]
pub struct Shared(Arc<SharedValue>);

#[derive(Debug)]
struct SharedValue {
    value: Value,
    /// `value` as JSON; `None` only if serde_json could not write it (it always
    /// can write a `Value`), and then `value` is written each time instead.
    json: Option<Box<RawValue>>,
}

impl Shared {
    /// Share `value`, writing its JSON text now.
    pub fn new(value: Value) -> Shared {
        let json = serde_json::value::to_raw_value(&value).ok();
        Shared(Arc::new(SharedValue { value, json }))
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.0.value
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Shared) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Shared {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0.json {
            Some(json) => json.serialize(s),
            None => self.0.value.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_write_exactly_as_their_values_do() {
        let entry = json!({"name": "tls-certs", "csi": {"driver": "csi.cert-manager.io", "readOnly": true,
            "volumeAttributes": {"csi.cert-manager.io/dns-names": "${POD_NAME}.svc"}}});
        let patch = vec![
            Operation::add(
                "/a/-".into(),
                PatchValue::Shared(Shared::new(entry.clone())),
            ),
            Operation::replace("/b/0".into(), PatchValue::Built(json!("x\"y"))),
            Operation::add(
                "/c".into(),
                PatchValue::List(vec![Shared::new(json!(1)), Shared::new(entry.clone())]),
            ),
        ];
        let as_values = Value::Array(patch.iter().map(Operation::to_value).collect());
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            serde_json::to_string(&as_values).unwrap()
        );
        assert_eq!(serde_json::to_value(&patch).unwrap(), as_values);
        assert_eq!(
            as_values,
            json!([
                {"op": "add", "path": "/a/-", "value": entry},
                {"op": "replace", "path": "/b/0", "value": "x\"y"},
                {"op": "add", "path": "/c", "value": [1, entry]},
            ])
        );
    }
}
