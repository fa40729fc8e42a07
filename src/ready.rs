//! A namespace's TLS settings made ready for injection, and a memo of them.
//!
//! Every review in a namespace needs the same things derived from the cluster
//! policy and that namespace's annotations: the effective [`TlsSettings`] (or
//! why they are refused), their fingerprint, and the env vars, mounts and
//! volumes each template role wants. Deriving them was about a tenth of the
//! server's CPU per review, so the server keeps them in a [`ReadyMemo`] and
//! derives them again only when the policy or the namespace's `tls.vespa.ai/`
//! annotations change.
//!
//! The admission decision stays a pure function: it is handed a way to get a
//! namespace's [`ReadyResult`] ([`crate::admission::decide_with`]); the pure
//! [`crate::admission::decide`] derives it on every call, the server asks the
//! memo. Both give the same answer — the memo only skips work whose inputs did
//! not change (`tests` below and `tests/it` check that a changed policy or
//! annotation is seen at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::layout::{Role, Wanted, wanted};
use crate::patch::Shared;
use crate::policy::{ClusterPolicy, NamespaceMeta};
use crate::settings::{PREFIX, SettingError, TlsSettings};

/// A namespace's settings with what injection derives from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// The effective settings.
    pub settings: TlsSettings,
    /// [`TlsSettings::fingerprint`] of them.
    pub fingerprint: String,
    config_server: SharedWanted,
    application: SharedWanted,
}

/// [`Wanted`] with every entry [`Shared`]: a patch holds these entries instead
/// of copies, and they are written as JSON once ([`crate::patch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedWanted {
    /// Env entries for the `vespa` container, in order.
    pub env: Vec<Shared>,
    /// Volume mounts for the `vespa` container, in order.
    pub mounts: Vec<Shared>,
    /// Pod volumes, in order.
    pub volumes: Vec<Shared>,
}

impl From<Wanted> for SharedWanted {
    fn from(w: Wanted) -> SharedWanted {
        let share = |entries: Vec<Value>| entries.into_iter().map(Shared::new).collect();
        SharedWanted {
            env: share(w.env),
            mounts: share(w.mounts),
            volumes: share(w.volumes),
        }
    }
}

/// A namespace's [`Ready`] settings, or every reason they are refused
/// ([`ClusterPolicy::settings_for`]).
pub type ReadyResult = Result<Ready, Vec<SettingError>>;

impl Ready {
    /// Derive the fingerprint and each role's wanted entries from `settings`.
    pub fn new(settings: TlsSettings) -> Self {
        let fingerprint = settings.fingerprint();
        let config_server = SharedWanted::from(wanted(&settings, Role::ConfigServer));
        // The two roles want the same unless ingress TLS is on.
        let application = if settings.ingress.is_none() {
            config_server.clone()
        } else {
            SharedWanted::from(wanted(&settings, Role::Application))
        };
        Ready {
            settings,
            fingerprint,
            config_server,
            application,
        }
    }

    /// What a template of `role` must contain ([`wanted`]).
    pub fn wanted(&self, role: Role) -> &SharedWanted {
        match role {
            Role::ConfigServer => &self.config_server,
            Role::Application => &self.application,
        }
    }
}

impl ClusterPolicy {
    /// [`ClusterPolicy::settings_for`], made [`Ready`].
    pub fn ready_for(&self, ns: &NamespaceMeta) -> ReadyResult {
        self.settings_for(ns).map(Ready::new)
    }
}

/// How many namespaces the memo holds before it starts over.
pub const MEMO_CAPACITY: usize = 4096;

/// The server's memo of [`ClusterPolicy::ready_for`], per namespace.
///
/// An entry is used only while both of its inputs are unchanged: the policy
/// (the same `Arc`, which a reload replaces — the memo holds it, so its address
/// is never reused while compared) and the namespace's `tls.vespa.ai/`
/// annotations (compared in full on every lookup; the namespace's name is the
/// key). A new policy empties the memo; past [`MEMO_CAPACITY`] namespaces it
/// empties too, so a cluster with more namespaces than that simply derives
/// more often. One short lock per review; the derivation runs outside it.
#[derive(Debug, Default)]
pub struct ReadyMemo(Mutex<Memo>);

#[derive(Debug, Default)]
struct Memo {
    policy: Option<Arc<ClusterPolicy>>,
    namespaces: HashMap<String, Entry>,
}

impl Memo {
    /// Whether the entries were derived under `policy` (the same `Arc`).
    fn is_for(&self, policy: &Arc<ClusterPolicy>) -> bool {
        self.policy.as_ref().is_some_and(|p| Arc::ptr_eq(p, policy))
    }
}

#[derive(Debug)]
struct Entry {
    /// The namespace's annotations that settings read, in key order.
    annotations: Vec<(String, String)>,
    ready: Arc<ReadyResult>,
}

/// The annotations [`ClusterPolicy::settings_for`] reads: those under [`PREFIX`].
fn settings_annotations(ns: &NamespaceMeta) -> impl Iterator<Item = (&String, &String)> {
    ns.annotations.iter().filter(|(k, _)| k.starts_with(PREFIX))
}

impl ReadyMemo {
    /// `policy.ready_for(ns)`, from the memo when neither changed.
    pub fn get(&self, policy: &Arc<ClusterPolicy>, ns: &NamespaceMeta) -> Arc<ReadyResult> {
        if let Some(ready) = self.lookup(policy, ns) {
            return ready;
        }
        let ready = Arc::new(policy.ready_for(ns));
        self.store(policy, ns, &ready);
        ready
    }

    fn lookup(&self, policy: &Arc<ClusterPolicy>, ns: &NamespaceMeta) -> Option<Arc<ReadyResult>> {
        let memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !memo.is_for(policy) {
            return None;
        }
        let entry = memo.namespaces.get(&ns.name)?;
        let same = entry
            .annotations
            .iter()
            .map(|(k, v)| (k, v))
            .eq(settings_annotations(ns));
        same.then(|| entry.ready.clone())
    }

    fn store(&self, policy: &Arc<ClusterPolicy>, ns: &NamespaceMeta, ready: &Arc<ReadyResult>) {
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !memo.is_for(policy) {
            memo.policy = Some(policy.clone());
            memo.namespaces.clear();
        }
        if memo.namespaces.len() >= MEMO_CAPACITY && !memo.namespaces.contains_key(&ns.name) {
            memo.namespaces.clear();
        }
        let annotations = settings_annotations(ns)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        memo.namespaces.insert(
            ns.name.clone(),
            Entry {
                annotations,
                ready: ready.clone(),
            },
        );
    }

    /// How many namespaces the memo holds now.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .namespaces
            .len()
    }

    /// Whether the memo holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, annotations: &[(&str, &str)]) -> NamespaceMeta {
        let mut ns = NamespaceMeta::named(name);
        for (k, v) in annotations {
            ns.annotations.insert((*k).to_string(), (*v).to_string());
        }
        ns
    }

    fn policy(yaml: &str) -> Arc<ClusterPolicy> {
        Arc::new(ClusterPolicy::from_yaml(yaml).unwrap())
    }

    #[test]
    fn ready_derives_what_inject_derives() {
        let p = policy("");
        let settings = p.settings_for(&ns("a", &[])).unwrap();
        let ready = Ready::new(settings.clone());
        assert_eq!(ready.fingerprint, settings.fingerprint());
        assert_eq!(
            ready.wanted(Role::ConfigServer),
            &SharedWanted::from(wanted(&settings, Role::ConfigServer))
        );
        assert_eq!(
            ready.wanted(Role::Application),
            &SharedWanted::from(wanted(&settings, Role::Application))
        );
        // With ingress TLS the roles differ, and each is still its own.
        let ingress = p
            .settings_for(&ns("a", &[("tls.vespa.ai/ingress-issuer-name", "ing")]))
            .unwrap();
        let ready = Ready::new(ingress.clone());
        assert_ne!(
            ready.wanted(Role::ConfigServer),
            ready.wanted(Role::Application)
        );
        assert_eq!(
            ready.wanted(Role::Application),
            &SharedWanted::from(wanted(&ingress, Role::Application))
        );
    }

    #[test]
    fn the_memo_answers_as_the_policy_does_and_reuses_unchanged_entries() {
        let memo = ReadyMemo::default();
        let p = policy("");
        let a = ns("a", &[("other.io/x", "1")]);
        let first = memo.get(&p, &a);
        assert_eq!(*first, p.ready_for(&a));
        let again = memo.get(&p, &a);
        assert!(
            Arc::ptr_eq(&first, &again),
            "an unchanged namespace is reused"
        );
        // Annotations settings do not read do not matter.
        let a2 = ns("a", &[("other.io/x", "2")]);
        assert!(Arc::ptr_eq(&first, &memo.get(&p, &a2)));
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn a_changed_annotation_or_policy_is_seen_at_once() {
        let memo = ReadyMemo::default();
        let p = policy("");
        let before = memo.get(&p, &ns("a", &[]));
        // A namespace annotation changes the settings.
        let annotated = ns("a", &[("tls.vespa.ai/duration", "48h")]);
        let after = memo.get(&p, &annotated);
        assert_eq!(*after, p.ready_for(&annotated));
        assert_ne!(before, after);
        // An annotation that makes the settings invalid is an error at once.
        let bad = ns("a", &[("tls.vespa.ai/duration", "soon")]);
        assert!(memo.get(&p, &bad).is_err());
        // Removing it again.
        assert_eq!(*memo.get(&p, &ns("a", &[])), *before);
        // A reloaded policy (a new Arc, even with equal content) starts over.
        let strict = policy("constraints:\n  allowNamespaceOverrides: false\n");
        let refused = memo.get(&strict, &annotated);
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(memo.len(), 1, "the old policy's entries are gone");
        // Another namespace's name gives its own settings (the name is in them).
        let b = memo.get(&p, &ns("b", &[]));
        assert_eq!(*b, p.ready_for(&ns("b", &[])));
    }

    #[test]
    fn the_memo_is_bounded() {
        let memo = ReadyMemo::default();
        let p = policy("");
        for i in 0..MEMO_CAPACITY {
            memo.get(&p, &ns(&format!("ns-{i}"), &[]));
        }
        assert_eq!(memo.len(), MEMO_CAPACITY);
        // A known namespace does not empty it.
        memo.get(&p, &ns("ns-0", &[("tls.vespa.ai/duration", "48h")]));
        assert_eq!(memo.len(), MEMO_CAPACITY);
        // One more namespace starts over.
        let extra = ns("one-more", &[]);
        assert_eq!(*memo.get(&p, &extra), p.ready_for(&extra));
        assert_eq!(memo.len(), 1);
    }
}
