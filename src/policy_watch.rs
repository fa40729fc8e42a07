//! The cluster policy in force, shared with the request handlers and reloaded
//! when `--policy FILE` changes.
//!
//! At start an invalid file is an error (the webhook refuses to start). Later, a
//! changed file that does not parse keeps the last good policy in force; the
//! failure is logged and counted. So does a file that became empty: at start an
//! empty file means the built-in policy, but a file emptied under a running
//! webhook is far more likely a writer caught mid-way or a ConfigMap key gone
//! blank than a wish for the built-in policy (write `{}` for that). The webhook's
//! own namespace is excluded after every load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use crate::file_watch::{self, Fingerprint, Poller};
use crate::metrics::Metrics;
use crate::policy::{ClusterPolicy, PolicyFileError};

/// Why the policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("--policy {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("--policy {}: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: PolicyFileError,
    },
}

/// The policy in force; cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub struct PolicyHandle(Arc<RwLock<Arc<ClusterPolicy>>>);

impl PolicyHandle {
    /// A handle holding `policy`.
    pub fn new(policy: ClusterPolicy) -> Self {
        PolicyHandle(Arc::new(RwLock::new(Arc::new(policy))))
    }

    /// The policy in force now (the lock is released before this returns).
    pub fn current(&self) -> Arc<ClusterPolicy> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, policy: ClusterPolicy) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }
}

/// Where the policy comes from and the namespace always excluded.
#[derive(Debug, Clone, Default)]
pub struct PolicySource {
    /// `--policy FILE`; the built-in policy when `None`.
    pub path: Option<PathBuf>,
    /// `--webhook-namespace` / `POD_NAMESPACE`.
    pub webhook_namespace: Option<String>,
}

/// A loaded policy and, for a file, what to watch.
#[derive(Debug)]
pub struct PolicyWatch {
    handle: PolicyHandle,
    source: PolicySource,
    loaded_from: Option<Fingerprint>,
}

fn parse(text: &[u8], path: &Path, webhook_ns: Option<&str>) -> Result<ClusterPolicy, PolicyError> {
    let invalid = |error| PolicyError::Invalid {
        path: path.to_path_buf(),
        error,
    };
    let text = std::str::from_utf8(text)
        .map_err(|e| invalid(PolicyFileError::Parse(format!("not UTF-8: {e}"))))?;
    let policy = ClusterPolicy::from_yaml(text).map_err(invalid)?;
    Ok(exclude(policy, webhook_ns))
}

/// [`parse`] for a reload: an empty (or blank) file is refused.
fn reparse(
    text: &[u8],
    path: &Path,
    webhook_ns: Option<&str>,
) -> Result<ClusterPolicy, PolicyError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(PolicyError::Invalid {
            path: path.to_path_buf(),
            error: PolicyFileError::Parse(
                "the file became empty; write `{}` for the built-in policy".into(),
            ),
        });
    }
    parse(text, path, webhook_ns)
}

fn exclude(policy: ClusterPolicy, webhook_ns: Option<&str>) -> ClusterPolicy {
    match webhook_ns {
        Some(ns) => policy.excluding(ns),
        None => policy,
    }
}

impl PolicyWatch {
    /// Load the policy (an invalid or unreadable file is an error).
    pub fn load(source: PolicySource) -> Result<PolicyWatch, PolicyError> {
        let ns = source.webhook_namespace.as_deref();
        let (policy, loaded_from) = match &source.path {
            None => (exclude(ClusterPolicy::default(), ns), None),
            Some(path) => {
                let snap = file_watch::read_now(std::slice::from_ref(path)).map_err(|e| {
                    PolicyError::Read {
                        path: e.path,
                        error: e.error,
                    }
                })?;
                (parse(&snap.contents[0], path, ns)?, Some(snap.fingerprint))
            }
        };
        Ok(PolicyWatch {
            handle: PolicyHandle::new(policy),
            source,
            loaded_from,
        })
    }

    /// The shared handle.
    pub fn handle(&self) -> PolicyHandle {
        self.handle.clone()
    }

    /// Watch the file with `poller` (nothing to do without a file).
    pub fn watch_file(&self, poller: &mut Poller, metrics: Arc<Metrics>) {
        let (Some(path), Some(initial)) = (self.source.path.clone(), self.loaded_from) else {
            return;
        };
        let handle = self.handle.clone();
        let ns = self.source.webhook_namespace.clone();
        let watched = path.clone();
        poller.watch(
            vec![watched],
            initial,
            move |result| {
                let outcome = result
                    .map_err(|e| PolicyError::Read {
                        path: e.path,
                        error: e.error,
                    })
                    .and_then(|snap| reparse(&snap.contents[0], &path, ns.as_deref()));
                match outcome {
                    Ok(policy) => {
                        tracing::info!(
                            policy = %path.display(),
                            default_mode = policy.default_mode.as_str(),
                            "cluster policy reloaded"
                        );
                        handle.replace(policy);
                        metrics.policy_reload(true);
                    }
                    Err(e) => {
                        metrics.policy_reload(false);
                        tracing::warn!(error = %e, "cluster policy file changed but is refused; the last good policy stays in force");
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Mode;

    #[test]
    fn builtin_policy_excludes_the_webhook_namespace() {
        let w = PolicyWatch::load(PolicySource {
            path: None,
            webhook_namespace: Some("vtw-system".into()),
        })
        .unwrap();
        let p = w.handle().current();
        assert!(p.is_excluded("vtw-system"));
        assert!(p.is_excluded("kube-system"));
        assert_eq!(p.default_mode, Mode::Disabled);
    }

    #[test]
    fn invalid_or_missing_file_names_the_flag() {
        let e = PolicyWatch::load(PolicySource {
            path: Some("/nonexistent/policy.yaml".into()),
            webhook_namespace: None,
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--policy /nonexistent/policy.yaml: "),
            "{e}"
        );
        let e = parse(b"defaultMode: sometimes\n", Path::new("p.yaml"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--policy p.yaml: policy file is not valid"),
            "{e}"
        );
        assert!(parse(b"", Path::new("p.yaml"), None).is_ok());
        let e = reparse(b" \n", Path::new("p.yaml"), None).unwrap_err();
        assert!(e.to_string().contains("became empty"), "{e}");
        assert!(
            e.to_string()
                .starts_with("--policy p.yaml: policy file is not valid"),
            "{e}"
        );
        assert!(reparse(b"{}", Path::new("p.yaml"), None).is_ok());
    }
}
