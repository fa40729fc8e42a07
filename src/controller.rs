//! The controller: for every namespace labelled `enabled`/`enforced` it creates
//! and keeps in place the TLS ConfigMap(s) injected pods mount, and with
//! `tls.vespa.ai/bootstrap-ca: "true"` the namespace-local CA chain of the seed's
//! Steps 1–2 (see [`desired`] for exactly what).
//!
//! - A kube-rs [`Controller`] over Namespace metadata; ConfigMaps labelled
//!   `app.kubernetes.io/managed-by: vespa-tls-webhook` are watched (metadata only)
//!   and mapped back to their namespace, so an edit or deletion is repaired within
//!   seconds. A change of the cluster policy reconciles every namespace. Each
//!   namespace is also re-checked every [`RESYNC`] (that is what restores
//!   cert-manager objects, which are not watched: their CRDs may be absent).
//! - Missing objects are created; ours (labelled) that drifted are restored by
//!   server-side apply (field manager [`FIELD_MANAGER`], forced). A same-named
//!   object *not* labelled as ours is never changed: when its content differs a
//!   Warning event says so. Nothing is ever deleted.
//! - Every action and failure is a Kubernetes Event (`events.k8s.io/v1`) about the
//!   Namespace, stored in that namespace (`kubectl get events -n NS`). Errors are
//!   retried with exponential backoff (1 s … 5 min).
//! - Only the leader of the Lease [`LEASE_NAME`] in the webhook's namespace
//!   reconciles (see [`crate::leader`]); replicas stand by.

pub mod desired;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::leader::{LeaderElector, Timing};
use crate::policy::{ClusterPolicy, NamespaceMeta};
use crate::stdio::eprint_line;
use desired::{
    DesiredError, DesiredObject, MANAGED_BY_LABEL, MANAGED_SELECTOR, ObjectKind,
    content_differences, is_managed, label_differences,
};

/// Name of the Lease the replicas elect their leader with.
pub const LEASE_NAME: &str = "vespa-tls-webhook-controller";
/// Field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "vespa-tls-webhook-controller";
/// `reportingController` of its events.
pub const REPORTING_CONTROLLER: &str = "tls.vespa.ai/controller";
/// How often every namespace is re-checked without a watch event.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How often the policy handle is checked for a reload.
pub const POLICY_POLL: Duration = Duration::from_secs(2);
/// Longest retry delay after errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Lease namespace when neither `--webhook-namespace` nor `POD_NAMESPACE` is set.
pub const DEFAULT_LEASE_NAMESPACE: &str = "vespa-tls-webhook";

/// The cluster policy in force now (it may be reloaded while the controller runs).
pub type CurrentPolicy = Arc<dyn Fn() -> Arc<ClusterPolicy> + Send + Sync>;

/// Leader-election flags, shared by `serve --controller` and `controller`.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaseArgs {
    /// Seconds a leader's Lease stays valid without renewal; a standby replica takes
    /// over that long after the leader stops renewing (renewal deadline 2/3 of it).
    #[arg(long, env = "VTW_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration_secs: u64,
}

impl LeaseArgs {
    /// The election timing these flags ask for.
    pub fn timing(&self) -> Timing {
        Timing::for_lease_duration(Duration::from_secs(self.lease_duration_secs))
    }
}

/// `controller` flags: the controller alone, without the HTTPS webhook.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig (default: $KUBECONFIG or ~/.kube/config, then in-cluster).
    #[arg(long, env = "VTW_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Cluster policy (YAML); reloaded when it changes. Built-in policy when absent.
    #[arg(long, env = "VTW_POLICY")]
    pub policy: Option<PathBuf>,
    /// The webhook's own namespace: holds the Lease, and is always excluded.
    #[arg(long, env = "POD_NAMESPACE")]
    pub webhook_namespace: Option<String>,
    /// Leader election.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Log format.
    #[arg(long, env = "VTW_LOG_FORMAT", default_value = "json")]
    pub log_format: crate::cli::LogFormat,
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// `--kubeconfig` could not be read or used.
    #[error("--kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No cluster configuration was found.
    #[error("no cluster configuration ({0}); run in a pod or pass --kubeconfig FILE")]
    NoCluster(String),
    /// The client could not be built.
    #[error("kubernetes client: {0}")]
    Client(String),
}

/// A client from `--kubeconfig FILE`, else `$KUBECONFIG` or `~/.kube/config`, else
/// in-cluster (kube's `Config::infer`).
pub async fn kube_client(kubeconfig: Option<&Path>) -> Result<Client, ControllerError> {
    let config = match kubeconfig {
        Some(path) => {
            let bad = |reason: String| ControllerError::Kubeconfig {
                path: path.to_path_buf(),
                reason,
            };
            let kc = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| bad(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ControllerError::NoCluster(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| ControllerError::Client(e.to_string()))
}

/// This replica's identity in the election: the pod name (`HOSTNAME`) and a
/// random suffix, so a restarted pod is a new candidate.
pub fn identity() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vespa-tls-webhook".to_string());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    let host: String = host.chars().take(100).collect();
    format!("{host}-{:08x}", h.finish() as u32)
}

/// Everything [`run`] needs.
#[derive(Clone)]
pub struct ControllerConfig {
    /// The cluster.
    pub client: Client,
    /// The policy in force.
    pub policy: CurrentPolicy,
    /// Namespace of the Lease (the webhook's own).
    pub lease_namespace: String,
    /// This replica's identity (see [`identity`]).
    pub identity: String,
    /// Election timing.
    pub timing: Timing,
}

/// Take part in the leader election until `shutdown`; while leading, reconcile.
pub async fn run(config: ControllerConfig, shutdown: CancellationToken) {
    let elector = LeaderElector::new(
        config.client.clone(),
        &config.lease_namespace,
        LEASE_NAME,
        &config.identity,
        config.timing,
    );
    tracing::info!(
        identity = %config.identity,
        lease = %format!("{}/{LEASE_NAME}", config.lease_namespace),
        "controller: joining the leader election"
    );
    elector
        .run(shutdown, move |leading| {
            lead(
                config.client.clone(),
                config.policy.clone(),
                config.identity.clone(),
                leading,
            )
        })
        .await;
}

/// Run the controller until `leading` is cancelled (restarting it if it ends).
async fn lead(client: Client, policy: CurrentPolicy, identity: String, leading: CancellationToken) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: REPORTING_CONTROLLER.into(),
            instance: Some(identity),
        },
    );
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        policy: policy.clone(),
        recorder,
        failures: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashSet::new()),
    });
    while !leading.is_cancelled() {
        let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let config_maps: Api<PartialObjectMeta<ConfigMap>> = Api::all(client.clone());
        let stop = leading.clone();
        Controller::new(namespaces, watcher::Config::default())
            .watches(
                config_maps,
                watcher::Config::default().labels(MANAGED_SELECTOR),
                |cm| cm.namespace().map(|ns| ObjectRef::new(&ns)),
            )
            .reconcile_all_on(policy_changes(policy.clone()))
            .graceful_shutdown_on(async move { stop.cancelled().await })
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok(_) => {}
                    Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
                        tracing::warn!(namespace = %obj.name, error = %e, "reconcile failed; retrying with backoff");
                    }
                    Err(kube::runtime::controller::Error::ObjectNotFound(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "controller"),
                }
            })
            .await;
        if !leading.is_cancelled() {
            tracing::warn!("controller stream ended; restarting it");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One item every time the policy handle returns a different policy.
fn policy_changes(policy: CurrentPolicy) -> impl futures_util::Stream<Item = ()> + Send {
    let initial = policy();
    futures_util::stream::unfold(initial, move |last| {
        let policy = policy.clone();
        async move {
            loop {
                tokio::time::sleep(POLICY_POLL).await;
                let now = policy();
                if !Arc::ptr_eq(&now, &last) {
                    tracing::info!("cluster policy changed: reconciling every namespace");
                    return Some(((), now));
                }
            }
        }
    })
}

struct Ctx {
    client: Client,
    policy: CurrentPolicy,
    recorder: Recorder,
    /// Consecutive failures per namespace, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Objects this process has seen in place (to say "recreated" after a deletion).
    seen: Mutex<HashSet<(String, ObjectKind, String)>>,
}

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// An API call failed.
    #[error("{action} {what} in namespace {namespace}: {source}")]
    Api {
        /// What was attempted (`read`, `create`, `restore`).
        action: &'static str,
        /// `Kind name`.
        what: String,
        /// Namespace.
        namespace: String,
        /// The error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The cert-manager API is not served.
    #[error(
        "cannot create {what} in namespace {namespace}: the cert-manager.io/v1 API is not served (are cert-manager and its CRDs installed?)"
    )]
    CertManagerMissing {
        /// `Kind name`.
        what: String,
        /// Namespace.
        namespace: String,
    },
    /// A desired object is not valid JSON for the client (a bug).
    #[error("{what}: {reason}")]
    Encode {
        /// `Kind name`.
        what: String,
        /// The error.
        reason: String,
    },
    /// Several objects failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ReconcileError>),
}

/// What happened to one desired object.
#[derive(Debug)]
enum Outcome {
    Created {
        recreated: bool,
    },
    Restored(Vec<String>),
    Unchanged,
    /// Exists, not ours, content as needed: fine.
    ForeignCompatible,
    /// Exists, not ours, content differs: left alone.
    Foreign(Vec<String>),
}

fn meta_of(ns: &PartialObjectMeta<Namespace>) -> NamespaceMeta {
    NamespaceMeta {
        name: ns.name_any(),
        labels: ns.metadata.labels.clone().unwrap_or_default(),
        annotations: ns.metadata.annotations.clone().unwrap_or_default(),
    }
}

fn api_resource(kind: ObjectKind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            kind.group(),
            kind.api_version().rsplit('/').next().unwrap_or("v1"),
            kind.kind(),
        ),
        kind.plural(),
    )
}

/// The Namespace as the subject of events; the event is stored in the namespace
/// itself so that its users see it.
fn namespace_ref(ns: &PartialObjectMeta<Namespace>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Namespace".into()),
        name: Some(ns.name_any()),
        namespace: Some(ns.name_any()),
        uid: ns.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

fn object_ref(obj: &DesiredObject) -> ObjectReference {
    ObjectReference {
        api_version: Some(obj.kind.api_version().into()),
        kind: Some(obj.kind.kind().into()),
        name: Some(obj.name.clone()),
        namespace: Some(obj.namespace.clone()),
        ..ObjectReference::default()
    }
}

/// Event notes are limited to 1 kB.
fn note(text: String) -> Option<String> {
    if text.len() <= 1000 {
        return Some(text);
    }
    let mut end = 997;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}...", &text[..end]))
}

impl Ctx {
    async fn event(
        &self,
        ns: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        text: String,
        related: Option<ObjectReference>,
    ) {
        match type_ {
            EventType::Normal => tracing::info!(namespace = ?ns.name, reason, "{text}"),
            EventType::Warning => tracing::warn!(namespace = ?ns.name, reason, "{text}"),
        }
        let event = Event {
            type_,
            reason: reason.into(),
            note: note(text),
            action: action.into(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&event, ns).await {
            tracing::warn!(namespace = ?ns.name, error = %e, "cannot publish event");
        }
    }

    async fn ensure(&self, obj: &DesiredObject) -> Result<Outcome, ReconcileError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &obj.namespace, &api_resource(obj.kind));
        let fail = |action: &'static str, e: kube::Error| ReconcileError::Api {
            action,
            what: obj.display(),
            namespace: obj.namespace.clone(),
            source: Box::new(e),
        };
        let key = (obj.namespace.clone(), obj.kind, obj.name.clone());
        let existing = match api.get_opt(&obj.name).await {
            Ok(found) => found,
            // A missing CRD answers 404 to a GET of a name too; the create says which.
            Err(e) => return Err(fail("read", e)),
        };
        let Some(existing) = existing else {
            let dynamic: DynamicObject =
                serde_json::from_value(obj.body.clone()).map_err(|e| ReconcileError::Encode {
                    what: obj.display(),
                    reason: e.to_string(),
                })?;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            return match api.create(&params, &dynamic).await {
                Ok(_) => {
                    let recreated = !self
                        .seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key);
                    Ok(Outcome::Created { recreated })
                }
                Err(kube::Error::Api(s)) if s.code == 404 && obj.kind != ObjectKind::ConfigMap => {
                    Err(ReconcileError::CertManagerMissing {
                        what: obj.display(),
                        namespace: obj.namespace.clone(),
                    })
                }
                Err(e) => Err(fail("create", e)),
            };
        };
        let existing = serde_json::to_value(&existing).map_err(|e| ReconcileError::Encode {
            what: obj.display(),
            reason: e.to_string(),
        })?;
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
        let content = content_differences(&existing, &obj.body);
        if !is_managed(&existing) {
            return Ok(if content.is_empty() {
                Outcome::ForeignCompatible
            } else {
                Outcome::Foreign(content)
            });
        }
        let mut drift = content;
        drift.extend(label_differences(&existing, &obj.body));
        if drift.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        api.patch(
            &obj.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&obj.body),
        )
        .await
        .map_err(|e| fail("restore", e))?;
        Ok(Outcome::Restored(drift))
    }
}

async fn reconcile(
    ns: Arc<PartialObjectMeta<Namespace>>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let name = ns.name_any();
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let meta = meta_of(&ns);
    let policy = (ctx.policy)();
    let subject = namespace_ref(&ns);
    let plan = match desired::desired(&meta, &policy) {
        Ok(plan) => plan,
        Err(e) => {
            let reason = match e {
                DesiredError::InvalidLabel(_) => "InvalidLabel",
                DesiredError::InvalidSettings(_) => "InvalidSettings",
            };
            ctx.event(
                &subject,
                EventType::Warning,
                reason,
                "Plan",
                format!("nothing created or repaired: {e}"),
                None,
            )
            .await;
            forget_failures(&ctx, &name);
            // Fixing the namespace triggers a reconcile; the resync is a safety net.
            return Ok(Action::requeue(RESYNC));
        }
    };
    if plan.objects.is_empty() && plan.warnings.is_empty() {
        return Ok(Action::await_change());
    }
    for w in &plan.warnings {
        ctx.event(
            &subject,
            EventType::Warning,
            "BootstrapRefused",
            "Plan",
            w.clone(),
            None,
        )
        .await;
    }
    let mut errors = Vec::new();
    for obj in &plan.objects {
        let what = obj.display();
        match ctx.ensure(obj).await {
            Ok(Outcome::Created { recreated }) => {
                let (reason, verb) = if recreated {
                    ("Recreated", "recreated (it had been deleted)")
                } else {
                    ("Created", "created")
                };
                ctx.event(
                    &subject,
                    EventType::Normal,
                    reason,
                    "Create",
                    format!("{what} {verb}: {}", obj.purpose),
                    Some(object_ref(obj)),
                )
                .await;
            }
            Ok(Outcome::Restored(drift)) => {
                ctx.event(
                    &subject,
                    EventType::Normal,
                    "Restored",
                    "Update",
                    format!("{what} restored ({}): {}", drift.join(", "), obj.purpose),
                    Some(object_ref(obj)),
                )
                .await;
            }
            Ok(Outcome::Unchanged) => {}
            Ok(Outcome::ForeignCompatible) => {
                tracing::debug!(namespace = %name, object = %what, "exists, not managed by us, content as needed");
            }
            Ok(Outcome::Foreign(diffs)) => {
                ctx.event(
                    &subject,
                    EventType::Warning,
                    "NotManaged",
                    "Skip",
                    format!(
                        "{what} exists but is not labelled {MANAGED_BY_LABEL}={}, so it is left unchanged; it differs from what injected pods need ({}): {}. Fix it, or delete it and the controller recreates it",
                        desired::MANAGED_BY,
                        diffs.join(", "),
                        obj.purpose
                    ),
                    Some(object_ref(obj)),
                )
                .await;
            }
            Err(e) => {
                let reason = match e {
                    ReconcileError::CertManagerMissing { .. } => "CertManagerMissing",
                    _ => "Failed",
                };
                ctx.event(
                    &subject,
                    EventType::Warning,
                    reason,
                    "Reconcile",
                    e.to_string(),
                    Some(object_ref(obj)),
                )
                .await;
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        forget_failures(&ctx, &name);
        Ok(Action::requeue(RESYNC))
    } else if errors.len() == 1 {
        Err(errors.remove(0))
    } else {
        Err(ReconcileError::Several(errors))
    }
}

fn forget_failures(ctx: &Ctx, ns: &str) {
    ctx.failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(ns);
}

/// Retry delay after `failures` consecutive failures: 1 s, 2 s, 4 s, … 5 min.
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

fn error_policy(
    ns: Arc<PartialObjectMeta<Namespace>>,
    _error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    let mut failures = ctx.failures.lock().unwrap_or_else(PoisonError::into_inner);
    let n = failures.entry(ns.name_any()).or_insert(0);
    *n = n.saturating_add(1);
    Action::requeue(backoff(*n))
}

/// `vespa-tls-webhook controller`: the controller alone, until SIGTERM/SIGINT.
pub fn run_cli(args: ControllerArgs) -> ExitCode {
    let _log = match crate::logging::init(args.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprint_line(format_args!(
                "vespa-tls-webhook controller: cannot start the logging thread: {e}"
            ));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprint_line(format_args!(
                "vespa-tls-webhook controller: cannot start the async runtime: {e}"
            ));
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(standalone(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint_line(format_args!("vespa-tls-webhook controller: {e}"));
            ExitCode::from(2)
        }
    }
}

async fn standalone(args: ControllerArgs) -> Result<(), String> {
    let webhook_namespace = args.webhook_namespace.filter(|n| !n.is_empty());
    let watch = crate::policy_watch::PolicyWatch::load(crate::policy_watch::PolicySource {
        path: args.policy.clone(),
        webhook_namespace: webhook_namespace.clone(),
    })
    .map_err(|e| e.to_string())?;
    let mut poller = crate::file_watch::Poller::new();
    watch.watch_file(&mut poller, Arc::new(crate::metrics::Metrics::new()));
    let _reloader = poller.spawn(Duration::from_secs(2));
    let handle = watch.handle();
    let client = kube_client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let config = ControllerConfig {
        client,
        policy: Arc::new(move || handle.current()),
        lease_namespace: webhook_namespace.unwrap_or_else(|| DEFAULT_LEASE_NAMESPACE.into()),
        identity: identity(),
        timing: args.lease.timing(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(config, shutdown.clone()));
    let signal = shutdown_signal().await.map_err(|e| e.to_string())?;
    tracing::info!(signal, "controller: shutting down");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    Ok(())
}

#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("Ctrl-C")
}

/// Whether a JSON object carries a non-empty `metadata.deletionTimestamp`.
pub fn is_terminating(obj: &Value) -> bool {
    crate::target::pointer(obj, "/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn identity_is_the_host_name_with_a_random_suffix() {
        let a = identity();
        let b = identity();
        assert_ne!(a, b, "two candidates in one process must differ");
        let (_, suffix) = a.rsplit_once('-').unwrap();
        assert_eq!(suffix.len(), 8);
        assert!(
            a.len() <= 128,
            "reportingInstance is limited to 128 characters"
        );
    }

    #[test]
    fn api_resources_name_the_right_endpoints() {
        let cm = api_resource(ObjectKind::ConfigMap);
        assert_eq!(
            (cm.group.as_str(), cm.version.as_str(), cm.plural.as_str()),
            ("", "v1", "configmaps")
        );
        assert_eq!(cm.api_version, "v1");
        let issuer = api_resource(ObjectKind::Issuer);
        assert_eq!(issuer.api_version, "cert-manager.io/v1");
        assert_eq!(issuer.plural, "issuers");
        assert_eq!(api_resource(ObjectKind::Certificate).kind, "Certificate");
    }

    #[tokio::test]
    async fn a_reloaded_policy_triggers_one_reconcile_of_everything() {
        let current = Arc::new(Mutex::new(Arc::new(ClusterPolicy::default())));
        let handle = current.clone();
        let policy: CurrentPolicy = Arc::new(move || handle.lock().unwrap().clone());
        let mut changes = Box::pin(policy_changes(policy));
        // Nothing while the policy stays the same object.
        let quiet =
            tokio::time::timeout(POLICY_POLL + Duration::from_millis(500), changes.next()).await;
        assert!(quiet.is_err(), "no reload, no trigger");
        *current.lock().unwrap() = Arc::new(ClusterPolicy::default());
        let fired = tokio::time::timeout(POLICY_POLL * 2, changes.next()).await;
        assert_eq!(fired.unwrap(), Some(()));
    }

    #[test]
    fn events_are_about_the_namespace_and_stored_in_it() {
        let mut ns = PartialObjectMeta::<Namespace>::default();
        ns.metadata.name = Some("team-a".into());
        ns.metadata.uid = Some("u1".into());
        let r = namespace_ref(&ns);
        assert_eq!(r.kind.as_deref(), Some("Namespace"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(
            (r.name.as_deref(), r.namespace.as_deref()),
            (Some("team-a"), Some("team-a"))
        );
        assert_eq!(r.uid.as_deref(), Some("u1"));
    }

    #[test]
    fn notes_fit_the_events_api_limit() {
        assert_eq!(note("short".into()).as_deref(), Some("short"));
        let long = note("é".repeat(1000)).unwrap();
        assert!(long.len() <= 1000 && long.ends_with("..."));
    }
}
