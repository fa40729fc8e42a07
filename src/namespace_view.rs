//! The namespace view: a namespace's labels and annotations, read without an API
//! call on the request path.
//!
//! Two sources:
//! - **cluster**: a kube-rs reflector over Namespace *metadata* (list + watch, with
//!   backoff, recovering when the apiserver restarts). Ready after the first
//!   complete list. A name not in the cache (a namespace created a moment ago) gets
//!   one live `GET`; not found is `Ok(None)`, an API error is `Err` (the caller
//!   fails closed).
//!
//!   Staleness: every watch event and every listed object counts as hearing from
//!   the apiserver. When a watch has been quiet for half the staleness bound it is
//!   replaced by a fresh list + watch (a namespace LIST, metadata only, from the
//!   apiserver's watch cache), so a healthy but quiet cluster keeps the view fresh,
//!   and a watch that is broken without saying so (or stuck retrying) is restarted.
//!   When nothing was heard for longer than the bound, [`NamespaceView::check_fresh`]
//!   fails (and with it `/readyz`); lookups keep using the cache meanwhile. (The
//!   kube client retries 429/503/504 answers itself with growing delays; the relist
//!   timer cancels such a list and starts over, so a recovered apiserver is seen
//!   within half the bound.)
//! - **static**: a `--namespaces FILE` (see [`crate::namespaces`]), reloaded when it
//!   changes; always ready. A name not in the file is `Ok(None)`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::sleep_until;

use crate::file_watch::{self, Fingerprint, Poller, Tasks};
use crate::metrics::Metrics;
use crate::policy::NamespaceMeta;

/// How long the live `GET` for a namespace missing from the cache may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Default staleness bound (`--namespace-stale-after-secs`).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// Where namespaces come from.
#[derive(Clone)]
pub enum NamespaceSource {
    /// The cluster: `--kubeconfig FILE`, else in-cluster, else `~/.kube/config`.
    Cluster {
        /// `--kubeconfig`.
        kubeconfig: Option<PathBuf>,
    },
    /// The cluster, through a client built by the caller.
    Client(kube::Client),
    /// `--namespaces FILE`, reloaded when it changes.
    File(PathBuf),
    /// A fixed list (tests).
    Fixed(Vec<NamespaceMeta>),
}

impl fmt::Debug for NamespaceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamespaceSource::Cluster { kubeconfig } => f
                .debug_struct("Cluster")
                .field("kubeconfig", kubeconfig)
                .finish(),
            NamespaceSource::Client(_) => f.write_str("Client"),
            NamespaceSource::File(p) => f.debug_tuple("File").field(p).finish(),
            NamespaceSource::Fixed(n) => f.debug_tuple("Fixed").field(&n.len()).finish(),
        }
    }
}

/// Why the namespace view could not start.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceViewError {
    /// `--kubeconfig` could not be read or used.
    #[error("--kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No cluster configuration was found.
    #[error(
        "no cluster to read namespaces from ({0}); run in a pod, pass --kubeconfig FILE, or --namespaces FILE"
    )]
    NoCluster(String),
    /// The client could not be built.
    #[error("kubernetes client: {0}")]
    Client(String),
    /// `--namespaces` could not be read.
    #[error("--namespaces {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// `--namespaces` is not valid.
    #[error("--namespaces {}: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: crate::namespaces::NamespacesFileError,
    },
}

/// A namespace could not be looked up (the webhook fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The apiserver answered with an error.
    #[error("namespace {name}: {reason}")]
    Api {
        /// The namespace.
        name: String,
        /// The error.
        reason: String,
    },
    /// The apiserver did not answer in time.
    #[error("namespace {name}: no answer from the apiserver within {LOOKUP_TIMEOUT:?}")]
    Timeout {
        /// The namespace.
        name: String,
    },
}

/// Namespaces from the cluster.
pub struct ClusterNamespaces {
    store: Store<PartialObjectMeta<Namespace>>,
    api: Api<PartialObjectMeta<Namespace>>,
    ready: Arc<AtomicBool>,
    freshness: Arc<Freshness>,
    /// Each namespace's policy view, beside the stored object it was made from:
    /// made again only when the watch replaced that object, so a review costs
    /// no copy of the namespace's labels and annotations.
    views: RwLock<HashMap<String, (Stored, Shared)>>,
}

/// A namespace as the reflector stores it.
type Stored = Arc<PartialObjectMeta<Namespace>>;

/// A namespace as the policy reads it, shared by the reviews in it.
type Shared = Arc<NamespaceMeta>;

/// The most policy views [`ClusterNamespaces`] keeps (all of them are dropped
/// when it is reached, as the ready memo does, and made again as needed).
const VIEWS_CAPACITY: usize = 4096;

/// When the watch last delivered something, and the last error since.
#[derive(Debug)]
struct Freshness {
    /// Time base for `last_ok_ms`.
    base: Instant,
    /// Milliseconds after `base` of the last watch event or complete list.
    last_ok_ms: AtomicU64,
    /// The last watch error after `last_ok_ms`, if any.
    last_error: Mutex<Option<String>>,
    stale_after: Duration,
}

impl Freshness {
    fn new(stale_after: Duration) -> Self {
        Freshness {
            base: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stale_after,
        }
    }

    fn last_ok(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ok_ms.load(Ordering::Acquire))
    }

    fn mark_ok(&self, metrics: &Metrics) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ok_ms.store(ms, Ordering::Release);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        metrics.set_namespace_view_last_success(unix);
    }

    fn mark_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// `Err(reason)` when nothing was heard for longer than the bound.
    fn check(&self, now: Instant) -> Result<(), String> {
        let quiet = now.saturating_duration_since(self.last_ok());
        if quiet <= self.stale_after {
            return Ok(());
        }
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Err(format!(
            "the namespace view is stale: no watch event or list from the apiserver for {} s (bound {} s){}",
            quiet.as_secs(),
            self.stale_after.as_secs(),
            error.map_or_else(
                || "; waiting for the apiserver to answer a list".to_string(),
                |e| format!("; last error: {e}")
            )
        ))
    }
}

/// Namespaces from a file or a fixed list.
#[derive(Debug, Clone)]
pub struct StaticNamespaces {
    by_name: Arc<RwLock<Arc<HashMap<String, Shared>>>>,
}

/// The namespace view; cheap to clone.
#[derive(Clone)]
pub enum NamespaceView {
    /// Reflected from the cluster.
    Cluster(Arc<ClusterNamespaces>),
    /// From a file or list.
    Static(StaticNamespaces),
}

impl fmt::Debug for NamespaceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamespaceView::Cluster(c) => f
                .debug_struct("Cluster")
                .field("ready", &c.ready.load(Ordering::Relaxed))
                .field("cached", &c.store.len())
                .finish(),
            NamespaceView::Static(s) => f.debug_tuple("Static").field(&s.len()).finish(),
        }
    }
}

/// The namespace as the policy reads it ([`NamespaceMeta::policy_view`]).
fn meta_of(name: &str, m: &ObjectMeta) -> NamespaceMeta {
    NamespaceMeta::policy_view(
        m.name.as_deref().unwrap_or(name),
        m.labels.iter().flatten(),
        m.annotations.iter().flatten(),
    )
}

/// Whether `name` can be a namespace (RFC 1123 label): anything else is not
/// looked up in the cluster.
fn is_namespace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl StaticNamespaces {
    fn new(namespaces: Vec<NamespaceMeta>) -> Self {
        StaticNamespaces {
            by_name: Arc::new(RwLock::new(Arc::new(index(namespaces)))),
        }
    }

    fn get(&self, name: &str) -> Option<Arc<NamespaceMeta>> {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn len(&self) -> usize {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn replace(&self, namespaces: Vec<NamespaceMeta>) {
        *self.by_name.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(index(namespaces));
    }
}

/// The namespaces by name, each as the policy reads it (a review shares one).
fn index(namespaces: Vec<NamespaceMeta>) -> HashMap<String, Arc<NamespaceMeta>> {
    namespaces
        .iter()
        .map(|n| {
            let view = NamespaceMeta::policy_view(&n.name, &n.labels, &n.annotations);
            (view.name.clone(), Arc::new(view))
        })
        .collect()
}

fn parse_file(bytes: &[u8], path: &Path) -> Result<Vec<NamespaceMeta>, NamespaceViewError> {
    let invalid = |error| NamespaceViewError::Invalid {
        path: path.to_path_buf(),
        error,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(crate::namespaces::NamespacesFileError::Parse(format!(
            "not UTF-8: {e}"
        )))
    })?;
    crate::namespaces::parse(text).map_err(invalid)
}

impl ClusterNamespaces {
    async fn lookup(&self, name: &str) -> Result<Option<Arc<NamespaceMeta>>, LookupError> {
        if let Some(ns) = self.store.get(&ObjectRef::new(name)) {
            return Ok(Some(self.view_of(name, ns)));
        }
        if !is_namespace_name(name) {
            return Ok(None);
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.api.get_opt(name)).await {
            Ok(Ok(found)) => Ok(found.map(|ns| Arc::new(meta_of(name, &ns.metadata)))),
            Ok(Err(e)) => Err(LookupError::Api {
                name: name.to_string(),
                reason: e.to_string(),
            }),
            Err(_) => Err(LookupError::Timeout {
                name: name.to_string(),
            }),
        }
    }

    /// The policy view of `ns`, the stored object of namespace `name`.
    fn view_of(&self, name: &str, ns: Stored) -> Shared {
        let views = self.views.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((from, view)) = views.get(name)
            && Arc::ptr_eq(from, &ns)
        {
            return view.clone();
        }
        drop(views);
        let view = Arc::new(meta_of(name, &ns.metadata));
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        if views.len() >= VIEWS_CAPACITY && !views.contains_key(name) {
            views.clear();
        }
        views.insert(name.to_string(), (ns, view.clone()));
        view
    }

    fn start(
        client: kube::Client,
        stale_after: Duration,
        metrics: Arc<Metrics>,
    ) -> (ClusterNamespaces, Tasks) {
        // `Api<PartialObjectMeta<_>>` lists, watches and gets metadata only.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let (store, writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let ready = Arc::new(AtomicBool::new(false));
        let freshness = Arc::new(Freshness::new(stale_after));
        let task = tokio::spawn(reflect(
            api.clone(),
            writer,
            ready.clone(),
            freshness.clone(),
            metrics,
        ));
        let mut tasks = Tasks::new();
        tasks.push(task);
        let view = ClusterNamespaces {
            store,
            api,
            ready,
            freshness,
            views: RwLock::default(),
        };
        (view, tasks)
    }
}

/// Keep `writer` up to date: list + watch with backoff; a watch stream that has
/// delivered nothing for half the staleness bound is replaced by a new one (which
/// lists first). Runs until aborted.
async fn reflect(
    api: Api<PartialObjectMeta<Namespace>>,
    mut writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    ready: Arc<AtomicBool>,
    freshness: Arc<Freshness>,
    metrics: Arc<Metrics>,
) {
    let relist_after = (freshness.stale_after / 2).max(Duration::from_millis(500));
    loop {
        let started = Instant::now();
        let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            let quiet_until = freshness.last_ok().max(started) + relist_after;
            let event = tokio::select! {
                event = stream.next() => event,
                _ = sleep_until(quiet_until.into()) => {
                    tracing::debug!(quiet = ?relist_after, "no namespace event for a while; listing again");
                    break;
                }
            };
            match event {
                Some(Ok(event)) => {
                    writer.apply_watcher_event(&event);
                    // `Init` is emitted before the list is even sent: it says
                    // nothing about the apiserver. Every other event came from it.
                    if !matches!(event, watcher::Event::Init) {
                        freshness.mark_ok(&metrics);
                    }
                    if matches!(event, watcher::Event::InitDone) {
                        if !ready.swap(true, Ordering::Release) {
                            tracing::info!("namespace view synced");
                        }
                        metrics.set_namespace_view_synced(true);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "namespace watch failed; retrying with backoff");
                    freshness.mark_error(e.to_string());
                }
                None => {
                    tracing::warn!("namespace watch ended; starting a new one");
                    break;
                }
            }
        }
    }
}

async fn cluster_client(kubeconfig: Option<&Path>) -> Result<kube::Client, NamespaceViewError> {
    let config = match kubeconfig {
        Some(path) => {
            let bad = |reason: String| NamespaceViewError::Kubeconfig {
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
            .map_err(|e| NamespaceViewError::NoCluster(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| NamespaceViewError::Client(e.to_string()))
}

impl NamespaceView {
    /// A view over a fixed list (always ready).
    pub fn fixed(namespaces: Vec<NamespaceMeta>) -> NamespaceView {
        NamespaceView::Static(StaticNamespaces::new(namespaces))
    }

    /// Start the view: build the client and watcher, or read the file and watch
    /// it with `poller`. The returned tasks (and the poller's) keep it up to date.
    pub async fn start(
        source: NamespaceSource,
        poller: &mut Poller,
        stale_after: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<(NamespaceView, Tasks), NamespaceViewError> {
        match source {
            NamespaceSource::Fixed(list) => {
                metrics.set_namespace_view_synced(true);
                Ok((NamespaceView::fixed(list), Tasks::new()))
            }
            NamespaceSource::File(path) => {
                let (view, fingerprint) = Self::read_file(&path)?;
                metrics.set_namespace_view_synced(true);
                Self::watch_file(&view, path, fingerprint, poller, metrics);
                Ok((NamespaceView::Static(view), Tasks::new()))
            }
            NamespaceSource::Cluster { kubeconfig } => {
                let client = cluster_client(kubeconfig.as_deref()).await?;
                let (view, tasks) = ClusterNamespaces::start(client, stale_after, metrics);
                Ok((NamespaceView::Cluster(Arc::new(view)), tasks))
            }
            NamespaceSource::Client(client) => {
                let (view, tasks) = ClusterNamespaces::start(client, stale_after, metrics);
                Ok((NamespaceView::Cluster(Arc::new(view)), tasks))
            }
        }
    }

    fn read_file(path: &Path) -> Result<(StaticNamespaces, Fingerprint), NamespaceViewError> {
        let snap =
            file_watch::read_now(std::slice::from_ref(&path.to_path_buf())).map_err(|e| {
                NamespaceViewError::Read {
                    path: e.path,
                    error: e.error,
                }
            })?;
        let list = parse_file(&snap.contents[0], path)?;
        Ok((StaticNamespaces::new(list), snap.fingerprint))
    }

    fn watch_file(
        view: &StaticNamespaces,
        path: PathBuf,
        fingerprint: Fingerprint,
        poller: &mut Poller,
        metrics: Arc<Metrics>,
    ) {
        let view = view.clone();
        let watched = vec![path.clone()];
        poller.watch(watched, fingerprint, move |result| {
            let outcome = result
                .map_err(|e| NamespaceViewError::Read {
                    path: e.path,
                    error: e.error,
                })
                .and_then(|snap| parse_file(&snap.contents[0], &path));
            match outcome {
                Ok(list) => {
                    tracing::info!(namespaces = list.len(), file = %path.display(), "namespaces file reloaded");
                    view.replace(list);
                    metrics.namespaces_reload(true);
                }
                Err(e) => {
                    metrics.namespaces_reload(false);
                    tracing::warn!(error = %e, "namespaces file changed but is refused; keeping the namespaces in use");
                }
            }
        });
    }

    /// The namespace's labels and annotations as the policy reads them (one
    /// shared copy per namespace); `Ok(None)` when it does not exist.
    pub async fn lookup(&self, name: &str) -> Result<Option<Arc<NamespaceMeta>>, LookupError> {
        match self {
            NamespaceView::Static(s) => Ok(s.get(name)),
            NamespaceView::Cluster(c) => c.lookup(name).await,
        }
    }

    /// Whether the view has synced (static views always have).
    pub fn is_ready(&self) -> bool {
        match self {
            NamespaceView::Static(_) => true,
            NamespaceView::Cluster(c) => c.ready.load(Ordering::Acquire),
        }
    }

    /// `Err(reason)` when a cluster view has not heard from the apiserver for
    /// longer than its staleness bound (static views are always fresh).
    pub fn check_fresh(&self) -> Result<(), String> {
        match self {
            NamespaceView::Static(_) => Ok(()),
            NamespaceView::Cluster(c) => c.freshness.check(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        assert!(is_namespace_name("vespa-prod1"));
        for bad in ["", "-a", "a-", "A", "a/b", "..", &"a".repeat(64)] {
            assert!(!is_namespace_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn fixed_view_looks_up_by_name() {
        let a = NamespaceMeta::named("a")
            .with_label(crate::policy::INJECTION_LABEL, "enabled")
            .with_label("k", "v")
            .with_annotation("tls.vespa.ai/issuer-name", "i")
            .with_annotation("other", "x");
        let v = NamespaceView::fixed(vec![a]);
        assert!(v.is_ready());
        // As the policy reads it: its label and annotations, no others.
        let found = v.lookup("a").await.unwrap().unwrap();
        assert_eq!(
            *found,
            NamespaceMeta::named("a")
                .with_label(crate::policy::INJECTION_LABEL, "enabled")
                .with_annotation("tls.vespa.ai/issuer-name", "i")
        );
        assert_eq!(v.lookup("b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn cluster_view_shares_a_namespace_until_the_watch_replaces_it() {
        let (store, mut writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let view = ClusterNamespaces {
            store,
            api: Api::all(kube::Client::try_from(config).unwrap()),
            ready: Arc::new(AtomicBool::new(true)),
            freshness: Arc::new(Freshness::new(Duration::from_secs(60))),
            views: RwLock::default(),
        };
        let namespace = |mode: &str| {
            let mut ns = PartialObjectMeta::<Namespace>::default();
            ns.metadata.name = Some("a".into());
            ns.metadata.labels = Some(
                [
                    (crate::policy::INJECTION_LABEL.to_string(), mode.to_string()),
                    ("other".to_string(), "x".to_string()),
                ]
                .into(),
            );
            ns
        };
        let want =
            |mode: &str| NamespaceMeta::named("a").with_label(crate::policy::INJECTION_LABEL, mode);
        writer.apply_watcher_event(&watcher::Event::Apply(namespace("enabled")));
        let first = view.lookup("a").await.unwrap().unwrap();
        assert_eq!(*first, want("enabled"));
        let again = view.lookup("a").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "shared while unchanged");
        writer.apply_watcher_event(&watcher::Event::Apply(namespace("enforced")));
        let changed = view.lookup("a").await.unwrap().unwrap();
        assert_eq!(*changed, want("enforced"), "a relabelled namespace is seen");
    }

    #[test]
    fn freshness_fails_after_the_bound_naming_the_last_error() {
        let f = Freshness::new(Duration::from_secs(10));
        let metrics = Metrics::new();
        f.mark_ok(&metrics);
        let now = f.last_ok();
        assert!(f.check(now + Duration::from_secs(10)).is_ok());
        let e = f.check(now + Duration::from_secs(11)).unwrap_err();
        assert!(
            e.ends_with("; waiting for the apiserver to answer a list"),
            "{e}"
        );
        f.mark_error("connection refused".into());
        let e = f.check(now + Duration::from_secs(11)).unwrap_err();
        assert!(e.contains("stale"), "{e}");
        assert!(e.contains("for 11 s (bound 10 s)"), "{e}");
        assert!(e.contains("last error: connection refused"), "{e}");
        f.mark_ok(&metrics);
        assert!(f.check(f.last_ok() + Duration::from_secs(1)).is_ok());
        assert!(
            metrics
                .encode()
                .contains("vespa_tls_webhook_namespace_view_last_success_timestamp_seconds 1")
        );
    }

    #[test]
    fn file_errors_name_the_flag() {
        let e = NamespaceView::read_file(Path::new("/nonexistent/ns.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--namespaces /nonexistent/ns.yaml: "),
            "{e}"
        );
        let e = parse_file(b"- metadata: {}\n", Path::new("ns.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("--namespaces ns.yaml: "), "{e}");
    }
}
