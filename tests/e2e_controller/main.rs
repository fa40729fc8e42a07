//! End-to-end tests of the controller, its leader election and `verify`, through a
//! real kube-apiserver (1.20.2) and etcd started by `tests/e2e/control-plane.sh up`
//! (which also applies the VespaSet and cert-manager fixture CRDs). Our real binary
//! runs as `serve --controller` on 127.0.0.1 and is registered with
//! `deploy/webhook-configurations.yaml` (`clientConfig.service` → `url`), as in
//! `tests/e2e`.
//!
//! Run: `tests/e2e/control-plane.sh up && eval "$(tests/e2e/control-plane.sh env)" &&
//! cargo test --test e2e_controller`. Without `VTW_E2E_KUBECONFIG` the suite is skipped
//! with a message — except under `CI`, where that is a failure.
//!
//! A custom harness (`harness = false`): the scenarios share one webhook+controller
//! process (replica A), run in order (the last one kills it), and the summary line gives
//! their count. Each run uses fresh namespaces, including its own webhook namespace
//! (which holds the Lease), so runs do not interfere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use vespa_tls_webhook::controller::desired::tls_config_json;
use vespa_tls_webhook::layout::{INGRESS, MTLS};

#[path = "../common/e2e.rs"]
mod common;
#[path = "../common/listen.rs"]
#[allow(dead_code)]
mod listen;

use common::{
    apply, ensure_namespace, labelled, registrations, wait_ready, write_certs, yaml_docs, yaml_file,
};

type Scenario = common::Scenario<Ctx>;

/// Lease duration given to both replicas (short, so the takeover test is quick).
const LEASE_SECS: u64 = 6;
/// Retry period the binary derives from it (max(1 s, 2/15 of it)).
const RETRY_SECS: u64 = 1;
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "vespa-tls-webhook");

#[derive(Clone)]
struct Ctx {
    client: Client,
    kubeconfig: String,
    run_id: String,
    /// The webhook's namespace (holds the Lease).
    system_ns: String,
    /// `https://127.0.0.1:PORT` of replica A and its CA.
    base: String,
    ca: Vec<u8>,
    certs: PathBuf,
    replica_a: std::sync::Arc<std::sync::Mutex<Option<Replica>>>,
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

impl Ctx {
    fn config_maps(&self, ns: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn dynamic(&self, ns: &str, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &resource(group, kind, plural))
    }

    fn vespasets(&self, ns: &str) -> Api<DynamicObject> {
        self.dynamic(ns, "k8s.ai.vespa", "VespaSet", "vespasets")
    }

    async fn namespace(&self, prefix: &str, labels: Value, annotations: Value) -> Result<String> {
        let name = format!("{prefix}-{}", self.run_id);
        ensure_namespace(&self.client, &name, labels, annotations).await?;
        Ok(name)
    }

    async fn label(&self, ns: &str, labels: Value, annotations: Value) -> Result<()> {
        common::label_namespace(&self.client, ns, labels, annotations).await
    }

    /// Events in `ns` (events.k8s.io/v1), oldest first.
    async fn events(&self, ns: &str) -> Result<Vec<Event>> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        Ok(api.list(&ListParams::default()).await?.items)
    }

    async fn lease_holder(&self) -> Result<String> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.system_ns);
        Ok(api
            .get_opt("vespa-tls-webhook-controller")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .unwrap_or_default())
    }

    async fn register(&self) -> Result<()> {
        let (m, v) = registrations(&self.base, &self.ca);
        apply(&self.client, m).await?;
        apply(&self.client, v).await
    }

    async fn unregister(&self) {
        common::unregister(&self.client).await;
    }

    /// `vespa-tls-webhook verify --namespace NS ARGS...`: (exit code, stdout).
    fn verify(&self, ns: &str, args: &[&str]) -> Result<(i32, String)> {
        let out = Command::new(env!("CARGO_BIN_EXE_vespa-tls-webhook"))
            .args([
                "verify",
                "--namespace",
                ns,
                "--kubeconfig",
                &self.kubeconfig,
            ])
            .args(args)
            .output()
            .context("run verify")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap_or(-1);
        if code == 2 {
            bail!("verify failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok((code, stdout))
    }
}

/// Poll `f` every 100 ms until it returns `Some`, for at most `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, f: F) -> Result<(T, Duration)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok((v, start.elapsed()));
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ConfigMap once it holds exactly the TLS config `want`.
async fn wait_for_config(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    want: &str,
    limit: Duration,
) -> Result<Duration> {
    let (_, took) = wait_for(
        &format!("ConfigMap {ns}/{name} with the TLS config"),
        limit,
        || async {
            let cm = ctx.config_maps(ns).get_opt(name).await?;
            Ok(cm.filter(|cm| {
                cm.data
                    .as_ref()
                    .and_then(|d| d.get("tls-config.json"))
                    .map(String::as_str)
                    == Some(want)
                    && cm
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(MANAGED_BY.0))
                        .map(String::as_str)
                        == Some(MANAGED_BY.1)
            }))
        },
    )
    .await?;
    Ok(took)
}

async fn has_event(ctx: &Ctx, ns: &str, reason: &str, text: &str) -> Result<Option<Event>> {
    Ok(ctx.events(ns).await?.into_iter().find(|e| {
        e.reason.as_deref() == Some(reason) && e.note.as_deref().is_some_and(|n| n.contains(text))
    }))
}

// ---------------------------------------------------------------- scenarios

fn labelling_a_namespace_creates_the_config_map_within_seconds(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx.namespace("ctl-label", json!({}), json!({})).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        ensure!(
            ctx.config_maps(&ns)
                .get_opt("vespa-config-tls")
                .await?
                .is_none(),
            "ConfigMap created in an unlabelled namespace"
        );
        ctx.label(&ns, labelled("enabled"), json!({})).await?;
        let took = wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &tls_config_json(&MTLS),
            Duration::from_secs(10),
        )
        .await?;
        println!("    ConfigMap created {took:?} after labelling");
        // Exactly the seed's Step 3 file.
        ensure!(
            tls_config_json(&MTLS)
                == yaml_file("deploy/examples/vespa-namespace/tls-config.yaml")["data"]["tls-config.json"].as_str().unwrap(),
            "TLS config differs from the seed's Step 3"
        );
        let (event, _) = wait_for("Created event", Duration::from_secs(5), || {
            has_event(&ctx, &ns, "Created", "ConfigMap vespa-config-tls created")
        })
        .await?;
        let regarding = event.regarding.unwrap_or_default();
        ensure!(
            regarding.kind.as_deref() == Some("Namespace")
                && regarding.name.as_deref() == Some(ns.as_str()),
            "event regarding {regarding:?}"
        );
        ensure!(event.type_.as_deref() == Some("Normal"));
        // Ingress TLS adds the ingress ConfigMap.
        ctx.label(
            &ns,
            json!({}),
            json!({"tls.vespa.ai/ingress-issuer-name": "ingress-issuer"}),
        )
        .await?;
        wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls-ingress",
            &tls_config_json(&INGRESS),
            Duration::from_secs(10),
        )
        .await?;
        let cm = ctx.config_maps(&ns).get("vespa-config-tls-ingress").await?;
        let cfg: Value = serde_json::from_str(&cm.data.unwrap()["tls-config.json"])?;
        ensure!(
            cfg["files"]["certificates"] == "/etc/tls-ingress/tls.crt",
            "ingress config {cfg}"
        );
        Ok(())
    })
}

fn edited_or_deleted_config_map_is_restored(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("ctl-restore", labelled("enforced"), json!({}))
            .await?;
        let want = tls_config_json(&MTLS);
        wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &want,
            Duration::from_secs(10),
        )
        .await?;
        let api = ctx.config_maps(&ns);
        // Edit: restored by server-side apply.
        api.patch(
            "vespa-config-tls",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tls-config.json": "{\"files\": {}}"}})),
        )
        .await?;
        let took = wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &want,
            Duration::from_secs(10),
        )
        .await?;
        println!("    edit reverted after {took:?}");
        wait_for("Restored event", Duration::from_secs(5), || {
            has_event(&ctx, &ns, "Restored", "data.tls-config.json differs")
        })
        .await?;
        // Delete: recreated.
        api.delete("vespa-config-tls", &DeleteParams::default())
            .await?;
        let took = wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &want,
            Duration::from_secs(10),
        )
        .await?;
        println!("    deletion repaired after {took:?}");
        wait_for("Recreated event", Duration::from_secs(5), || {
            has_event(&ctx, &ns, "Recreated", "had been deleted")
        })
        .await?;
        let cm = api.get("vespa-config-tls").await?;
        let managers: Vec<String> = cm
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        ensure!(
            managers.iter().any(|m| m == "vespa-tls-webhook-controller"),
            "field managers {managers:?}"
        );
        Ok(())
    })
}

fn a_config_map_not_labelled_as_ours_is_left_alone_with_a_warning(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx.namespace("ctl-foreign", json!({}), json!({})).await?;
        let theirs: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "vespa-config-tls", "namespace": ns},
            "data": {"tls-config.json": "{\"files\": {\"certificates\": \"/somewhere/else.crt\"}}"}
        }))?;
        ctx.config_maps(&ns)
            .create(&PostParams::default(), &theirs)
            .await?;
        ctx.label(&ns, labelled("enabled"), json!({})).await?;
        let (event, _) = wait_for("NotManaged warning", Duration::from_secs(10), || {
            has_event(
                &ctx,
                &ns,
                "NotManaged",
                "is not labelled app.kubernetes.io/managed-by=vespa-tls-webhook",
            )
        })
        .await?;
        ensure!(event.type_.as_deref() == Some("Warning"));
        let cm = ctx.config_maps(&ns).get("vespa-config-tls").await?;
        ensure!(
            cm.data.unwrap()["tls-config.json"].contains("/somewhere/else.crt"),
            "foreign ConfigMap was overwritten"
        );
        Ok(())
    })
}

fn bootstrap_ca_creates_the_three_cert_manager_objects(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace(
                "ctl-bootstrap",
                labelled("enabled"),
                json!({"tls.vespa.ai/bootstrap-ca": "true"}),
            )
            .await?;
        let issuers = ctx.dynamic(&ns, "cert-manager.io", "Issuer", "issuers");
        let certificates = ctx.dynamic(&ns, "cert-manager.io", "Certificate", "certificates");
        let (_, took) = wait_for("the CA chain", Duration::from_secs(10), || async {
            let all = (
                issuers.get_opt("root-selfsigned").await?,
                certificates.get_opt("root-ca").await?,
                issuers.get_opt("ca-issuer").await?,
            );
            Ok(match all {
                (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                _ => None,
            })
        })
        .await?;
        println!("    CA chain created {took:?} after labelling");
        // Exactly the seed's Steps 1-2 (deploy/examples/vespa-namespace/ca.yaml is verbatim).
        let seed = yaml_docs("deploy/examples/vespa-namespace/ca.yaml");
        for doc in seed {
            let kind = doc["kind"].as_str().unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap();
            let api = if kind == "Issuer" {
                &issuers
            } else {
                &certificates
            };
            let got = serde_json::to_value(api.get(name).await?)?;
            ensure!(
                got["spec"] == doc["spec"],
                "{kind} {name}: spec {} differs from the seed's {}",
                got["spec"],
                doc["spec"]
            );
            ensure!(
                got["metadata"]["labels"][MANAGED_BY.0] == MANAGED_BY.1,
                "{kind} {name} not labelled as ours"
            );
        }
        // A custom issuer-name names the CA Issuer.
        let named = ctx
            .namespace(
                "ctl-bootstrap-named",
                labelled("enabled"),
                json!({"tls.vespa.ai/bootstrap-ca": "true", "tls.vespa.ai/issuer-name": "team-ca"}),
            )
            .await?;
        let named_issuers = ctx.dynamic(&named, "cert-manager.io", "Issuer", "issuers");
        wait_for("Issuer team-ca", Duration::from_secs(10), || async {
            Ok(named_issuers.get_opt("team-ca").await?)
        })
        .await?;
        Ok(())
    })
}

fn verify_reports_a_vespaset_created_while_the_webhook_was_down_and_nothing_after_reapply(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace(
                "ctl-verify",
                labelled("enabled"),
                json!({"tls.vespa.ai/bootstrap-ca": "true"}),
            )
            .await?;
        wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &tls_config_json(&MTLS),
            Duration::from_secs(10),
        )
        .await?;
        let issuers = ctx.dynamic(&ns, "cert-manager.io", "Issuer", "issuers");
        wait_for("Issuer ca-issuer", Duration::from_secs(10), || async {
            Ok(issuers.get_opt("ca-issuer").await?)
        })
        .await?;

        // The webhook is not registered: the VespaSet is stored as written, without TLS.
        ctx.unregister().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut obj = yaml_file("tests/golden/seed-step4-stripped.yaml");
        obj["metadata"]["namespace"] = json!(ns);
        let created = ctx
            .vespasets(&ns)
            .create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await;
        let reports = match created {
            Ok(stored) => {
                let stored = serde_json::to_value(stored)?;
                let json_report = ctx.verify(&ns, &["-o", "json"]);
                let table = ctx.verify(&ns, &[]);
                Ok((stored, json_report, table))
            }
            Err(e) => Err(e),
        };
        ctx.register().await?;
        let (stored, json_report, table) = reports?;
        ensure!(
            stored["spec"]["application"]["podTemplate"]["spec"]
                .get("volumes")
                .is_none(),
            "VespaSet was injected although the webhook was not registered"
        );
        let (code, out) = json_report?;
        ensure!(code == 1, "verify exit {code} (want 1): {out}");
        let report: Value =
            serde_json::from_str(&out).with_context(|| format!("verify -o json printed {out}"))?;
        let findings = report["findings"].as_array().context("findings")?;
        ensure!(
            findings.len() == 1,
            "want exactly the VespaSet, got {findings:?}"
        );
        ensure!(
            findings[0]["kind"] == "VespaSet"
                && findings[0]["name"] == "vespaset-sample"
                && findings[0]["namespace"] == ns.as_str(),
            "finding {}",
            findings[0]
        );
        ensure!(
            findings[0]["problem"]
                .as_str()
                .unwrap_or_default()
                .starts_with("lacks TLS"),
            "finding {}",
            findings[0]
        );
        let (code, out) = table?;
        ensure!(
            code == 1 && out.starts_with("NAMESPACE") && out.contains("vespaset-sample"),
            "table output (exit {code}):\n{out}"
        );

        // Re-applied through the webhook (a plain replace of the same object): TLS injected.
        let (_, took) = wait_for(
            "TLS injected on re-apply",
            Duration::from_secs(15),
            || async {
                let current = ctx.vespasets(&ns).get("vespaset-sample").await?;
                let again = ctx
                    .vespasets(&ns)
                    .replace("vespaset-sample", &PostParams::default(), &current)
                    .await?;
                let again = serde_json::to_value(again)?;
                Ok(
                    again["spec"]["application"]["podTemplate"]["spec"]["volumes"]
                        .to_string()
                        .contains("tls-certs")
                        .then_some(()),
                )
            },
        )
        .await?;
        println!("    re-applied with TLS after {took:?} (webhook registration to take effect)");
        let (code, out) = ctx.verify(&ns, &["-o", "json"])?;
        let report: Value = serde_json::from_str(&out)?;
        ensure!(
            code == 0 && report["findings"] == json!([]),
            "verify after re-apply: exit {code}: {out}"
        );
        ensure!(
            report["checked"]["vespasets"] == 1,
            "checked {}",
            report["checked"]
        );
        let (code, out) = ctx.verify(&ns, &[])?;
        ensure!(
            code == 0 && out.starts_with("no findings"),
            "table after re-apply (exit {code}): {out}"
        );
        Ok(())
    })
}

fn two_replicas_one_leader_which_a_standby_replaces_within_the_lease(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let holder = ctx.lease_holder().await?;
        ensure!(
            holder.starts_with("replica-a-"),
            "Lease held by {holder:?}, want replica A"
        );
        let mut b = start_replica(
            &ctx.kubeconfig,
            &ctx.certs,
            &ctx.ca,
            &ctx.system_ns,
            "replica-b",
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(2 * RETRY_SECS + 1)).await;
        let holder = ctx.lease_holder().await?;
        ensure!(
            holder.starts_with("replica-a-"),
            "with two replicas the Lease moved to {holder:?}"
        );

        // Only the leader acts: every event about a newly labelled namespace is A's.
        let ns = ctx
            .namespace("ctl-leader-a", labelled("enabled"), json!({}))
            .await?;
        wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &tls_config_json(&MTLS),
            Duration::from_secs(10),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let instances: Vec<String> = ctx
            .events(&ns)
            .await?
            .into_iter()
            .filter_map(|e| e.reporting_instance)
            .collect();
        ensure!(
            !instances.is_empty() && instances.iter().all(|i| i.starts_with("replica-a-")),
            "events reported by {instances:?}"
        );
        let log_b = b.log()?;
        ensure!(
            log_b.contains("another replica leads") && !log_b.contains("became leader"),
            "replica B log:\n{log_b}"
        );

        // Kill the leader (SIGKILL: no release): B takes over once the Lease expires.
        ctx.replica_a
            .lock()
            .unwrap()
            .take()
            .context("replica A already gone")?
            .kill();
        let retry = Duration::from_secs(RETRY_SECS);
        let limit = Duration::from_secs(LEASE_SECS) + 2 * retry + Duration::from_secs(1);
        let (holder, took) = wait_for(
            "takeover by replica B",
            limit + Duration::from_secs(5),
            || async {
                let h = ctx.lease_holder().await?;
                Ok(h.starts_with("replica-b-").then_some(h))
            },
        )
        .await?;
        println!(
            "    replica B ({holder}) took over {took:?} after the leader was killed (lease {LEASE_SECS} s)"
        );
        ensure!(
            took <= limit,
            "takeover took {took:?}; want at most the lease duration plus the polling slack ({limit:?})"
        );
        let ns = ctx
            .namespace("ctl-leader-b", labelled("enabled"), json!({}))
            .await?;
        wait_for_config(
            &ctx,
            &ns,
            "vespa-config-tls",
            &tls_config_json(&MTLS),
            Duration::from_secs(10),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let instances: Vec<String> = ctx
            .events(&ns)
            .await?
            .into_iter()
            .filter_map(|e| e.reporting_instance)
            .collect();
        ensure!(
            !instances.is_empty() && instances.iter().all(|i| *i == holder),
            "events reported by {instances:?}, want {holder}"
        );

        // SIGTERM: the leader releases the Lease on its way out.
        b.terminate()?;
        let (_, took) = wait_for("Lease released", Duration::from_secs(10), || async {
            Ok(ctx.lease_holder().await?.is_empty().then_some(()))
        })
        .await?;
        println!("    replica B released the Lease {took:?} after SIGTERM");
        Ok(())
    })
}

// ---------------------------------------------------------------- setup

/// One `serve --controller` process.
struct Replica {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Replica {
    fn log(&self) -> Result<String> {
        Ok(std::fs::read_to_string(&self.log)?)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful shutdown), by the child's pid.
    fn terminate(&mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed");
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve --controller` as HOSTNAME=`name`; ready when /readyz answers 200.
async fn start_replica(
    kubeconfig: &str,
    certs: &std::path::Path,
    ca: &[u8],
    system_ns: &str,
    name: &str,
) -> Result<Replica> {
    let log = std::env::temp_dir().join(format!("vespa-tls-webhook-e2e-controller-{name}.log"));
    let file = std::fs::File::create(&log)?;
    // The port is picked by the kernel at bind time and read back from the log.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vespa-tls-webhook"))
        .args(["serve", "--controller", "--addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .args([
            "--kubeconfig",
            kubeconfig,
            "--log-format",
            "text",
            "--webhook-namespace",
            system_ns,
        ])
        .args(["--lease-duration-secs", &LEASE_SECS.to_string()])
        .env("HOSTNAME", name)
        .env("RUST_LOG", listen::with_serving_line("info"))
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()
        .context("start vespa-tls-webhook serve --controller")?;
    let port = listen::wait_listening(&mut child, &log, Duration::from_secs(20))
        .await
        .map_err(|e| anyhow!("{name}: {e}"))?
        .addr
        .port();
    let replica = Replica { child, log, port };
    wait_ready(port, ca, &replica.log)
        .await
        .context(name.to_string())?;
    Ok(replica)
}

async fn run_all(kubeconfig: &str) -> Result<bool> {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            % 0xffffff
    );
    let system_ns = format!("ctl-system-{run_id}");
    ensure_namespace(&client, &system_ns, json!({}), json!({})).await?;
    let certs = tempfile::tempdir()?;
    let ca = write_certs(certs.path(), "e2e controller CA")?;
    let a = start_replica(kubeconfig, certs.path(), &ca, &system_ns, "replica-a").await?;
    let base = format!("https://127.0.0.1:{}", a.port);
    let ctx = Ctx {
        client: client.clone(),
        kubeconfig: kubeconfig.to_string(),
        run_id,
        system_ns,
        base,
        ca,
        certs: certs.path().to_path_buf(),
        replica_a: std::sync::Arc::new(std::sync::Mutex::new(Some(a))),
    };
    ctx.register().await?;
    // Registrations take effect asynchronously in the apiserver; A becomes leader at once
    // (fresh Lease).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let scenarios: &[(&str, Scenario)] = &[
        (
            "labelling_a_namespace_creates_the_config_map_within_seconds",
            labelling_a_namespace_creates_the_config_map_within_seconds,
        ),
        (
            "edited_or_deleted_config_map_is_restored",
            edited_or_deleted_config_map_is_restored,
        ),
        (
            "a_config_map_not_labelled_as_ours_is_left_alone_with_a_warning",
            a_config_map_not_labelled_as_ours_is_left_alone_with_a_warning,
        ),
        (
            "bootstrap_ca_creates_the_three_cert_manager_objects",
            bootstrap_ca_creates_the_three_cert_manager_objects,
        ),
        (
            "verify_reports_a_vespaset_created_while_the_webhook_was_down_and_nothing_after_reapply",
            verify_reports_a_vespaset_created_while_the_webhook_was_down_and_nothing_after_reapply,
        ),
        // Last: it kills replica A (the webhook the others use).
        (
            "two_replicas_one_leader_which_a_standby_replaces_within_the_lease",
            two_replicas_one_leader_which_a_standby_replaces_within_the_lease,
        ),
    ];
    let (passed, failed) = common::run_scenarios("e2e_controller", &ctx, scenarios, |_| {
        Duration::from_secs(90)
    })
    .await;
    // Unregister so the control plane is usable after the suite.
    ctx.unregister().await;
    let a = ctx.replica_a.lock().unwrap().take();
    if let Some(a) = a {
        if failed > 0 {
            println!("    replica A log: {}", a.log.display());
        }
        a.kill();
    }
    Ok(common::verdict(
        "e2e_controller",
        passed,
        failed,
        "against kube-apiserver, controllers as serve --controller on 127.0.0.1",
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    common::main("e2e_controller", |kubeconfig| async move {
        run_all(&kubeconfig).await
    })
    .await
}
