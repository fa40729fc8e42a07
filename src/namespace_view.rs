//! The namespace view: a namespace's labels and annotations, read without an API
//! call on the request path.
//!
//! Two sources:
//! - **cluster**: a kube-rs reflector over Namespace *metadata* (list + watch, with
//!   backoff, recovering when the apiserver restarts). Ready after the first
//!   complete list. A name not in the cache (a namespace created a moment ago) gets
//!   one live `GET`; not found is `Ok(None)`, an API error is `Err` (the caller
//!   fails closed).
//! - **static**: a `--namespaces FILE` (see [`crate::namespaces`]), reloaded when it
//!   changes; always ready. A name not in the file is `Ok(None)`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::file_watch::{self, Fingerprint, Tasks};
use crate::metrics::Metrics;
use crate::policy::NamespaceMeta;

/// How long the live `GET` for a namespace missing from the cache may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

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
}

/// Namespaces from a file or a fixed list.
#[derive(Debug, Clone)]
pub struct StaticNamespaces {
    by_name: Arc<RwLock<Arc<HashMap<String, NamespaceMeta>>>>,
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

fn meta_of(name: &str, m: &ObjectMeta) -> NamespaceMeta {
    NamespaceMeta {
        name: m.name.clone().unwrap_or_else(|| name.to_string()),
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
    }
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

    fn get(&self, name: &str) -> Option<NamespaceMeta> {
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

fn index(namespaces: Vec<NamespaceMeta>) -> HashMap<String, NamespaceMeta> {
    namespaces
        .into_iter()
        .map(|n| (n.name.clone(), n))
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
    async fn lookup(&self, name: &str) -> Result<Option<NamespaceMeta>, LookupError> {
        if let Some(ns) = self.store.get(&ObjectRef::new(name)) {
            return Ok(Some(meta_of(name, &ns.metadata)));
        }
        if !is_namespace_name(name) {
            return Ok(None);
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.api.get_opt(name)).await {
            Ok(Ok(found)) => Ok(found.map(|ns| meta_of(name, &ns.metadata))),
            Ok(Err(e)) => Err(LookupError::Api {
                name: name.to_string(),
                reason: e.to_string(),
            }),
            Err(_) => Err(LookupError::Timeout {
                name: name.to_string(),
            }),
        }
    }

    fn start(client: kube::Client, metrics: Arc<Metrics>) -> (ClusterNamespaces, Tasks) {
        // `Api<PartialObjectMeta<_>>` lists, watches and gets metadata only.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let (store, writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let ready = Arc::new(AtomicBool::new(false));
        let flag = ready.clone();
        let stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if !flag.swap(true, Ordering::Release) {
                            tracing::info!("namespace view synced");
                        }
                        metrics.set_namespace_view_synced(true);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace watch failed; retrying with backoff");
                    }
                }
            }
            tracing::error!("namespace watch ended");
        });
        let mut tasks = Tasks::new();
        tasks.push(task);
        (ClusterNamespaces { store, api, ready }, tasks)
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

    /// Start the view: build the client and watcher, or read the file and poll it
    /// every `reload_interval`. The returned tasks keep it up to date.
    pub async fn start(
        source: NamespaceSource,
        reload_interval: Duration,
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
                let tasks = Self::watch_file(&view, path, fingerprint, reload_interval, metrics);
                Ok((NamespaceView::Static(view), tasks))
            }
            NamespaceSource::Cluster { kubeconfig } => {
                let client = cluster_client(kubeconfig.as_deref()).await?;
                let (view, tasks) = ClusterNamespaces::start(client, metrics);
                Ok((NamespaceView::Cluster(Arc::new(view)), tasks))
            }
            NamespaceSource::Client(client) => {
                let (view, tasks) = ClusterNamespaces::start(client, metrics);
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
        interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Tasks {
        let view = view.clone();
        let watched = vec![path.clone()];
        let mut tasks = Tasks::new();
        tasks.push(file_watch::spawn_poller(watched, fingerprint, interval, move |result| {
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
        }));
        tasks
    }

    /// The namespace's labels and annotations; `Ok(None)` when it does not exist.
    pub async fn lookup(&self, name: &str) -> Result<Option<NamespaceMeta>, LookupError> {
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
        let v = NamespaceView::fixed(vec![NamespaceMeta::named("a").with_label("k", "v")]);
        assert!(v.is_ready());
        assert_eq!(v.lookup("a").await.unwrap().unwrap().labels["k"], "v");
        assert_eq!(v.lookup("b").await.unwrap(), None);
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
