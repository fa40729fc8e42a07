//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several
//! replicas exactly one runs the controller.
//!
//! The algorithm is client-go's: a candidate reads the Lease; it takes it when
//! nobody holds it or when the holder has not renewed it for `lease_duration`
//! *as observed on the candidate's own clock* (the time since the Lease record
//! last changed, so clock skew between replicas does not matter). Writes use the
//! Lease's `resourceVersion` (optimistic concurrency): of two candidates racing
//! for an expired Lease, the apiserver lets exactly one replace it and answers the
//! other 409 Conflict. The leader renews every `retry_period`; if it cannot renew
//! within `renew_deadline` (shorter than `lease_duration`) it stops leading before
//! anyone else may take over. On shutdown the leader releases the Lease so a
//! successor takes over at once.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio_util::sync::CancellationToken;

/// Timing of the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease not renewed stays with its holder.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews.
    pub retry_period: Duration,
}

impl Timing {
    /// client-go's proportions for a lease duration: renew deadline 2/3 of it,
    /// retry period 2/15 of it (15 s → 10 s, 2 s), at least 1 s.
    pub fn for_lease_duration(lease_duration: Duration) -> Timing {
        let lease_duration = lease_duration.max(Duration::from_secs(3));
        Timing {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: (lease_duration * 2 / 15).max(Duration::from_secs(1)),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing::for_lease_duration(Duration::from_secs(15))
    }
}

/// What a candidate (or the leader) should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is ours: renew it.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire {
        /// The previous holder, if any.
        previous: Option<String>,
    },
    /// Someone else holds it.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// Decide on a Lease held by `holder` (with its `leaseDurationSeconds`, or
/// `default_duration`), whose record last changed at `observed_at` on our clock.
pub fn verdict(
    holder: Option<&str>,
    duration: Option<Duration>,
    default_duration: Duration,
    identity: &str,
    observed_at: Instant,
    now: Instant,
) -> Verdict {
    match holder.filter(|h| !h.is_empty()) {
        Some(h) if h == identity => Verdict::Renew,
        None => Verdict::Acquire { previous: None },
        Some(h) => {
            let duration = duration.unwrap_or(default_duration);
            if now.saturating_duration_since(observed_at) >= duration {
                Verdict::Acquire {
                    previous: Some(h.to_string()),
                }
            } else {
                Verdict::Wait {
                    holder: h.to_string(),
                }
            }
        }
    }
}

/// The Lease as we want to write it, from the one we read (if any).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    identity: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let ours = current.and_then(|s| s.holder_identity.as_deref()) == Some(identity);
    let transitions = current.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if ours {
            current.and_then(|s| s.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if ours || current.is_none() {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..LeaseSpec::default()
    }
}

/// Why a Lease operation failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The apiserver refused or failed.
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timing: Timing,
    /// The Lease's resourceVersion when we last saw it change, and when.
    observed: Option<(String, Instant)>,
}

/// How one attempt at the Lease went.
enum Attempt {
    /// We hold it now.
    Held,
    /// Someone else does.
    Other(String),
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, as `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            observed: None,
        }
    }

    /// Our identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn api_error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaseError> {
        let now = Instant::now();
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error(e))?;
        let Some(lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(next_spec(
                    None,
                    &self.identity,
                    self.timing.lease_duration,
                    Timestamp::now(),
                )),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created, now);
                    Ok(Attempt::Held)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    Ok(Attempt::Other("(another candidate, just now)".into()))
                }
                Err(e) => Err(self.api_error(e)),
            };
        };
        let observed_at = self.observe(&lease, now);
        let spec = lease.spec.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        match verdict(
            spec.holder_identity.as_deref(),
            duration,
            self.timing.lease_duration,
            &self.identity,
            observed_at,
            now,
        ) {
            Verdict::Wait { holder } => Ok(Attempt::Other(holder)),
            Verdict::Renew | Verdict::Acquire { .. } => {
                let mut next = lease.clone();
                next.spec = Some(next_spec(
                    Some(&spec),
                    &self.identity,
                    self.timing.lease_duration,
                    Timestamp::now(),
                ));
                // `replace` sends metadata.resourceVersion: a concurrent write wins, we get 409.
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &next)
                    .await
                {
                    Ok(written) => {
                        self.observe(&written, Instant::now());
                        Ok(Attempt::Held)
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        Ok(Attempt::Other("(a concurrent writer)".into()))
                    }
                    Err(e) => Err(self.api_error(e)),
                }
            }
        }
    }

    /// Record the Lease's resourceVersion; returns when it was first seen.
    fn observe(&mut self, lease: &Lease, now: Instant) -> Instant {
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        match &self.observed {
            Some((seen, at)) if *seen == rv => *at,
            _ => {
                self.observed = Some((rv, now));
                now
            }
        }
    }

    /// Give the Lease up (on shutdown), so that another replica takes over at once.
    async fn release(&mut self) -> Result<(), LeaseError> {
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error(e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let mut next = lease;
        next.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..spec
        });
        self.api
            .replace(&self.name, &PostParams::default(), &next)
            .await
            .map_err(|e| self.api_error(e))?;
        Ok(())
    }

    /// Take part in the election until `shutdown` is cancelled. Whenever this
    /// replica becomes leader, `lead` is called with a token that is cancelled
    /// when leadership ends (lost, not renewed in time, or shutdown); the future it
    /// returns should finish promptly after that (it is aborted after
    /// `renew_deadline / 2`). After losing the Lease the replica is a candidate again.
    pub async fn run<F, Fut>(mut self, shutdown: CancellationToken, mut lead: F)
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let t = self.timing;
        let mut last_holder: Option<String> = None;
        loop {
            // Candidate.
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match tokio::time::timeout(t.retry_period * 2, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Held)) => break,
                    Ok(Ok(Attempt::Other(holder))) => {
                        if last_holder.as_deref() != Some(holder.as_str()) {
                            tracing::info!(lease = %self.name, holder = %holder, identity = %self.identity, "another replica leads; standing by");
                            last_holder = Some(holder);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot read or take the lease; retrying")
                    }
                    Err(_) => {
                        tracing::warn!(lease = %self.name, "lease request timed out; retrying")
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(t.retry_period) => {}
                }
            }
            last_holder = None;
            tracing::info!(lease = %format!("{}/{}", self.namespace, self.name), identity = %self.identity, "became leader");
            let leading = shutdown.child_token();
            let mut task = tokio::spawn(lead(leading.clone()));
            let mut last_renew = Instant::now();
            let mut task_done = false;
            // Leader: renew until we cannot.
            let why = loop {
                tokio::select! {
                    () = shutdown.cancelled() => break "shutting down",
                    _ = &mut task => { task_done = true; break "the controller stopped" },
                    () = tokio::time::sleep(t.retry_period) => {}
                }
                let deadline = tokio::time::Instant::from_std(last_renew + t.renew_deadline);
                match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Held)) => last_renew = Instant::now(),
                    Ok(Ok(Attempt::Other(holder))) => {
                        tracing::warn!(holder = %holder, "lost the lease");
                        break "lost the lease";
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot renew the lease");
                        if last_renew.elapsed() >= t.renew_deadline {
                            break "could not renew the lease in time";
                        }
                    }
                    Err(_) => break "could not renew the lease in time",
                }
            };
            leading.cancel();
            if !task_done {
                let grace = t.renew_deadline / 2;
                if tokio::time::timeout(grace, &mut task).await.is_err() {
                    task.abort();
                }
            }
            tracing::info!(reason = why, identity = %self.identity, "stopped leading");
            if shutdown.is_cancelled() || task_done {
                match tokio::time::timeout(t.retry_period * 2, self.release()).await {
                    Ok(Ok(())) => tracing::info!("released the lease"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
                    Err(_) => tracing::warn!("releasing the lease timed out"),
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
            // Do not race straight back in.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(t.retry_period) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn timing_follows_client_go() {
        let t = Timing::default();
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry_period, Duration::from_secs(2));
        let short = Timing::for_lease_duration(Duration::from_secs(6));
        assert_eq!(short.renew_deadline, Duration::from_secs(4));
        assert_eq!(short.retry_period, Duration::from_secs(1));
        assert!(short.renew_deadline < short.lease_duration);
        assert_eq!(
            Timing::for_lease_duration(Duration::ZERO).lease_duration,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn free_lease_is_acquired_own_lease_renewed() {
        let t0 = Instant::now();
        assert_eq!(
            verdict(None, None, D, "me", t0, t0),
            Verdict::Acquire { previous: None }
        );
        assert_eq!(
            verdict(Some(""), None, D, "me", t0, t0),
            Verdict::Acquire { previous: None }
        );
        assert_eq!(
            verdict(Some("me"), Some(D), D, "me", t0, t0 + D * 10),
            Verdict::Renew
        );
    }

    #[test]
    fn held_lease_waits_until_it_expires_on_our_clock() {
        let t0 = Instant::now();
        let held = |now| verdict(Some("other"), Some(D), D, "me", t0, now);
        assert_eq!(
            held(t0),
            Verdict::Wait {
                holder: "other".into()
            }
        );
        assert_eq!(
            held(t0 + D - Duration::from_millis(1)),
            Verdict::Wait {
                holder: "other".into()
            }
        );
        assert_eq!(
            held(t0 + D),
            Verdict::Acquire {
                previous: Some("other".into())
            }
        );
        // The lease's own duration wins over ours.
        let short = verdict(
            Some("other"),
            Some(Duration::from_secs(1)),
            D,
            "me",
            t0,
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            short,
            Verdict::Acquire {
                previous: Some("other".into())
            }
        );
        let default = verdict(
            Some("other"),
            None,
            D,
            "me",
            t0,
            t0 + Duration::from_secs(14),
        );
        assert_eq!(
            default,
            Verdict::Wait {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn next_spec_counts_transitions_and_keeps_acquire_time_on_renewal() {
        let t1 = Timestamp::from_second(1_000).unwrap();
        let t2 = Timestamp::from_second(2_000).unwrap();
        let first = next_spec(None, "a", D, t1);
        assert_eq!(first.holder_identity.as_deref(), Some("a"));
        assert_eq!(first.lease_duration_seconds, Some(15));
        assert_eq!(first.lease_transitions, Some(0));
        assert_eq!(first.acquire_time, Some(MicroTime(t1)));
        let renewed = next_spec(Some(&first), "a", D, t2);
        assert_eq!(renewed.acquire_time, Some(MicroTime(t1)));
        assert_eq!(renewed.renew_time, Some(MicroTime(t2)));
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken = next_spec(Some(&renewed), "b", D, t2);
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.acquire_time, Some(MicroTime(t2)));
        assert_eq!(taken.lease_transitions, Some(1));
    }
}
