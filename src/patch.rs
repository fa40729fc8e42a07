//! JSON Patch operations (RFC 6902) as the injector builds them.
//!
//! Most of a patch is the namespace's wanted entries (env vars, mounts and the
//! CSI and ConfigMap volumes), the same for every pod of the namespace. They are
//! [`Shared`]: built and written as JSON once per namespace settings
//! ([`crate::ready::Ready`]), and a patch holds a reference to them. Building
//! a patch copies no entry, and writing it copies each entry's JSON text. The
//! bytes are exactly those of the same operations as `serde_json::Value`s.
//!
//! The server writes a patch with [`write_json`], by hand: the same bytes as
//! serde_json writes from the [`Serialize`] impls here (the unit tests compare
//! the two), in half the instructions (3,000 instead of 6,400 for the 10 KB Pod
//! review's patch, `scripts/instructions`): serde_json escapes every key and
//! string byte by byte, while the keys of an operation are constants and the
//! runs of plain text in a string are found sixteen bytes at a time.

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

/// Append `ops` as a JSON array, byte for byte as `serde_json::to_writer(out,
/// ops)` writes it.
pub fn write_json(ops: &[Operation], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(match op.op {
            Op::Add => b"{\"op\":\"add\",\"path\":",
            Op::Replace => b"{\"op\":\"replace\",\"path\":",
        });
        write_json_string(out, &op.path);
        out.extend_from_slice(b",\"value\":");
        match &op.value {
            PatchValue::Built(v) => write_value(out, v),
            PatchValue::Shared(shared) => shared.write_json(out),
            PatchValue::List(list) => {
                out.push(b'[');
                for (i, shared) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    shared.write_json(out);
                }
                out.push(b']');
            }
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// Append `v` as serde_json writes it.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a `Vec` cannot fail: its keys are strings and the
    // `Vec` takes every byte.
    let _ = serde_json::to_writer(out, v);
}

/// Append `s` as a JSON string, byte for byte as serde_json writes it: `"` and
/// `\` escaped with a backslash, the control characters with a short escape
/// (`\b \f \n \r \t`) or `\u00xx`; everything else (DEL and non-ASCII too)
/// as it is. The runs between escapes are found sixteen bytes at a time, as the
/// review reader finds them ([`crate::scan::skip_plain`]).
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let plain = crate::scan::skip_plain(rest, 0);
        // `skip_plain` stops at most at the end, so the split is always there.
        let (run, tail) = rest.split_at_checked(plain).unwrap_or((rest, &[]));
        out.extend_from_slice(run);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        rest = tail;
    }
    out.push(b'"');
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

    /// Append its JSON text.
    fn write_json(&self, out: &mut Vec<u8>) {
        match &self.0.json {
            Some(json) => out.extend_from_slice(json.get().as_bytes()),
            None => write_value(out, &self.0.value),
        }
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
        let mut written = Vec::new();
        write_json(&patch, &mut written);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&patch).unwrap()
        );
        assert_eq!(
            as_values,
            json!([
                {"op": "add", "path": "/a/-", "value": entry},
                {"op": "replace", "path": "/b/0", "value": "x\"y"},
                {"op": "add", "path": "/c", "value": [1, entry]},
            ])
        );
    }

    /// Every byte that ends a run of plain text, and some that do not, at every
    /// place in strings up to 40 bytes, and around multi-byte characters.
    fn awkward_strings() -> Vec<String> {
        let mut specials: Vec<char> = (0u8..0x20).map(char::from).collect();
        specials.extend(['"', '\\', '\u{7f}', '/', '~', 'a', 'é', '\u{2028}', '😀']);
        let mut out = vec![String::new()];
        for len in [1, 2, 15, 16, 17, 31, 32, 33, 40] {
            for at in 0..len {
                for &c in &specials {
                    let mut s: String = "x".repeat(at);
                    s.push(c);
                    s.push_str(&"y".repeat(len - at - 1));
                    out.push(s);
                }
            }
        }
        out.push("\"\\\u{0}\u{1f}\u{7f}".repeat(9));
        out
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in awkward_strings() {
            let mut written = b"[".to_vec();
            write_json_string(&mut written, &s);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                format!("[{}", serde_json::to_string(&s).unwrap()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn patches_are_written_as_serde_json_writes_them() {
        let strings = awkward_strings();
        for (n, s) in strings.iter().enumerate().step_by(7) {
            let entry = Shared::new(json!({"name": s, "value": {s.as_str(): [s, 1, null]}}));
            let patch = [
                Operation::add(s.clone(), PatchValue::Built(json!({s.as_str(): s, "n": n}))),
                Operation::replace(format!("/spec/{s}/0"), PatchValue::Shared(entry.clone())),
                Operation::add(
                    "/c".into(),
                    PatchValue::List(vec![entry.clone(), Shared::new(json!(s))]),
                ),
                Operation::add("/d".into(), PatchValue::List(Vec::new())),
            ];
            for ops in [&patch[..], &patch[..1], &[]] {
                let mut written = Vec::new();
                write_json(ops, &mut written);
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    serde_json::to_string(ops).unwrap(),
                    "{s:?}"
                );
            }
        }
    }
}
