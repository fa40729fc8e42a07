//! End-to-end tests through a real kube-apiserver (1.20.2) and etcd, started by
//! `tests/e2e/control-plane.sh up`. Our real binary serves the webhook on
//! 127.0.0.1; the configurations registered are `deploy/webhook-configurations.yaml`
//! with `clientConfig.service` turned into `url` and the test CA as `caBundle`.
//!
//! Run: `tests/e2e/control-plane.sh up && eval "$(tests/e2e/control-plane.sh env)" &&
//! cargo test --test e2e`. Without `VTW_E2E_KUBECONFIG` the suite is skipped with a
//! message — except under `CI`, where that is a failure.
//!
//! A custom harness (`harness = false`): the scenarios share one webhook process
//! and one registration, run in order, and the summary line gives their count.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

#[path = "../common/e2e.rs"]
mod common;
#[path = "../common/listen.rs"]
#[allow(dead_code)]
mod listen;

use common::{
    apply, closed_port, ensure_namespace, labelled, registrations, repo, unregister, wait_ready,
    write_certs, yaml_file,
};

type Scenario = common::Scenario<Ctx>;

#[derive(Clone)]
struct Ctx {
    client: Client,
    kubeconfig: String,
    run_id: String,
}

fn vespaset_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("k8s.ai.vespa", "v1", "VespaSet"),
        "vespasets",
    )
}

impl Ctx {
    fn vespasets(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &vespaset_resource())
    }

    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// A fresh namespace (namespaces cannot be deleted here: no controller-manager).
    async fn namespace(&self, prefix: &str, labels: Value, annotations: Value) -> Result<String> {
        let name = format!("{prefix}-{}", self.run_id);
        ensure_namespace(&self.client, &name, labels, annotations).await?;
        Ok(name)
    }

    async fn create_vespaset(&self, ns: &str, mut obj: Value) -> Result<Value> {
        obj["metadata"]["namespace"] = json!(ns);
        let dynamic: DynamicObject = serde_json::from_value(obj)?;
        let created = self
            .vespasets(ns)
            .create(&PostParams::default(), &dynamic)
            .await?;
        Ok(serde_json::to_value(created)?)
    }

    async fn create_pod(
        &self,
        ns: &str,
        name: &str,
        containers: Value,
        labels: Value,
    ) -> Result<Value> {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": containers}
        }))?;
        Ok(serde_json::to_value(
            self.pods(ns).create(&PostParams::default(), &pod).await?,
        )?)
    }
}

/// Server-set metadata and our fingerprint removed, for comparing with the seed.
fn as_written(mut v: Value) -> Value {
    let meta = v["metadata"].as_object_mut().expect("metadata");
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(k);
    }
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove("tls.vespa.ai/injected");
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    v
}

fn denial(e: anyhow::Error) -> String {
    e.to_string()
}

// ---------------------------------------------------------------- scenarios

fn enabled_vespaset_is_stored_as_seed_step4(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        // The seed's attributes name namespace `vespa`; recreate the object there.
        ensure_namespace(&ctx.client, "vespa", labelled("enabled"), json!({})).await?;
        let api = ctx.vespasets("vespa");
        let _ = api
            .delete("vespaset-sample", &DeleteParams::default())
            .await;
        let stored = ctx
            .create_vespaset("vespa", yaml_file("tests/golden/seed-step4-stripped.yaml"))
            .await?;
        let fingerprint = stored
            .pointer("/metadata/annotations/tls.vespa.ai~1injected")
            .cloned();
        ensure!(
            fingerprint.is_some(),
            "no fingerprint annotation on {stored}"
        );
        let got = api.get("vespaset-sample").await?;
        ensure!(
            as_written(serde_json::to_value(got)?)
                == yaml_file("tests/golden/seed-step4-vespaset.yaml"),
            "stored VespaSet differs from seed Step 4"
        );
        Ok(())
    })
}

fn ingress_annotation_gives_seed_step5(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        // Same names as the seed through annotations: they change the injected attributes.
        let ns = ctx
            .namespace(
                "e2e-ingress",
                labelled("enabled"),
                json!({
                    "tls.vespa.ai/ingress-issuer-name": "ingress-issuer",
                    "tls.vespa.ai/dns-names": "*.vespa.svc.cluster.local,localhost",
                    "tls.vespa.ai/common-name": "${POD_NAME}.vespa.svc.cluster.local",
                }),
            )
            .await?;
        let stored = ctx
            .create_vespaset(&ns, yaml_file("tests/golden/seed-step4-stripped.yaml"))
            .await?;
        let step5 = yaml_file("tests/golden/seed-step5-vespaset.yaml");
        let step4 = yaml_file("tests/golden/seed-step4-vespaset.yaml");
        ensure!(
            stored["spec"]["application"] == step5["spec"]["application"],
            "application differs from Step 5: {}",
            stored["spec"]["application"]
        );
        ensure!(
            stored["spec"]["configServer"] == step4["spec"]["configServer"],
            "configServer differs from Step 4"
        );
        Ok(())
    })
}

fn pods_injected_only_with_a_vespa_container(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("e2e-pods", labelled("enabled"), json!({}))
            .await?;
        let app = ctx
            .create_pod(
                &ns,
                "app",
                json!([{"name": "vespa", "image": "vespaengine/vespa"}]),
                json!({}),
            )
            .await?;
        let names: Vec<&str> = app["spec"]["volumes"]
            .as_array()
            .context("volumes")?
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        ensure!(
            names.contains(&"tls-certs") && names.contains(&"tls-config"),
            "app pod volumes {names:?}"
        );
        ensure!(app["spec"]["containers"][0]["env"][0]["name"] == "VESPA_TLS_CONFIG_FILE");
        let other = ctx
            .create_pod(
                &ns,
                "nginx",
                json!([{"name": "nginx", "image": "nginx"}]),
                json!({}),
            )
            .await?;
        ensure!(
            other["metadata"].get("annotations").is_none(),
            "non-Vespa pod annotated"
        );
        ensure!(
            other["spec"]["containers"][0].get("env").is_none(),
            "non-Vespa pod got env"
        );
        Ok(())
    })
}

/// The pods a VespaSet's controller makes from its injected templates carry
/// our entries but not our annotation (that is on the VespaSet): the webhook
/// admits them as they are, with no patch, in an enforced namespace too.
fn a_vespaset_s_pods_are_admitted_unpatched(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("e2e-vspods", labelled("enforced"), json!({}))
            .await?;
        let stored = ctx
            .create_vespaset(&ns, yaml_file("tests/golden/seed-step4-stripped.yaml"))
            .await?;
        for (section, component) in [("application", "vespa"), ("configServer", "configserver")] {
            let mut spec = stored["spec"][section]["podTemplate"]["spec"].clone();
            ensure!(
                spec["volumes"].as_array().is_some_and(|v| !v.is_empty()),
                "{section}: template not injected: {spec}"
            );
            // A pod needs an image; the seed's template leaves it to the operator.
            spec["containers"][0]["image"] = json!("vespaengine/vespa");
            let pod: Pod = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": format!("{}-0", section.to_lowercase()),
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/component": component},
                },
                "spec": spec,
            }))?;
            let created =
                serde_json::to_value(ctx.pods(&ns).create(&PostParams::default(), &pod).await?)?;
            ensure!(
                created
                    .pointer("/metadata/annotations/tls.vespa.ai~1injected")
                    .is_none(),
                "{section}: the pod was annotated: {}",
                created["metadata"]
            );
            // Ours only: the apiserver may add its service-account token volume.
            let names = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["name"].as_str())
                            .filter(|n| n.starts_with("tls-"))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            ensure!(
                names(&spec["volumes"]).len() == 2,
                "{section}: template volumes {}",
                spec["volumes"]
            );
            let vespa = &created["spec"]["containers"][0];
            ensure!(
                names(&created["spec"]["volumes"]) == names(&spec["volumes"])
                    && vespa["env"] == spec["containers"][0]["env"]
                    && names(&vespa["volumeMounts"])
                        == names(&spec["containers"][0]["volumeMounts"]),
                "{section}: stored pod differs from its template: {}",
                created["spec"]
            );
        }
        Ok(())
    })
}

fn unlabelled_namespaces_are_untouched(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx.namespace("e2e-plain", json!({}), json!({})).await?;
        let stored = ctx
            .create_vespaset(&ns, yaml_file("tests/golden/seed-step4-stripped.yaml"))
            .await?;
        ensure!(
            stored["metadata"].get("annotations").is_none(),
            "annotated in unlabelled namespace"
        );
        ensure!(
            stored["spec"]["application"]["podTemplate"]["spec"]
                .get("volumes")
                .is_none()
        );
        Ok(())
    })
}

fn enforced_rejects_opt_out_conflicts_and_tls_removal(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("e2e-enforced", labelled("enforced"), json!({}))
            .await?;
        let base = yaml_file("tests/golden/seed-step4-stripped.yaml");

        let mut opt_out = base.clone();
        opt_out["metadata"]["name"] = json!("opt-out");
        opt_out["metadata"]["annotations"] = json!({"tls.vespa.ai/inject": "false"});
        let e = ctx
            .create_vespaset(&ns, opt_out)
            .await
            .err()
            .context("opt-out accepted")?;
        ensure!(
            denial(e).contains("is not allowed where TLS is enforced"),
            "opt-out denial"
        );

        let mut conflict = base.clone();
        conflict["metadata"]["name"] = json!("conflict");
        conflict["spec"]["application"]["podTemplate"]["spec"]["volumes"] =
            json!([{"name": "tls-certs", "hostPath": {"path": "/etc/ssl"}}]);
        let e = ctx
            .create_vespaset(&ns, conflict)
            .await
            .err()
            .context("conflict accepted")?;
        let msg = denial(e);
        // The webhook's message reaches the client verbatim.
        ensure!(
            msg.contains("admission webhook \"vespasets.tls.vespa.ai\" denied the request")
                && msg.contains("volume \"tls-certs\" at /spec/application/podTemplate/spec/volumes/0 conflicts with TLS injection: the object has {\"hostPath\":{\"path\":\"/etc/ssl\"},\"name\":\"tls-certs\"}"),
            "conflict denial: {msg}"
        );

        let mut ok = base.clone();
        ok["metadata"]["name"] = json!("conformant");
        let stored = ctx.create_vespaset(&ns, ok).await?;
        ensure!(
            stored["spec"]["configServer"]["podTemplate"]["spec"]["volumes"][0]["name"]
                == "tls-certs"
        );

        // UPDATE that removes TLS (opt-out is the only way past injection): rejected.
        let mut removed = stored.clone();
        removed["metadata"]["annotations"]["tls.vespa.ai/inject"] = json!("false");
        removed["spec"]["application"]["podTemplate"]["spec"]
            .as_object_mut()
            .context("spec")?
            .remove("volumes");
        let dynamic: DynamicObject = serde_json::from_value(removed)?;
        let e = ctx
            .vespasets(&ns)
            .replace("conformant", &PostParams::default(), &dynamic)
            .await
            .err()
            .context("TLS removal accepted")?;
        ensure!(
            e.to_string().contains("tls.vespa.ai/inject"),
            "removal denial: {e}"
        );

        // UPDATE that drops TLS from the manifest (a plain re-apply): TLS is restored.
        let mut reapplied = serde_json::to_value(ctx.vespasets(&ns).get("conformant").await?)?;
        reapplied["spec"]["application"]["podTemplate"] =
            json!({"spec": {"containers": [{"name": "vespa"}]}});
        let dynamic: DynamicObject = serde_json::from_value(reapplied)?;
        let back = serde_json::to_value(
            ctx.vespasets(&ns)
                .replace("conformant", &PostParams::default(), &dynamic)
                .await?,
        )?;
        ensure!(
            back["spec"]["application"]["podTemplate"]["spec"]["volumes"][0]["name"] == "tls-certs",
            "TLS not restored on update"
        );

        // A Vespa pod without TLS cannot slip in while the mutating webhook works.
        let pod = ctx
            .create_pod(
                &ns,
                "p",
                json!([{"name": "vespa", "image": "v"}]),
                json!({}),
            )
            .await?;
        ensure!(
            pod["spec"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["name"] == "tls-certs"))
        );
        Ok(())
    })
}

fn namespace_annotations_change_attributes_and_invalid_ones_deny(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace(
                "e2e-annotated",
                labelled("enabled"),
                json!({"tls.vespa.ai/duration": "100h", "tls.vespa.ai/key-algorithm": "RSA"}),
            )
            .await?;
        let pod = ctx
            .create_pod(
                &ns,
                "p",
                json!([{"name": "vespa", "image": "v"}]),
                json!({}),
            )
            .await?;
        let attrs = &pod["spec"]["volumes"][0]["csi"]["volumeAttributes"];
        ensure!(
            attrs["csi.cert-manager.io/duration"] == "100h"
                && attrs["csi.cert-manager.io/key-size"] == "2048",
            "attributes {attrs}"
        );

        let bad = ctx
            .namespace(
                "e2e-invalid",
                labelled("enabled"),
                json!({"tls.vespa.ai/key-size": "7"}),
            )
            .await?;
        let e = ctx
            .create_pod(
                &bad,
                "p",
                json!([{"name": "vespa", "image": "v"}]),
                json!({}),
            )
            .await
            .err()
            .context("invalid annotation accepted")?;
        let msg = e.to_string();
        ensure!(
            msg.contains("namespace annotation tls.vespa.ai/key-size: \"7\" is invalid")
                && msg.contains("256, 384 or 521"),
            "invalid annotation denial: {msg}"
        );
        Ok(())
    })
}

fn label_changes_apply_without_restart(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx.namespace("e2e-relabel", json!({}), json!({})).await?;
        let pod = ctx
            .create_pod(
                &ns,
                "before",
                json!([{"name": "vespa", "image": "v"}]),
                json!({}),
            )
            .await?;
        ensure!(
            pod["spec"]
                .get("volumes")
                .is_none_or(|v| !v.to_string().contains("tls-certs")),
            "injected before labelling"
        );
        let api: Api<Namespace> = Api::all(ctx.client.clone());
        api.patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labelled("enabled")}})),
        )
        .await?;
        let start = Instant::now();
        for i in 0.. {
            let pod = ctx
                .create_pod(
                    &ns,
                    &format!("after-{i}"),
                    json!([{"name": "vespa", "image": "v"}]),
                    json!({}),
                )
                .await?;
            if pod["spec"]["volumes"].to_string().contains("tls-certs") {
                println!("    label change took effect after {:?}", start.elapsed());
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("label change not seen within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!()
    })
}

fn system_and_own_namespaces_are_never_sent(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        // Our server is started with `excludedNamespaces: []`: only the selector protects these.
        for ns in ["kube-system", "vespa-tls-webhook"] {
            ensure_namespace(&ctx.client, ns, labelled("enforced"), json!({})).await?;
            let name = format!("sys-{}", ctx.run_id);
            let pod = ctx
                .create_pod(
                    ns,
                    &name,
                    json!([{"name": "vespa", "image": "v"}]),
                    json!({}),
                )
                .await?;
            ensure!(
                pod["spec"]
                    .get("volumes")
                    .is_none_or(|v| !v.to_string().contains("tls-certs")),
                "{ns} pod was sent to the webhook"
            );
            let _ = ctx
                .pods(ns)
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
        }
        // Leave kube-system as it was.
        let api: Api<Namespace> = Api::all(ctx.client.clone());
        api.patch(
            "kube-system",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tls.vespa.ai/injection": null}}})),
        )
        .await?;
        Ok(())
    })
}

fn dry_run_gets_the_same_answer_and_stores_nothing(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("e2e-dryrun", labelled("enabled"), json!({}))
            .await?;
        let mut obj = yaml_file("tests/golden/seed-step4-stripped.yaml");
        obj["metadata"]["namespace"] = json!(ns);
        let dynamic: DynamicObject = serde_json::from_value(obj)?;
        let answered = serde_json::to_value(
            ctx.vespasets(&ns)
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &dynamic,
                )
                .await?,
        )?;
        ensure!(
            answered["spec"]["application"]["podTemplate"]["spec"]["volumes"][0]["name"]
                == "tls-certs",
            "dry run not injected"
        );
        ensure!(
            ctx.vespasets(&ns)
                .get_opt("vespaset-sample")
                .await?
                .is_none(),
            "dry run stored the object"
        );
        let enforced = ctx
            .namespace("e2e-dryrun-enforced", labelled("enforced"), json!({}))
            .await?;
        let mut bad = yaml_file("tests/golden/seed-step4-stripped.yaml");
        bad["metadata"]["namespace"] = json!(enforced);
        bad["metadata"]["annotations"] = json!({"tls.vespa.ai/inject": "false"});
        let dynamic: DynamicObject = serde_json::from_value(bad)?;
        ensure!(
            ctx.vespasets(&enforced)
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &dynamic
                )
                .await
                .is_err(),
            "dry run of a denied object succeeded"
        );
        Ok(())
    })
}

fn only_label_admins_may_downgrade_enforced(ctx: Ctx) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        let ns = ctx
            .namespace("e2e-protected", labelled("enforced"), json!({}))
            .await?;
        // alice may edit namespaces (RBAC) but is not a label admin.
        let rbac = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "e2e-namespace-editor"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch", "update"]}]
        });
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "e2e-namespace-editor"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "e2e-namespace-editor"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
        });
        apply(&ctx.client, rbac).await?;
        apply(&ctx.client, binding).await?;
        let mut config = Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&ctx.kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        config.auth_info.impersonate = Some("alice".into());
        config.auth_info.impersonate_groups = Some(vec!["developers".into()]);
        let alice: Api<Namespace> = Api::all(Client::try_from(config)?);
        let downgrade =
            Patch::Merge(json!({"metadata": {"labels": {"tls.vespa.ai/injection": "enabled"}}}));
        let e = alice
            .patch(&ns, &PatchParams::default(), &downgrade)
            .await
            .err()
            .context("alice downgraded enforced")?;
        ensure!(
            e.to_string()
                .contains("only the cluster policy's labelAdmins may"),
            "downgrade denial: {e}"
        );
        alice
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"team": "search"}}})),
            )
            .await
            .context("unrelated label edit")?;
        let admin: Api<Namespace> = Api::all(ctx.client.clone());
        admin
            .patch(&ns, &PatchParams::default(), &downgrade)
            .await
            .context("admin downgrade")?;
        Ok(())
    })
}

fn webhook_down_fail_blocks_only_selected_namespaces_ignore_proceeds(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        // Our own configurations, renamed, pointing at a closed port, selecting `e2e-down=yes`.
        let dead = closed_port();
        let selector = json!({"matchLabels": {"e2e-down": "yes"}});
        let (mut mutating, mut validating) =
            registrations(&format!("https://127.0.0.1:{dead}"), &[]);
        for (cfg, name) in [
            (&mut mutating, "e2e-down-ignore"),
            (&mut validating, "e2e-down-fail"),
        ] {
            cfg["metadata"] = json!({"name": name});
            for w in cfg["webhooks"].as_array_mut().context("webhooks")? {
                w["namespaceSelector"] = selector.clone();
                w.as_object_mut()
                    .context("webhook")?
                    .remove("objectSelector");
            }
        }
        validating["webhooks"]
            .as_array_mut()
            .context("webhooks")?
            .retain(|w| w["name"] != "namespaces.tls.vespa.ai");
        // Mutating only first: failurePolicy Ignore lets creation proceed, without TLS.
        apply(&ctx.client, mutating.clone()).await?;
        let down = ctx
            .namespace("e2e-down", json!({"e2e-down": "yes"}), json!({}))
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pod = ctx
            .create_pod(
                &down,
                "ignored",
                json!([{"name": "vespa", "image": "v"}]),
                json!({}),
            )
            .await?;
        ensure!(
            pod["spec"]
                .get("volumes")
                .is_none_or(|v| !v.to_string().contains("tls-certs"))
        );
        // Then validating: failurePolicy Fail blocks the selected namespace only.
        apply(&ctx.client, validating.clone()).await?;
        let blocked = wait_for_error(|| {
            ctx.create_vespaset(&down, yaml_file("tests/golden/seed-step4-stripped.yaml"))
        })
        .await?;
        ensure!(
            blocked.contains("failed calling webhook"),
            "blocked with {blocked}"
        );
        let free = ctx.namespace("e2e-up", json!({}), json!({})).await?;
        ctx.create_vespaset(&free, yaml_file("tests/golden/seed-step4-stripped.yaml"))
            .await
            .context("unselected namespace blocked")?;
        let m: Api<MutatingWebhookConfiguration> = Api::all(ctx.client.clone());
        let v: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
        m.delete("e2e-down-ignore", &DeleteParams::default())
            .await?;
        v.delete("e2e-down-fail", &DeleteParams::default()).await?;
        Ok(())
    })
}

fn apiserver_restart_stale_view_fails_readiness_then_recovers(
    ctx: Ctx,
) -> Pin<Box<dyn Future<Output = Result<()>>>> {
    Box::pin(async move {
        // The control plane's state dir: `control-plane.sh env` says, else the
        // kubeconfig lives in it.
        let state_dir = std::env::var("VTW_E2E_STATE_DIR").ok().map_or_else(
            || {
                std::path::Path::new(&ctx.kubeconfig)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .context("kubeconfig has no directory")
            },
            |d| Ok(std::path::PathBuf::from(d)),
        )?;
        ensure!(
            state_dir.join(".vespa-tls-webhook-control-plane").exists(),
            "{} is not a control plane of tests/e2e/control-plane.sh: cannot restart its apiserver",
            state_dir.display()
        );
        // A second webhook that calls its namespace view stale after 3 s (and
        // relists a quiet watch after 1.5 s); the registered one keeps the default.
        let (probe, port, ca) = start_webhook(
            &ctx.kubeconfig,
            &["--namespace-stale-after-secs", "3"],
            "vespa-tls-webhook-e2e-restart.log",
        )
        .await?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
                &ca,
            )
        {
            roots.add(cert?)?;
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
            .timeout(Duration::from_secs(5))
            .build()?;
        let readyz = || {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!("https://127.0.0.1:{port}/readyz"))
                    .send()
                    .await?;
                Ok::<_, anyhow::Error>((r.status().as_u16(), r.text().await?))
            }
        };
        ensure!(readyz().await?.0 == 200, "probe webhook not ready");
        // Quiet for longer than its bound, and still ready: quiet watches relist.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (status, text) = readyz().await?;
        ensure!(status == 200, "a quiet but healthy view went stale: {text}");

        let restart = tokio::task::spawn_blocking({
            let state_dir = state_dir.clone();
            move || {
                Command::new(repo("tests/e2e/control-plane.sh"))
                    .arg("restart")
                    .env("VTW_STATE_DIR", &state_dir)
                    .env("VTW_APISERVER_DOWN_SECS", "8")
                    .output()
            }
        });
        // While it is down: the view goes stale and /readyz says so.
        let start = Instant::now();
        let stale = loop {
            let (status, text) = readyz().await?;
            if status == 503 {
                break text;
            }
            ensure!(
                start.elapsed() < Duration::from_secs(12),
                "readiness never failed while the apiserver was down"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!(
            "    readiness failed {:?} into the restart: {stale}",
            start.elapsed()
        );
        ensure!(
            stale.contains("the namespace view is stale") && stale.contains("bound 3 s"),
            "readiness reason: {stale}"
        );
        let out = restart.await??;
        ensure!(
            out.status.success(),
            "control-plane.sh restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "    apiserver back after {:?}; {}",
            start.elapsed(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
        // The reflector recovers: ready again.
        let back = Instant::now();
        loop {
            let (status, text) = readyz().await?;
            if status == 200 {
                break;
            }
            ensure!(
                back.elapsed() < Duration::from_secs(30),
                "still not ready 30 s after the apiserver came back: {text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "    ready again {:?} after the apiserver came back",
            back.elapsed()
        );

        // Decisions stay correct: a namespace labelled after the restart is seen
        // by the registered webhook (through the apiserver) and by the probe
        // webhook, whose view went through the outage.
        let ns = ctx
            .namespace("e2e-after-restart", json!({}), json!({}))
            .await?;
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "restart-1",
                "kind": {"group": "k8s.ai.vespa", "version": "v1", "kind": "VespaSet"},
                "resource": {"group": "k8s.ai.vespa", "version": "v1", "resource": "vespasets"},
                "name": "vespaset-sample", "namespace": ns, "operation": "CREATE",
                "userInfo": {"username": "alice"},
                "object": yaml_file("tests/golden/seed-step4-stripped.yaml"),
            }
        });
        let probe_allows = || {
            let (http, review) = (http.clone(), review.clone());
            async move {
                let answer: Value = http
                    .post(format!("https://127.0.0.1:{port}/validate"))
                    .json(&review)
                    .send()
                    .await?
                    .json()
                    .await?;
                answer["response"]["allowed"]
                    .as_bool()
                    .with_context(|| format!("not a review answer: {answer}"))
            }
        };
        // Unlabelled: allowed (and now in the probe's cache).
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(probe_allows().await?, "unlabelled namespace denied");
        Api::<Namespace>::all(ctx.client.clone())
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labelled("enforced")}})),
            )
            .await?;
        let seen = Instant::now();
        for i in 0.. {
            let pod = ctx
                .create_pod(
                    &ns,
                    &format!("after-{i}"),
                    json!([{"name": "vespa", "image": "v"}]),
                    json!({}),
                )
                .await?;
            if pod["spec"]["volumes"].to_string().contains("tls-certs") {
                break;
            }
            ensure!(
                seen.elapsed() < Duration::from_secs(15),
                "label set after the restart not seen by the registered webhook within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        while probe_allows().await? {
            ensure!(
                seen.elapsed() < Duration::from_secs(15),
                "label set after the restart not seen by the probe webhook within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "    label set after the restart seen by both webhooks within {:?}",
            seen.elapsed()
        );
        drop(probe);
        Ok(())
    })
}

async fn wait_for_error<F, Fut>(f: F) -> Result<String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Err(e) => return Ok(e.to_string()),
            Ok(_) if start.elapsed() > Duration::from_secs(10) => bail!("never blocked"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

// ---------------------------------------------------------------- setup

struct Webhook {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start our binary with fresh certificates and `extra` flags, logging to
/// `$TMPDIR/<log>`; returns it, its port and the CA PEM.
async fn start_webhook(
    kubeconfig: &str,
    extra: &[&str],
    log: &str,
) -> Result<(Webhook, u16, Vec<u8>)> {
    let dir = tempfile::tempdir()?;
    let ca = write_certs(dir.path(), "e2e webhook CA")?;
    std::fs::write(dir.path().join("policy.yaml"), "excludedNamespaces: []\n")?;
    let log_path = std::env::temp_dir().join(log);
    let log = std::fs::File::create(&log_path)?;
    // The port is picked by the kernel at bind time and read back from the log.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vespa-tls-webhook"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .arg("--policy")
        .arg(dir.path().join("policy.yaml"))
        .args(["--kubeconfig", kubeconfig, "--log-format", "json"])
        .args(extra)
        .env_remove("POD_NAMESPACE")
        .env("RUST_LOG", listen::inherited_with_serving_line())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("start vespa-tls-webhook")?;
    let port = listen::wait_listening(&mut child, &log_path, Duration::from_secs(20))
        .await
        .map_err(|e| anyhow!("webhook: {e}"))?
        .addr
        .port();
    let webhook = Webhook { child, _dir: dir };
    // Ready when /readyz answers 200 (certificate loaded, namespace view synced).
    wait_ready(port, &ca, &log_path).await.context("webhook")?;
    Ok((webhook, port, ca))
}

async fn run_all(kubeconfig: &str) -> Result<bool> {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let (webhook, port, ca) = start_webhook(kubeconfig, &[], "vespa-tls-webhook-e2e.log").await?;
    let (m, v) = registrations(&format!("https://127.0.0.1:{port}"), &ca);
    apply(&client, m).await?;
    apply(&client, v).await?;
    // Registrations take effect asynchronously in the apiserver.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            % 0xffffff
    );
    let ctx = Ctx {
        client: client.clone(),
        kubeconfig: kubeconfig.to_string(),
        run_id,
    };
    let scenarios: &[(&str, Scenario)] = &[
        (
            "enabled_vespaset_is_stored_as_seed_step4",
            enabled_vespaset_is_stored_as_seed_step4,
        ),
        (
            "ingress_annotation_gives_seed_step5",
            ingress_annotation_gives_seed_step5,
        ),
        (
            "pods_injected_only_with_a_vespa_container",
            pods_injected_only_with_a_vespa_container,
        ),
        (
            "a_vespaset_s_pods_are_admitted_unpatched",
            a_vespaset_s_pods_are_admitted_unpatched,
        ),
        (
            "unlabelled_namespaces_are_untouched",
            unlabelled_namespaces_are_untouched,
        ),
        (
            "enforced_rejects_opt_out_conflicts_and_tls_removal",
            enforced_rejects_opt_out_conflicts_and_tls_removal,
        ),
        (
            "namespace_annotations_change_attributes_and_invalid_ones_deny",
            namespace_annotations_change_attributes_and_invalid_ones_deny,
        ),
        (
            "label_changes_apply_without_restart",
            label_changes_apply_without_restart,
        ),
        (
            "system_and_own_namespaces_are_never_sent",
            system_and_own_namespaces_are_never_sent,
        ),
        (
            "dry_run_gets_the_same_answer_and_stores_nothing",
            dry_run_gets_the_same_answer_and_stores_nothing,
        ),
        (
            "only_label_admins_may_downgrade_enforced",
            only_label_admins_may_downgrade_enforced,
        ),
        (
            "webhook_down_fail_blocks_only_selected_namespaces_ignore_proceeds",
            webhook_down_fail_blocks_only_selected_namespaces_ignore_proceeds,
        ),
        // Last: it restarts the apiserver.
        (
            "apiserver_restart_stale_view_fails_readiness_then_recovers",
            apiserver_restart_stale_view_fails_readiness_then_recovers,
        ),
    ];
    // The apiserver restart needs longer than the others: it stays down for 8 s
    // and kube-apiserver takes a while to start on two shared cores.
    let limit = |name: &str| {
        Duration::from_secs(if name.starts_with("apiserver_restart") {
            150
        } else {
            60
        })
    };
    let (passed, failed) = common::run_scenarios("e2e", &ctx, scenarios, limit).await;
    // Unregister so the control plane is usable after the suite.
    unregister(&client).await;
    drop(webhook);
    Ok(common::verdict(
        "e2e",
        passed,
        failed,
        &format!("against kube-apiserver, webhook on 127.0.0.1:{port}"),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    common::main(
        "e2e",
        |kubeconfig| async move { run_all(&kubeconfig).await },
    )
    .await
}
