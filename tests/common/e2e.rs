//! What the two end-to-end suites (`tests/e2e`, `tests/e2e_controller`) share:
//! fixture files, namespaces, the webhook registrations of `deploy/`, server-side
//! apply, and the scenario runner with its rule for a missing control plane
//! (skip locally, fail under CI). Each suite includes it with
//! `#[path = "../common/e2e.rs"] mod common;`; not every suite uses every helper.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A scenario: one async check against the control plane, given the suite's context.
pub type Scenario<C> = fn(C) -> Pin<Box<dyn Future<Output = Result<()>>>>;

/// A path under the crate root.
pub fn repo(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// A YAML file of the crate as JSON.
pub fn yaml_file(rel: &str) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo(rel)).expect("read fixture"))
        .expect("parse fixture")
}

/// Every document of a multi-document YAML file of the crate.
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo(rel)).expect("read fixture");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The injection label with `mode`.
pub fn labelled(mode: &str) -> Value {
    json!({"tls.vespa.ai/injection": mode})
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Create the namespace, or set its labels and annotations when it exists. Adds
/// the namespace-name label Kubernetes ≥ 1.21 sets itself (1.20 does not).
pub async fn ensure_namespace(
    client: &Client,
    name: &str,
    labels: Value,
    annotations: Value,
) -> Result<()> {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels, "annotations": annotations}
    }))?;
    let api: Api<Namespace> = Api::all(client.clone());
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            label_namespace(client, name, labels, annotations).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Merge `labels` and `annotations` into an existing namespace (a `null` value
/// removes one).
pub async fn label_namespace(
    client: &Client,
    name: &str,
    labels: Value,
    annotations: Value,
) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": labels, "annotations": annotations}})),
    )
    .await?;
    Ok(())
}

/// The deploy configurations (mutating, validating), pointed at `base` with
/// `ca_pem` as caBundle, without the pod webhooks' `matchConditions`: the test
/// apiserver (1.20) does not know the field (1.27+, GA in 1.30) and its server-side
/// apply refuses it. It only keeps non-Vespa pods away from the webhook, which
/// allows them unchanged anyway; deploy/check.sh evaluates it on
/// tests/golden/vespa-pods.yaml.
pub fn registrations(base: &str, ca_pem: &[u8]) -> (Value, Value) {
    let mut docs = yaml_docs("deploy/webhook-configurations.yaml");
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    for doc in &mut docs {
        if let Some(a) = doc["metadata"].as_object_mut() {
            a.remove("annotations");
        }
        for w in doc["webhooks"].as_array_mut().expect("webhooks") {
            let path = w["clientConfig"]["service"]["path"]
                .as_str()
                .expect("path")
                .to_string();
            w["clientConfig"] = json!({"url": format!("{base}{path}"), "caBundle": bundle});
            if let Some(w) = w.as_object_mut() {
                w.remove("matchConditions");
            }
        }
    }
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in deploy/webhook-configurations.yaml"))
            .clone()
    };
    (
        find("MutatingWebhookConfiguration"),
        find("ValidatingWebhookConfiguration"),
    )
}

/// Remove both registrations (so the control plane is usable after a suite).
pub async fn unregister(client: &Client) {
    let m: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let v: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = m
        .delete("vespa-tls-webhook", &DeleteParams::default())
        .await;
    let _ = v
        .delete("vespa-tls-webhook", &DeleteParams::default())
        .await;
}

/// Server-side apply of a cluster-scoped object of a kind the suites register.
pub async fn apply(client: &Client, obj: Value) -> Result<()> {
    let kind = obj["kind"].as_str().context("kind")?.to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .context("name")?
        .to_string();
    let params = PatchParams::apply("vespa-tls-webhook-e2e").force();
    macro_rules! ssa {
        ($t:ty) => {{
            let api: Api<$t> = Api::all(client.clone());
            api.patch(
                &name,
                &params,
                &Patch::Apply(serde_json::from_value::<$t>(obj)?),
            )
            .await?;
        }};
    }
    match kind.as_str() {
        "MutatingWebhookConfiguration" => ssa!(MutatingWebhookConfiguration),
        "ValidatingWebhookConfiguration" => ssa!(ValidatingWebhookConfiguration),
        "ClusterRole" => ssa!(k8s_openapi::api::rbac::v1::ClusterRole),
        "ClusterRoleBinding" => ssa!(k8s_openapi::api::rbac::v1::ClusterRoleBinding),
        other => bail!("cannot apply {other}"),
    }
    Ok(())
}

/// The suite's entry point: without `VTW_E2E_KUBECONFIG` it is skipped locally
/// and fails under CI; otherwise `run_all(kubeconfig)` decides.
pub async fn main<F, Fut>(suite: &str, run_all: F) -> ExitCode
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(kubeconfig) = std::env::var("VTW_E2E_KUBECONFIG") else {
        let how = format!(
            "tests/e2e/control-plane.sh up && eval \"$(tests/e2e/control-plane.sh env)\" && cargo test --test {suite}"
        );
        if std::env::var_os("CI").is_some() {
            eprintln!(
                "{suite}: VTW_E2E_KUBECONFIG is not set under CI; the control plane must be up ({how})"
            );
            return ExitCode::FAILURE;
        }
        println!("{suite}: SKIPPED — no control plane. Run: {how}");
        return ExitCode::SUCCESS;
    };
    match run_all(kubeconfig).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{suite}: setup failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run the scenarios whose name contains the command line's filter (if any),
/// each within `limit(name)`, printing one line each; (passed, failed).
pub async fn run_scenarios<C: Clone>(
    suite: &str,
    ctx: &C,
    scenarios: &[(&str, Scenario<C>)],
    limit: impl Fn(&str) -> Duration,
) -> (usize, usize) {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let start = Instant::now();
        match tokio::time::timeout(limit(name), scenario(ctx.clone())).await {
            Ok(Ok(())) => {
                passed += 1;
                println!("{suite} {name} ... ok ({:?})", start.elapsed());
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("{suite} {name} ... FAILED: {e:#}");
            }
            Err(_) => {
                failed += 1;
                println!("{suite} {name} ... FAILED: timed out");
            }
        }
    }
    (passed, failed)
}

/// The suite's verdict line; a filter that matched nothing is a failure.
pub fn verdict(suite: &str, passed: usize, failed: usize, against: &str) -> bool {
    println!("{suite} result: {passed} passed; {failed} failed ({against})");
    if passed == 0 && failed == 0 {
        println!("{suite}: no scenario matched the filter");
        return false;
    }
    failed == 0
}

/// Write a CA (common name `ca_name`) and a serving certificate for localhost and
/// 127.0.0.1 into `dir` (`tls.crt`, `tls.key`, `ca.crt`); returns the CA PEM.
pub fn write_certs(dir: &std::path::Path, ca_name: &str) -> Result<Vec<u8>> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse()?));
    let cert = params.signed_by(&key, &ca)?;
    std::fs::write(dir.join("tls.crt"), cert.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    Ok(ca.pem().into_bytes())
}

/// Wait up to 20 s for `https://127.0.0.1:{port}/readyz` to answer 200 (trusting
/// `ca_pem`); the error names `log`.
pub async fn wait_ready(port: u16, ca_pem: &[u8], log: &std::path::Path) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::pem::PemObject::from_pem_slice(ca_pem)?)?;
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()?;
    let url = format!("https://127.0.0.1:{port}/readyz");
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("not ready within 20 s; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
