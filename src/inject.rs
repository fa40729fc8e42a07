//! The injector: settings + object → a JSON patch that gives the object TLS.
//!
//! The patch is built directly (no clone-and-diff), touches only what is missing,
//! and applies to the object it was computed from:
//! - missing `podTemplate`, `spec`, `containers`, `env`, `volumeMounts` or
//!   `volumes` are added whole; present arrays get `add …/-` appends, so every
//!   container, env var, mount and volume the user had stays, in order;
//! - entries already identical to what is wanted are left alone, so injecting into
//!   injected output gives an empty patch, and a pod that arrives with TLS complete
//!   gets no patch at all (not even our annotation);
//! - a same-named volume or env var, or a mount at the same path, with different
//!   content is a [`Conflict`] and nothing is patched — unless the object carries
//!   our `tls.vespa.ai/injected` annotation: then those entries are ours from an
//!   earlier injection under other settings and are replaced (with a warning).

use serde_json::{Map, Value, json};

use crate::layout::{CONTAINER, ENV_MIXED_MODE, Role, wanted};
use crate::patch::{Operation, PatchValue, Shared};
use crate::policy::INJECTED_ANNOTATION;
use crate::ready::{Ready, SharedWanted};
use crate::settings::TlsSettings;
use crate::target::{Kind, Template, field, override_templates, pointer, templates};

/// Why an object cannot be injected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InjectError {
    /// The object has entries that contradict what TLS needs.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Conflicts(Vec<Conflict>),
    /// The object's structure is not what Kubernetes allows there.
    #[error("{path}: {problem}")]
    Malformed {
        /// JSON pointer of the bad part.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A patch did not apply (a bug if it came from [`inject`]).
    #[error("patch does not apply: {0}")]
    Apply(String),
}

/// An entry of the object that contradicts an entry TLS needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// JSON pointer of the user's entry.
    pub path: String,
    /// What kind of entry (`volume "tls-certs"`, `mount at /etc/tls`, ...).
    pub what: String,
    /// The user's entry.
    pub existing: Value,
    /// The entry TLS needs.
    pub wanted: Value,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {} conflicts with TLS injection: the object has {} but TLS needs {}; remove or rename yours, or make it identical",
            self.what, self.path, self.existing, self.wanted
        )
    }
}

/// The result of injecting: patch operations (RFC 6902) and warnings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Injection {
    /// JSON patch operations; empty when nothing changes.
    pub patch: Vec<Operation>,
    /// Things the user should know (replaced stale entries).
    pub warnings: Vec<String>,
}

/// Compute the patch that gives `obj` TLS under `settings`. `allow_mixed_mode`
/// is the policy's; a user-set `VESPA_TLS_INSECURE_MIXED_MODE` is a conflict
/// when it is false.
pub fn inject(
    obj: &Value,
    kind: Kind,
    settings: &TlsSettings,
    allow_mixed_mode: bool,
) -> Result<Injection, InjectError> {
    inject_ready(obj, kind, &Ready::new(settings.clone()), allow_mixed_mode)
}

/// [`inject`] with the settings' derived parts already at hand (the server keeps
/// them per namespace: [`crate::ready::ReadyMemo`]).
pub fn inject_ready(
    obj: &Value,
    kind: Kind,
    ready: &Ready,
    allow_mixed_mode: bool,
) -> Result<Injection, InjectError> {
    // Every patch below (at least the fingerprint annotation) addresses a member
    // of the document, which only a JSON object has.
    as_object(obj, "/")?;
    let fingerprint = &ready.fingerprint;
    let previous = crate::target::annotation(obj, INJECTED_ANNOTATION);
    let mut plan = Plan {
        // A pod's usual patch is seven operations, a VespaSet's fourteen.
        ops: Vec::with_capacity(16),
        replace_ours: previous.is_some(),
        allow_mixed_mode,
        ..Plan::default()
    };
    let templates = templates(kind, obj);
    if templates.is_empty() {
        // Nothing to give TLS (a VespaSet with neither section, a Pod without a
        // `vespa` container): no patch, and no `injected` annotation claiming
        // entries that a later injection would then treat as its own.
        return Ok(Injection::default());
    }
    for template in &templates {
        plan.template(obj, template, ready.wanted(template.role))?;
    }
    plan.conflicts.extend(override_conflicts_with(
        obj,
        override_templates(kind, obj),
        ready.wanted(Role::Application),
        allow_mixed_mode,
    ));
    if !plan.conflicts.is_empty() {
        return Err(InjectError::Conflicts(plan.conflicts));
    }
    // A pod that arrives with TLS complete and without our annotation (the pods
    // of an injected VespaSet, made from its templates, which carry no
    // annotation) is left as it is: the annotation alone would be a patch, and
    // any patch costs the apiserver a second round of admission (README
    // "Decisions"). A pod is only created, never injected again, so it has no
    // use for the claim; a VespaSet is updated, and keeps it.
    let complete_pod = kind == Kind::Pod && plan.ops.is_empty() && previous.is_none();
    if previous != Some(fingerprint.as_str()) && !complete_pod {
        plan.annotate(obj, fingerprint);
    }
    Ok(Injection {
        patch: plan.ops,
        warnings: plan.warnings,
    })
}

/// Entries of override templates (VespaSet profiles) that would replace injected
/// TLS entries with something else: a user's `tls-certs` volume, a mount at
/// `/etc/tls`, a different `VESPA_TLS_CONFIG_FILE`, a forbidden mixed mode.
/// Identical entries and unrelated ones are fine; nothing is ever added there.
pub fn override_conflicts(
    obj: &Value,
    kind: Kind,
    settings: &TlsSettings,
    allow_mixed_mode: bool,
) -> Vec<Conflict> {
    let pointers = override_templates(kind, obj);
    if pointers.is_empty() {
        // No override (every Pod, most VespaSets): nothing wanted to derive.
        return Vec::new();
    }
    override_conflicts_with(
        obj,
        pointers,
        &SharedWanted::from(wanted(settings, Role::Application)),
        allow_mixed_mode,
    )
}

/// [`override_conflicts`] of the override templates at `pointers` against an
/// application template's wanted entries.
fn override_conflicts_with(
    obj: &Value,
    pointers: Vec<String>,
    want: &SharedWanted,
    allow_mixed_mode: bool,
) -> Vec<Conflict> {
    if pointers.is_empty() {
        return Vec::new();
    }
    let mut plan = Plan {
        allow_mixed_mode,
        ..Plan::default()
    };
    for pointer in pointers {
        let Some(spec) = crate::target::pointer(obj, &pointer).and_then(Value::as_object) else {
            continue;
        };
        let containers = spec.get("containers").and_then(Value::as_array);
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let Some(c) = c.as_object() else { continue };
            if c.get("name").and_then(Value::as_str) != Some(CONTAINER) {
                continue;
            }
            let path = format!("{pointer}/containers/{i}");
            plan.mixed_mode_guard(c, &path);
            plan.guard(c, &path, "env", &want.env, Key::Name, "env var");
            plan.guard(
                c,
                &path,
                "volumeMounts",
                &want.mounts,
                Key::MountPath,
                "mount",
            );
        }
        plan.guard(
            spec,
            &pointer,
            "volumes",
            &want.volumes,
            Key::Name,
            "volume",
        );
    }
    for c in &mut plan.conflicts {
        c.what = format!("profile override of the injected {}", c.what);
    }
    plan.conflicts
}

#[derive(Default)]
struct Plan {
    ops: Vec<Operation>,
    conflicts: Vec<Conflict>,
    warnings: Vec<String>,
    replace_ours: bool,
    allow_mixed_mode: bool,
}

/// `add` of a value built for this object.
fn add(path: String, value: Value) -> Operation {
    Operation::add(path, PatchValue::Built(value))
}

/// Copies of shared entries, for a value built around them.
fn values(entries: &[Shared]) -> Vec<Value> {
    entries.iter().map(|e| e.value().clone()).collect()
}

/// `parent/token`: a JSON pointer one level down. Written into a string of its
/// final size: `format!` and `concat` cost more, and this runs for every entry
/// of the patch.
fn child(parent: &str, token: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + token.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(token);
    path
}

/// `parent/i`: [`child`] for the index of a list's entry, without `format!`.
fn child_at(parent: &str, i: usize) -> String {
    // usize::MAX has 20 digits; they are found from the last.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = i;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut path = String::with_capacity(parent.len() + 1 + digits.len() - start);
    path.push_str(parent);
    path.push('/');
    path.extend(digits[start..].iter().map(|&d| char::from(d)));
    path
}

/// The JSON pointer of [`INJECTED_ANNOTATION`] (its `/` escaped).
const INJECTED_POINTER: &str = "/metadata/annotations/tls.vespa.ai~1injected";

/// Escape a JSON pointer token (RFC 6901).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn name_of(v: &Value) -> Option<&str> {
    field(v, "name").and_then(Value::as_str)
}

impl Plan {
    fn template(
        &mut self,
        obj: &Value,
        template: &Template,
        want: &SharedWanted,
    ) -> Result<(), InjectError> {
        // The wanted entries are shared into the patch, never copied — except
        // into a container or spec built whole (a template without either).
        let SharedWanted {
            env,
            mounts,
            volumes,
        } = want;
        let container = || {
            let mut c = Map::with_capacity(3);
            c.insert("name".into(), CONTAINER.into());
            c.insert("env".into(), Value::Array(values(env)));
            c.insert("volumeMounts".into(), Value::Array(values(mounts)));
            Value::Object(c)
        };
        let Some(spec) = pointer(obj, template.pointer) else {
            let mut spec = Map::with_capacity(2);
            spec.insert("containers".into(), Value::Array(vec![container()]));
            spec.insert("volumes".into(), Value::Array(values(volumes)));
            self.add_nested(obj, template.pointer, Value::Object(spec))?;
            return Ok(());
        };
        let spec = as_object(spec, template.pointer)?;

        // The vespa container.
        let containers_path = child(template.pointer, "containers");
        match spec.get("containers") {
            None | Some(Value::Null) => self
                .ops
                .push(add(containers_path, Value::Array(vec![container()]))),
            Some(containers) => {
                let containers = as_array(containers, &containers_path)?;
                let mut vespa = containers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| name_of(c) == Some(CONTAINER));
                match (vespa.next(), vespa.next()) {
                    (None, _) => self
                        .ops
                        .push(add(child(&containers_path, "-"), container())),
                    (Some((i, c)), None) => {
                        let path = child_at(&containers_path, i);
                        let c = as_object(c, &path)?;
                        self.mixed_mode_guard(c, &path);
                        self.entries(c, &path, "env", env, Key::Name, "env var")?;
                        self.entries(c, &path, "volumeMounts", mounts, Key::MountPath, "mount")?;
                    }
                    (Some(_), Some((j, _))) => {
                        return Err(InjectError::Malformed {
                            path: format!("{containers_path}/{j}"),
                            problem:
                                "a second container named \"vespa\"; TLS goes into exactly one"
                                    .into(),
                        });
                    }
                }
            }
        }
        if let Some(init) = spec.get("initContainers").and_then(Value::as_array)
            && let Some(i) = init.iter().position(|c| name_of(c) == Some(CONTAINER))
        {
            return Err(InjectError::Malformed {
                path: format!("{}/initContainers/{i}", template.pointer),
                problem:
                    "an initContainer named \"vespa\" would shadow the main container; rename it"
                        .into(),
            });
        }
        self.entries(
            spec,
            template.pointer,
            "volumes",
            volumes,
            Key::Name,
            "volume",
        )
    }

    /// A user-set mixed mode is allowed only when the policy allows it.
    fn mixed_mode_guard(&mut self, container: &Map<String, Value>, path: &str) {
        if self.allow_mixed_mode {
            return;
        }
        let Some(env) = container.get("env").and_then(Value::as_array) else {
            return;
        };
        if let Some((i, e)) = env
            .iter()
            .enumerate()
            .find(|(_, e)| name_of(e) == Some(ENV_MIXED_MODE))
        {
            self.conflicts.push(Conflict {
                path: format!("{path}/env/{i}"),
                what: format!("env var {ENV_MIXED_MODE}"),
                existing: e.clone(),
                wanted: json!("no such env var: the cluster policy sets allowMixedMode: false"),
            });
        }
    }

    /// Report entries of `field` that have a wanted key but other content.
    fn guard(
        &mut self,
        parent: &Map<String, Value>,
        parent_path: &str,
        field: &str,
        want: &[Shared],
        key: Key,
        what: &str,
    ) {
        let existing = parent.get(field).and_then(Value::as_array);
        for (i, e) in existing.into_iter().flatten().enumerate() {
            let Some(w) = want
                .iter()
                .map(Shared::value)
                .find(|w| key.of(w).is_some() && key.of(w) == key.of(e))
            else {
                continue;
            };
            if !equivalent(e, w) {
                self.conflicts.push(Conflict {
                    path: format!("{parent_path}/{field}/{i}"),
                    what: format!("{what} {}", key.describe(key.of(e))),
                    existing: e.clone(),
                    wanted: w.clone(),
                });
            }
        }
    }

    /// Make the array `field` of `parent` (at `parent_path`) contain `want`.
    fn entries(
        &mut self,
        parent: &Map<String, Value>,
        parent_path: &str,
        field: &str,
        want: &[Shared],
        key: Key,
        what: &str,
    ) -> Result<(), InjectError> {
        let path = child(parent_path, field);
        let existing = match parent.get(field) {
            None | Some(Value::Null) => {
                self.ops
                    .push(Operation::add(path, PatchValue::List(want.to_vec())));
                return Ok(());
            }
            Some(v) => as_array(v, &path)?,
        };
        // The entries with a key, read once: a long list is mostly entries of
        // other names (the projection reads them as null), and it is gone
        // through once here rather than once per wanted entry.
        let keyed: Vec<(usize, &str, &Value)> = existing
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, key.of(e)?, e)))
            .collect();
        for shared in want {
            let w = shared.value();
            let k = key.of(w);
            let mut found = false;
            // The entries whose key is `k`, in order: the keyed ones, or, for a
            // wanted entry without a key (none of ours), those without one.
            let same_key = keyed
                .iter()
                .filter(|&&(_, ek, _)| Some(ek) == k)
                .map(|&(i, _, e)| (i, e));
            let unkeyed = existing
                .iter()
                .enumerate()
                .take(if k.is_none() { existing.len() } else { 0 })
                .filter(|(_, e)| key.of(e).is_none());
            for (i, e) in same_key.chain(unkeyed) {
                found = true;
                if !equivalent(e, w) {
                    let at = format!("{path}/{i}");
                    let what = format!("{what} {}", key.describe(k));
                    if self.replace_ours {
                        self.warnings.push(format!(
                            "{what} at {at} was replaced to match the namespace's current TLS settings"
                        ));
                        self.ops
                            .push(Operation::replace(at, PatchValue::Shared(shared.clone())));
                    } else {
                        self.conflicts.push(Conflict {
                            path: at,
                            what,
                            existing: e.clone(),
                            wanted: w.clone(),
                        });
                    }
                }
            }
            if !found {
                self.ops.push(Operation::add(
                    child(&path, "-"),
                    PatchValue::Shared(shared.clone()),
                ));
            }
        }
        Ok(())
    }

    /// Add `value` at `pointer`, creating missing parent objects as one nested add.
    fn add_nested(&mut self, obj: &Value, pointer: &str, value: Value) -> Result<(), InjectError> {
        let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
        let mut existing = obj;
        let mut depth = 0;
        while depth < tokens.len() {
            match existing.get(tokens[depth]) {
                Some(Value::Null) | None => break,
                Some(next) => {
                    existing = next;
                    depth += 1;
                }
            }
        }
        let at = format!("/{}", tokens[..depth].join("/"));
        if !existing.is_object() {
            return Err(InjectError::Malformed {
                path: at,
                problem: "expected an object".into(),
            });
        }
        let mut nested = value;
        for token in tokens[depth + 1..].iter().rev() {
            let mut m = Map::new();
            m.insert((*token).to_string(), nested);
            nested = Value::Object(m);
        }
        let path = format!("/{}", tokens[..=depth].join("/"));
        self.ops.push(add(path, nested));
        Ok(())
    }

    fn annotate(&mut self, obj: &Value, fingerprint: &str) {
        let has_metadata = obj.get("metadata").is_some_and(Value::is_object);
        let has_annotations = obj
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .is_some_and(Value::is_object);
        let op = if has_annotations {
            add(INJECTED_POINTER.to_string(), json!(fingerprint))
        } else if has_metadata {
            add(
                "/metadata/annotations".into(),
                json!({INJECTED_ANNOTATION: fingerprint}),
            )
        } else {
            add(
                "/metadata".into(),
                json!({"annotations": {INJECTED_ANNOTATION: fingerprint}}),
            )
        };
        self.ops.push(op);
    }
}

/// How entries of an array are identified.
#[derive(Clone, Copy)]
enum Key {
    Name,
    MountPath,
}

impl Key {
    fn of(self, v: &Value) -> Option<&str> {
        match self {
            Key::Name => name_of(v),
            Key::MountPath => field(v, "mountPath").and_then(Value::as_str),
        }
    }

    fn describe(self, k: Option<&str>) -> String {
        match self {
            Key::Name => format!("{:?}", k.unwrap_or_default()),
            Key::MountPath => format!("at {}", k.unwrap_or_default()),
        }
    }
}

/// Equal, ignoring what the apiserver fills in by default on Pods
/// (`configMap.defaultMode: 420`).
pub fn equivalent(existing: &Value, wanted: &Value) -> bool {
    if existing == wanted {
        return true;
    }
    let (Some(e), Some(w)) = (existing.as_object(), wanted.as_object()) else {
        return false;
    };
    let defaulted_mode = |v: &Value| v.get("defaultMode").and_then(Value::as_u64) == Some(420);
    e.len() == w.len()
        && e.iter().all(|(k, ev)| match w.get(k) {
            Some(wv) if ev == wv => true,
            Some(wv) if k == "configMap" && defaulted_mode(ev) => {
                let mut ev = ev.clone();
                if let Some(m) = ev.as_object_mut() {
                    m.remove("defaultMode");
                }
                ev == *wv
            }
            _ => false,
        })
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InjectError> {
    v.as_object().ok_or_else(|| InjectError::Malformed {
        path: path.to_string(),
        problem: format!("expected an object, found {}", type_name(v)),
    })
}

fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, InjectError> {
    v.as_array().ok_or_else(|| InjectError::Malformed {
        path: path.to_string(),
        problem: format!("expected a list, found {}", type_name(v)),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Apply a patch built by [`inject`] to a copy of the object (offline use, tests).
pub fn apply(obj: &Value, patch: &[Operation]) -> Result<Value, InjectError> {
    let ops: json_patch::Patch = serde_json::to_value(patch)
        .and_then(serde_json::from_value)
        .map_err(|e| InjectError::Apply(e.to_string()))?;
    let mut out = obj.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| InjectError::Apply(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_pointer_is_the_escaped_annotation() {
        assert_eq!(
            INJECTED_POINTER,
            format!("/metadata/annotations/{}", escape(INJECTED_ANNOTATION))
        );
    }

    #[test]
    fn a_child_pointer_is_what_format_writes() {
        for parent in ["", "/spec/containers", "/spec/template/spec/containers"] {
            for token in ["", "-", "env", "tls.vespa.ai~1injected"] {
                assert_eq!(child(parent, token), format!("{parent}/{token}"));
            }
            for i in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX / 10, usize::MAX] {
                assert_eq!(child_at(parent, i), format!("{parent}/{i}"), "{i}");
            }
        }
    }
}
