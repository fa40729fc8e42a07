//! Which objects get TLS, and where their pod templates are.

use std::borrow::Cow;

use serde_json::Value;

use crate::layout::{CONTAINER, Role};

/// API group of VespaSet.
pub const VESPASET_GROUP: &str = "k8s.ai.vespa";
/// Label value marking config-server pods (`app.kubernetes.io/component`).
pub const CONFIGSERVER_COMPONENT: &str = "configserver";
/// Label naming a pod's component.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// The kinds this webhook acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `k8s.ai.vespa/v1` VespaSet.
    VespaSet,
    /// `v1` Pod.
    Pod,
    /// `v1` Namespace (only to protect the injection label).
    Namespace,
}

impl Kind {
    /// From an admission request's group and kind.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        match (group, kind) {
            (VESPASET_GROUP, "VespaSet") => Some(Kind::VespaSet),
            ("", "Pod") => Some(Kind::Pod),
            ("", "Namespace") => Some(Kind::Namespace),
            _ => None,
        }
    }

    /// From an object's `apiVersion` and `kind` (offline use).
    pub fn of_object(obj: &Value) -> Option<Kind> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::from_group_kind(group, kind)
    }

    /// Name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VespaSet => "VespaSet",
            Kind::Pod => "Pod",
            Kind::Namespace => "Namespace",
        }
    }
}

/// A pod template (or pod spec) that gets TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// JSON pointer to the pod spec (which may not exist yet).
    pub pointer: &'static str,
    /// Whose pods these are.
    pub role: Role,
}

/// VespaSet sections holding a pod template, and their roles.
pub const VESPASET_SECTIONS: [(&str, &str, Role); 2] = [
    (
        "configServer",
        "/spec/configServer/podTemplate/spec",
        Role::ConfigServer,
    ),
    (
        "application",
        "/spec/application/podTemplate/spec",
        Role::Application,
    ),
];

/// The templates of an object that get TLS; empty when the object is not a Vespa
/// workload (a Pod without a `vespa` container). A VespaSet gets TLS in each of
/// `spec.configServer` and `spec.application` that is present; the sections
/// themselves are never invented.
pub fn templates(kind: Kind, obj: &Value) -> Vec<Template> {
    match kind {
        Kind::VespaSet => VESPASET_SECTIONS
            .iter()
            .filter(|(section, _, _)| field(obj, "spec").and_then(|s| field(s, section)).is_some())
            .map(|&(_, pointer, role)| Template { pointer, role })
            .collect(),
        Kind::Pod if is_vespa_pod(obj) => {
            let component = pointer(obj, "/metadata/labels")
                .and_then(|l| field(l, COMPONENT_LABEL))
                .and_then(Value::as_str);
            let role = if component == Some(CONFIGSERVER_COMPONENT) {
                Role::ConfigServer
            } else {
                Role::Application
            };
            vec![Template {
                pointer: "/spec",
                role,
            }]
        }
        Kind::Pod | Kind::Namespace => Vec::new(),
    }
}

/// Pod templates a VespaSet may use to override the sections' templates
/// (`spec.profiles.<name>.podTemplate`, or a list of profiles). TLS is never
/// injected there, but they must not override what is injected (see
/// [`crate::inject::override_conflicts`]).
pub fn override_templates(kind: Kind, obj: &Value) -> Vec<String> {
    if kind != Kind::VespaSet {
        return Vec::new();
    }
    let escape = crate::inject::escape;
    match pointer(obj, "/spec/profiles") {
        Some(Value::Object(profiles)) => profiles
            .iter()
            .filter(|(_, p)| pointer(p, "/podTemplate/spec").is_some())
            .map(|(name, _)| format!("/spec/profiles/{}/podTemplate/spec", escape(name)))
            .collect(),
        Some(Value::Array(profiles)) => profiles
            .iter()
            .enumerate()
            .filter(|(_, p)| pointer(p, "/podTemplate/spec").is_some())
            .map(|(i, _)| format!("/spec/profiles/{i}/podTemplate/spec"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a pod has a container named `vespa`.
pub fn is_vespa_pod(obj: &Value) -> bool {
    pointer(obj, "/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| field(c, "name").and_then(Value::as_str) == Some(CONTAINER))
        })
}

/// [`Value::pointer`] without its cost: serde_json unescapes every token of the
/// pointer into a new `String` (two `replace` calls), which on the admission path
/// was a good part of the decision. Same result for every pointer.
pub fn pointer<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let mut rest = pointer.strip_prefix('/')?;
    let mut target = value;
    loop {
        // Tokens are split at a byte, not with `str::split`'s searcher: the
        // tokens here are a few bytes long. `/` is ASCII, so the split is at a
        // char boundary.
        let (token, next) = match rest.bytes().position(|b| b == b'/') {
            Some(at) => {
                let (token, tail) = rest.split_at_checked(at)?;
                (token, tail.get(1..))
            }
            None => (rest, None),
        };
        let token = unescape_token(token);
        target = match target {
            Value::Object(_) => field(target, &token)?,
            Value::Array(list) => list.get(array_index(&token)?)?,
            _ => return None,
        };
        match next {
            Some(tail) => rest = tail,
            None => return Some(target),
        }
    }
}

/// `value.get(key)` for an object, else `None`. serde_json's `Map` is a
/// `BTreeMap` here (the crate is built without `preserve_order`): a lookup in the
/// small objects the injector reads (containers, env vars, mounts, volumes)
/// compares a few keys within one node, cheaper than iterating the map (measured
/// with callgrind: iterating made the 10 KB review's decision 20% dearer).
pub fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object()?.get(key)
}

/// A JSON pointer token unescaped (`~1` is `/`, `~0` is `~`), copied only if
/// it has an escape.
pub(crate) fn unescape_token(token: &str) -> Cow<'_, str> {
    if token.bytes().any(|b| b == b'~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// An array index as RFC 6901 writes it (no sign, no leading zero).
pub(crate) fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// An object's annotation, if set to a string.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    let annotations = field(field(obj, "metadata")?, "annotations")?;
    field(annotations, key)?.as_str()
}
