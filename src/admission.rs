//! The admission decision: an `AdmissionReview` (v1 or v1beta1) in, a decision
//! out, answered in the same version with the request's `uid`.
//!
//! Everything here is synchronous and does no I/O: the HTTP handler reads the
//! body, calls [`parse_review`], looks up the namespace, calls [`decide`] and
//! writes [`Review::respond`].

use std::fmt;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::GeneralPurposeConfig;
use base64::engine::simd::Simd;
use serde::Deserialize;
use serde_json::Value;

use crate::inject::inject_ready;
use crate::patch::{Operation, write_json_string};
use crate::policy::{ClusterPolicy, INJECT_ANNOTATION, INJECTION_LABEL, Mode, NamespaceMeta};
use crate::projection::Purpose;
use crate::ready::ReadyResult;
use crate::target::{Kind, annotation, is_vespa_pod, pointer, templates};
use crate::validate::{FIX_HINT, check};

/// Which webhook is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/mutate`: inject.
    Mutate,
    /// `/validate`: enforce.
    Validate,
}

impl Endpoint {
    /// Name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// Why a request body is not an AdmissionReview we can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Empty body.
    #[error("empty body; expected an admission.k8s.io/v1 AdmissionReview")]
    Empty,
    /// Not JSON or not the expected shape.
    #[error("body is not an AdmissionReview: {0}")]
    Json(String),
    /// Wrong `apiVersion`/`kind`.
    #[error(
        "unsupported {field} {value:?}; expected admission.k8s.io/v1 or v1beta1 AdmissionReview"
    )]
    Version {
        /// `apiVersion` or `kind`.
        field: &'static str,
        /// What was sent.
        value: String,
    },
    /// No `request`.
    #[error("AdmissionReview has no request")]
    NoRequest,
}

/// `apiVersion` and `kind` alone (everything else skipped), so that a review of
/// another version is refused as such even when its `request` has another shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: String,
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    api_version: String,
    kind: String,
    request: Option<Request>,
}

/// The parts of an `AdmissionRequest` the decision uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Echoed in the response.
    pub uid: String,
    /// The kind being admitted.
    #[serde(deserialize_with = "reading::kind")]
    pub kind: GroupVersionKind,
    /// Subresource, if any (`status`, `ephemeralcontainers`, ...).
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// Object name (may be empty on CREATE with generateName).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace of the object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: String,
    /// Who is asking.
    #[serde(default)]
    pub user_info: UserInfo,
    /// The new object. For a Pod or VespaSet read by [`parse_review`], only the
    /// fields the decision reads ([`crate::projection`]).
    #[serde(default, deserialize_with = "reading::object")]
    pub object: Option<Value>,
    /// The old object (UPDATE); projected like `object`.
    #[serde(default, deserialize_with = "reading::object")]
    pub old_object: Option<Value>,
    /// Whether this is a dry run (the answer is the same: we have no side effects).
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// `group`/`version`/`kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct GroupVersionKind {
    /// API group (`""` for core).
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// The requesting user.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct UserInfo {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A review's object as `namespace/name` ([`Review::object_name`]).
#[derive(Debug, Clone, Copy)]
pub struct ObjectName<'a>(&'a Request);

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if let Some(ns) = r.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            write!(f, "{ns}/")?;
        }
        match r.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => f.write_str(name),
            None => match r
                .object
                .as_ref()
                .and_then(|o| crate::target::pointer(o, "/metadata/generateName"))
                .and_then(Value::as_str)
            {
                Some(generate) => write!(f, "{generate}*"),
                None => Ok(()),
            },
        }
    }
}

/// A parsed review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// `admission.k8s.io/v1` or `admission.k8s.io/v1beta1`; answered in the same.
    pub api_version: String,
    /// The request.
    pub request: Request,
}

/// Parse a request body. A Pod or VespaSet object is read as its projection
/// ([`crate::projection`]): only what the decision reads is kept, with the same
/// answer and the same errors as [`parse_review_complete`]. The usual review is
/// read by [`crate::scan`]'s hand-written reader, anything else by serde
/// ([`parse_review_serde`]); both give the same [`Review`].
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    read_projected(body, Purpose::Review)
}

/// [`parse_review`] for one endpoint's decision only: for `/mutate` the object's
/// volumes not of TLS's names are not kept either ([`Purpose::Mutation`]). What
/// the server reads.
pub fn parse_review_for(endpoint: Endpoint, body: &[u8]) -> Result<Review, ReviewError> {
    read_projected(
        body,
        match endpoint {
            Endpoint::Mutate => Purpose::Mutation,
            Endpoint::Validate => Purpose::Review,
        },
    )
}

/// Parse a request body keeping every field of the object: the reference that
/// [`parse_review`]'s projection is checked against (tests, fuzz targets).
pub fn parse_review_complete(body: &[u8]) -> Result<Review, ReviewError> {
    read(body, None)
}

fn read_projected(body: &[u8], purpose: Purpose) -> Result<Review, ReviewError> {
    // The usual review, by hand; anything else (errors included) by serde.
    if let Some(review) = std::str::from_utf8(body)
        .ok()
        .and_then(|text| crate::scan::read(text, purpose))
    {
        return Ok(review);
    }
    parse_review_serde(body, purpose)
}

/// [`parse_review_for`]'s reading by serde alone, without [`crate::scan`]'s
/// fast path: the reading the fast path must equal (tests, fuzz targets).
pub fn parse_review_serde(body: &[u8], purpose: Purpose) -> Result<Review, ReviewError> {
    match read(body, Some(purpose)) {
        Err(ReviewError::Json(e)) if e.starts_with(crate::projection::REPARSE) => read(body, None),
        other => other,
    }
}

/// Read a review, its object projected for `purpose` (`None`: kept whole).
fn read(body: &[u8], project: Option<Purpose>) -> Result<Review, ReviewError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReviewError::Empty);
    }
    let json = |e: serde_json::Error| ReviewError::Json(e.to_string());
    // One pass over the body when it is a review; only when it is not is it read
    // again for the header, whose problems (and a wrong version) come first.
    // Valid UTF-8 (checked once here, quickly) is parsed as a `str`, so that
    // serde_json does not check every string again; otherwise as bytes, which
    // gives the error and where it is.
    let parse = || match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Envelope>(text),
        Err(_) => serde_json::from_slice::<Envelope>(body),
    };
    let envelope = match reading::with(project, parse) {
        Ok(envelope) => envelope,
        Err(e) => {
            let header: Header = serde_json::from_slice(body).map_err(json)?;
            check_version(&header.api_version, &header.kind)?;
            return Err(json(e));
        }
    };
    check_version(&envelope.api_version, &envelope.kind)?;
    let request = envelope.request.ok_or(ReviewError::NoRequest)?;
    Ok(Review {
        api_version: envelope.api_version,
        request,
    })
}

/// How the request's objects are read. `object` needs the request's `kind`,
/// which serde hands to another field's deserializer: the two meet in a
/// thread-local, set for the length of one [`read`] (the apiserver sends `kind`
/// before `object`; an object that comes first is read whole).
mod reading {
    use std::cell::Cell;

    use serde::de::{Deserialize, DeserializeSeed, Deserializer};
    use serde_json::Value;

    use super::GroupVersionKind;
    use crate::projection::{Projected, Purpose, Shape};
    use crate::target::Kind;

    #[derive(Clone, Copy)]
    struct Mode {
        /// Projected for these decisions; `None`: kept whole.
        project: Option<Purpose>,
        /// The shape of the request's kind.
        shape: Shape,
    }

    const OFF: Mode = Mode {
        project: None,
        shape: Shape::Whole,
    };

    thread_local! {
        static MODE: Cell<Mode> = const { Cell::new(OFF) };
    }

    /// Run `f` (one parse) with projection for `project`, or off.
    pub(super) fn with<T>(project: Option<Purpose>, f: impl FnOnce() -> T) -> T {
        MODE.set(Mode { project, ..OFF });
        let out = f();
        MODE.set(OFF);
        out
    }

    /// `request.kind`, noting the shape of its objects.
    pub(super) fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<GroupVersionKind, D::Error> {
        let gvk = GroupVersionKind::deserialize(d)?;
        let mut mode = MODE.get();
        mode.shape = match Kind::from_group_kind(&gvk.group, &gvk.kind) {
            Some(Kind::Pod) => Shape::Pod,
            Some(Kind::VespaSet) => Shape::VespaSet,
            Some(Kind::Namespace) | None => Shape::Whole,
        };
        MODE.set(mode);
        Ok(gvk)
    }

    /// `request.object` / `oldObject`: projected for a Pod or a VespaSet.
    pub(super) fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        let mode = MODE.get();
        let (shape, purpose) = match mode.project {
            Some(purpose) => (mode.shape, purpose),
            None => (Shape::Whole, Purpose::Review),
        };
        // `null` is no object, as for `Option<Value>`.
        match Projected(shape, purpose).deserialize(d)? {
            Value::Null => Ok(None),
            v => Ok(Some(v)),
        }
    }
}

fn check_version(api_version: &str, kind: &str) -> Result<(), ReviewError> {
    if api_version != "admission.k8s.io/v1" && api_version != "admission.k8s.io/v1beta1" {
        return Err(ReviewError::Version {
            field: "apiVersion",
            value: api_version.to_string(),
        });
    }
    if kind != "AdmissionReview" {
        return Err(ReviewError::Version {
            field: "kind",
            value: kind.to_string(),
        });
    }
    Ok(())
}

/// The answer to a review.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the object is admitted.
    pub allowed: bool,
    /// Low-cardinality reason, for metrics and logs.
    pub reason: &'static str,
    /// Denial message (empty when allowed).
    pub message: String,
    /// JSON patch operations (only when allowed and non-empty).
    pub patch: Vec<Operation>,
    /// Warnings returned to the client.
    pub warnings: Vec<String>,
}

impl Decision {
    /// Allowed, nothing to change.
    pub fn allow(reason: &'static str) -> Decision {
        Decision {
            allowed: true,
            reason,
            message: String::new(),
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Denied with a message.
    pub fn deny(reason: &'static str, message: String) -> Decision {
        Decision {
            allowed: false,
            reason,
            message,
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Denied because the namespace could not be looked up (fails closed).
    pub fn unavailable(detail: &str) -> Decision {
        Decision::deny(
            "namespace-unavailable",
            format!(
                "vespa-tls-webhook cannot read the namespace's labels right now ({detail}); retry shortly"
            ),
        )
    }
}

impl Review {
    /// The namespace whose labels the decision needs, if any.
    pub fn namespace(&self) -> Option<&str> {
        let r = &self.request;
        match Kind::from_group_kind(&r.kind.group, &r.kind.kind) {
            Some(Kind::VespaSet | Kind::Pod) => r.namespace.as_deref().filter(|ns| !ns.is_empty()),
            _ => None,
        }
    }

    /// `namespace/name` for logs (name falls back to `generateName` followed by
    /// `*`), written when displayed: logging it allocates nothing.
    pub fn object_name(&self) -> ObjectName<'_> {
        ObjectName(&self.request)
    }

    /// Serialize the AdmissionReview answering this request.
    ///
    /// Written directly rather than through a `json!` tree: the patch is
    /// base64-encoded straight into the answer (base64 needs no JSON escaping).
    pub fn respond(&self, d: &Decision) -> Vec<u8> {
        let patch = (d.allowed && !d.patch.is_empty()).then(|| {
            let mut json = Vec::with_capacity(4096);
            crate::patch::write_json(&d.patch, &mut json);
            json
        });
        let b64 = &*PATCH_BASE64;
        let patch_len = patch.as_ref().map_or(0, |p| p.len().div_ceil(3) * 4);
        let mut out = Vec::with_capacity(self.response_capacity(d, patch_len));
        out.extend_from_slice(b"{\"apiVersion\":");
        write_json_string(&mut out, &self.api_version);
        out.extend_from_slice(b",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
        write_json_string(&mut out, &self.request.uid);
        out.extend_from_slice(if d.allowed {
            b",\"allowed\":true"
        } else {
            b",\"allowed\":false,\"status\":{\"code\":403,\"reason\":\"Forbidden\",\"message\":"
        });
        if !d.allowed {
            write_json_string(&mut out, &d.message);
            out.push(b'}');
        }
        if let Some(patch) = patch {
            out.extend_from_slice(b",\"patchType\":\"JSONPatch\",\"patch\":\"");
            let start = out.len();
            out.resize(start + patch_len, 0);
            let written = b64.encode_slice(&patch, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        if !d.warnings.is_empty() {
            out.extend_from_slice(b",\"warnings\":");
            let _ = serde_json::to_writer(&mut out, &d.warnings);
        }
        out.extend_from_slice(b"}}");
        out
    }
}

/// The most bytes [`Review::respond`] writes besides its strings and the patch
/// (136, a denial's), with room to spare.
const RESPONSE_FIXED: usize = 160;

impl Review {
    /// The buffer [`Review::respond`] starts with, for an answer whose patch is
    /// `patch_len` bytes of base64: room for all of it, so that the answer (2.5
    /// KB with a pod's patch) is not copied to a larger buffer on the way (the
    /// fixed text is 114 bytes with a patch, 136 with a denial's status; only
    /// escapes in the strings and warnings, both rare, may still grow it).
    fn response_capacity(&self, d: &Decision, patch_len: usize) -> usize {
        RESPONSE_FIXED
            + self.api_version.len()
            + self.request.uid.len()
            + patch_len
            + d.message.len()
    }
}

/// The base64 engine of the patch: base64's STANDARD alphabet, padded, as the
/// apiserver reads it, with AVX2 where the CPU has it (detected once) and the
/// scalar encoder elsewhere. The same bytes either way; the AVX2 encoder takes
/// a 10 KB pod's patch in 2,000 instructions, the scalar one in 9,500 (5% of
/// the whole decision; callgrind).
static PATCH_BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(GeneralPurposeConfig::new()));

/// Decide on a review. `ns` is the namespace's metadata when [`Review::namespace`]
/// named one (a namespace not found is passed as [`NamespaceMeta::named`]).
pub fn decide(
    endpoint: Endpoint,
    review: &Review,
    policy: &ClusterPolicy,
    ns: Option<&NamespaceMeta>,
) -> Decision {
    decide_with(endpoint, review, policy, ns, &|ns| {
        Arc::new(policy.ready_for(ns))
    })
}

/// [`decide`], with the namespace's settings from `ready` — which must answer
/// as `policy.ready_for(ns)` does; the server passes its
/// [`crate::ready::ReadyMemo`], so that settings are derived once per namespace
/// and policy, not once per review. Called only when the decision needs them.
pub fn decide_with(
    endpoint: Endpoint,
    review: &Review,
    policy: &ClusterPolicy,
    ns: Option<&NamespaceMeta>,
    ready: &dyn Fn(&NamespaceMeta) -> Arc<ReadyResult>,
) -> Decision {
    let r = &review.request;
    if r.operation != "CREATE" && r.operation != "UPDATE" {
        return Decision::allow("operation-ignored");
    }
    if r.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Decision::allow("subresource-ignored");
    }
    let Some(kind) = Kind::from_group_kind(&r.kind.group, &r.kind.kind) else {
        return Decision::allow("kind-ignored");
    };
    let Some(object) = &r.object else {
        return Decision::deny(
            "no-object",
            format!("{} request carries no object", r.operation),
        );
    };
    if pointer(object, "/metadata/deletionTimestamp").is_some() {
        // Finalizers being removed from an object on its way out: never block that.
        return Decision::allow("deleting");
    }
    match kind {
        Kind::Namespace => decide_namespace(endpoint, r, policy, object),
        Kind::Pod if r.operation != "CREATE" => Decision::allow("operation-ignored"),
        Kind::VespaSet | Kind::Pod => {
            let fallback;
            let ns = match ns {
                Some(ns) => ns,
                None => {
                    fallback = NamespaceMeta::named(r.namespace.as_deref().unwrap_or_default());
                    &fallback
                }
            };
            decide_workload(endpoint, kind, object, policy, ns, ready)
        }
    }
}

fn decide_workload(
    endpoint: Endpoint,
    kind: Kind,
    object: &Value,
    policy: &ClusterPolicy,
    ns: &NamespaceMeta,
    ready: &dyn Fn(&NamespaceMeta) -> Arc<ReadyResult>,
) -> Decision {
    if policy.is_excluded(&ns.name) {
        return Decision::allow("namespace-excluded");
    }
    let mode = match policy.mode_for(ns) {
        Ok(Mode::Disabled) => return Decision::allow("namespace-disabled"),
        Ok(mode) => mode,
        Err(e) => return Decision::deny("invalid-label", e.to_string()),
    };
    // (A Pod's templates are empty exactly when it is not a Vespa pod; this
    // asks without building them, which `inject` does.)
    if kind == Kind::Pod && !is_vespa_pod(object) {
        return Decision::allow("not-vespa");
    }
    let what = What(kind, &ns.name, mode);
    match annotation(object, INJECT_ANNOTATION) {
        None | Some("true") => {}
        Some("false") => {
            if mode == Mode::Enforced {
                return Decision::deny(
                    "opt-out-enforced",
                    format!(
                        "{what}: the opt-out annotation {INJECT_ANNOTATION}: \"false\" is not allowed where TLS is enforced; remove it"
                    ),
                );
            }
            if !policy.constraints.allow_opt_out {
                return Decision::deny(
                    "opt-out-forbidden",
                    format!(
                        "{what}: the opt-out annotation {INJECT_ANNOTATION}: \"false\" is not allowed by the cluster policy (allowOptOut: false); remove it"
                    ),
                );
            }
            let mut d = Decision::allow("opt-out");
            if endpoint == Endpoint::Validate {
                d.warnings.push(format!(
                    "{what}: opted out of TLS with {INJECT_ANNOTATION}: \"false\""
                ));
            }
            return d;
        }
        Some(other) => {
            return Decision::deny(
                "invalid-annotation",
                format!(
                    "{what}: annotation {INJECT_ANNOTATION}: {other:?} is invalid; accepted: \"true\" or \"false\""
                ),
            );
        }
    }
    let ready = ready(ns);
    let ready = match &*ready {
        Ok(r) => r,
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Decision::deny(
                "invalid-settings",
                format!(
                    "{what}: the namespace's TLS settings are refused: {}",
                    list.join("; ")
                ),
            );
        }
    };
    match endpoint {
        // (An object that is not a JSON object is refused by `inject` as malformed.)
        Endpoint::Mutate
            if kind == Kind::VespaSet
                && object.is_object()
                && templates(kind, object).is_empty() =>
        {
            let mut d = Decision::allow("no-pod-templates");
            d.warnings.push(format!(
                "{what}: neither spec.configServer nor spec.application is set, so there is no pod template to give TLS; nothing was injected"
            ));
            d
        }
        Endpoint::Mutate => {
            match inject_ready(object, kind, ready, policy.constraints.allow_mixed_mode) {
                Ok(injection) => Decision {
                    allowed: true,
                    reason: if injection.patch.is_empty() {
                        "already-injected"
                    } else {
                        "injected"
                    },
                    message: String::new(),
                    patch: injection.patch,
                    warnings: injection.warnings,
                },
                Err(e) => {
                    Decision::deny("conflict", format!("{what}: TLS cannot be injected: {e}"))
                }
            }
        }
        Endpoint::Validate => {
            let findings = check(object, kind, &ready.settings, &policy.constraints);
            if findings.is_empty() {
                return Decision::allow("conformant");
            }
            let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
            if mode == Mode::Enforced {
                Decision::deny(
                    "tls-incomplete",
                    format!("{what}: TLS is incomplete: {}; {FIX_HINT}", list.join("; ")),
                )
            } else {
                let mut d = Decision::allow("tls-incomplete-warned");
                d.warnings = list
                    .into_iter()
                    .map(|f| format!("TLS incomplete: {f}"))
                    .collect();
                d
            }
        }
    }
}

/// `Pod in namespace vespa (tls.vespa.ai/injection=enabled)`, the subject of
/// messages; written only when a message is.
struct What<'a>(Kind, &'a str, Mode);

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let What(kind, namespace, mode) = self;
        write!(
            f,
            "{} in namespace {namespace} ({INJECTION_LABEL}={})",
            kind.as_str(),
            mode.as_str()
        )
    }
}

/// Protect `tls.vespa.ai/injection=enforced`: only label admins may remove or
/// downgrade it. Creating namespaces is never blocked.
fn decide_namespace(
    endpoint: Endpoint,
    r: &Request,
    policy: &ClusterPolicy,
    object: &Value,
) -> Decision {
    if endpoint != Endpoint::Validate || r.operation != "UPDATE" {
        return Decision::allow("namespace-ignored");
    }
    let label = |o: Option<&Value>| {
        o.and_then(|o| crate::target::pointer(o, "/metadata/labels"))
            .and_then(|l| crate::target::field(l, INJECTION_LABEL))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let before = label(r.old_object.as_ref());
    let after = label(Some(object));
    if before.as_deref() != Some("enforced") || after.as_deref() == Some("enforced") {
        return Decision::allow("namespace-label-kept");
    }
    if policy.is_label_admin(&r.user_info.username, &r.user_info.groups) {
        return Decision::allow("namespace-label-admin");
    }
    Decision::deny(
        "namespace-downgrade",
        format!(
            "user {:?} may not change {INJECTION_LABEL} from \"enforced\" to {} on namespace {:?}; only the cluster policy's labelAdmins may",
            r.user_info.username,
            after.map_or_else(|| "nothing (removed)".to_string(), |a| format!("{a:?}")),
            r.name.as_deref().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(request: Value) -> Review {
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request,
        }))
        .unwrap_or_default();
        parse_review(&body).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_patch_encoder_writes_what_the_scalar_one_does() {
        let scalar = base64::engine::general_purpose::STANDARD;
        // Past the AVX2 encoder's 128-byte threshold and every tail length.
        let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for len in 0..bytes.len() {
            let input = &bytes[..len];
            assert_eq!(
                PATCH_BASE64.encode(input),
                scalar.encode(input),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn the_answer_is_written_into_one_buffer_without_growing_it() {
        let r = review(json!({
            "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
        }));
        let mut patched = Decision::allow("injected");
        patched.patch = vec![crate::patch::Operation::add(
            "/metadata/annotations".into(),
            crate::patch::PatchValue::Built(json!({"tls.vespa.ai/injected": "x".repeat(2000)})),
        )];
        let answers = [
            Decision::allow("not-vespa"),
            patched,
            Decision::deny("opt-out-enforced", "m".repeat(300)),
        ];
        for d in &answers {
            let out = r.respond(d);
            let patch_len = (!d.patch.is_empty()).then(|| {
                let mut json = Vec::new();
                crate::patch::write_json(&d.patch, &mut json);
                json.len().div_ceil(3) * 4
            });
            let reserved = r.response_capacity(d, patch_len.unwrap_or(0));
            assert_eq!(out.capacity(), reserved, "{}: grown", d.reason);
            assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn object_names_for_logs() {
        let pod = |name: Option<&str>, namespace: Option<&str>, generate: Option<&str>| {
            let mut r = json!({
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {}},
            });
            if let Some(n) = name {
                r["name"] = json!(n);
            }
            if let Some(ns) = namespace {
                r["namespace"] = json!(ns);
            }
            if let Some(g) = generate {
                r["object"]["metadata"]["generateName"] = json!(g);
            }
            review(r).object_name().to_string()
        };
        assert_eq!(pod(Some("app-0"), Some("vespa"), None), "vespa/app-0");
        assert_eq!(
            pod(Some("app-0"), Some("vespa"), Some("app-")),
            "vespa/app-0"
        );
        assert_eq!(pod(Some(""), Some("vespa"), Some("app-")), "vespa/app-*");
        assert_eq!(pod(None, Some("vespa"), Some("app-")), "vespa/app-*");
        assert_eq!(pod(None, Some("vespa"), None), "vespa/");
        assert_eq!(pod(Some("app-0"), Some(""), None), "app-0");
        assert_eq!(pod(None, None, Some("app-")), "app-*");
        assert_eq!(pod(None, None, None), "");
    }
}
