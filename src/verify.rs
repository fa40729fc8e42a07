//! `vespa-tls-webhook verify`: scan the cluster for what TLS injection cannot fix
//! by itself.
//!
//! In every namespace labelled `enabled`/`enforced` (under the cluster policy) it
//! lists:
//! - VespaSets and Vespa pods (a container named `vespa`) that lack complete,
//!   conformant TLS (the validator's verdict, [`crate::validate::check`]) — e.g.
//!   created while the webhook was down — or whose `tls.vespa.ai/injected`
//!   fingerprint is not the namespace's current one (a setting changed since);
//! - a missing or wrong TLS ConfigMap (`config-map`, `ingress-config-map`);
//! - a missing issuer (`issuer-name`/`issuer-kind`, and the ingress one), or the
//!   cert-manager API not being served at all;
//! - a namespace whose label or `tls.vespa.ai/*` annotations are invalid.
//!
//! Exit 1 when anything is listed, 0 when clean, 2 when the cluster cannot be read.
//! [`findings`] is the pure part: a [`Snapshot`] of the objects in, findings out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;

use crate::controller::desired::{self, CERT_MANAGER_GROUP, ObjectKind, content_differences};
use crate::policy::{ClusterPolicy, INJECT_ANNOTATION, INJECTED_ANNOTATION, Mode, NamespaceMeta};
use crate::settings::{IssuerRef, TlsSettings};
use crate::stdio::{eprint_line, write_stdout};
use crate::target::{Kind, annotation, is_vespa_pod};

/// `verify` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Only this namespace (default: every namespace).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    /// Kubeconfig (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Cluster policy file, as given to the webhook (built-in policy when absent).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// `verify` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// An aligned table for people.
    Table,
    /// One JSON document (`findings`, `notes`, `checked`).
    Json,
}

/// Everything `verify` read from the cluster.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The namespaces scanned, with their objects.
    pub namespaces: Vec<NamespaceScan>,
    /// Whether `k8s.ai.vespa/v1` vespasets are served.
    pub vespaset_api: bool,
    /// Whether `cert-manager.io/v1` issuers are served.
    pub cert_manager_api: bool,
    /// Names of the ClusterIssuers looked up that exist.
    pub cluster_issuers: BTreeSet<String>,
}

/// One namespace and what was read in it.
#[derive(Debug, Clone, Default)]
pub struct NamespaceScan {
    /// Its labels and annotations.
    pub meta: NamespaceMeta,
    /// Its VespaSets (full objects).
    pub vespasets: Vec<Value>,
    /// Its pods (full objects; non-Vespa pods are ignored).
    pub pods: Vec<Value>,
    /// The ConfigMaps looked up that exist, by name.
    pub config_maps: BTreeMap<String, Value>,
    /// Names of the Issuers looked up that exist.
    pub issuers: BTreeSet<String>,
}

/// One thing to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Namespace.
    pub namespace: String,
    /// `VespaSet`, `Pod`, `ConfigMap`, `Issuer`, `ClusterIssuer` or `Namespace`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// What is wrong, in one line.
    pub problem: String,
    /// Every detail (e.g. each missing part of the TLS).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// How much was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Checked {
    /// Labelled namespaces.
    pub namespaces: usize,
    /// VespaSets.
    pub vespasets: usize,
    /// Vespa pods.
    pub pods: usize,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Report {
    /// What to fix; the exit code is 1 when not empty.
    pub findings: Vec<Finding>,
    /// What could not be checked (not a failure).
    pub notes: Vec<String>,
    /// Counts.
    pub checked: Checked,
}

/// Why `verify` could not scan (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The cluster client.
    #[error(transparent)]
    Client(#[from] crate::controller::ControllerError),
    /// `--policy`.
    #[error(transparent)]
    Policy(#[from] crate::offline::OfflineError),
    /// `--namespace` names no namespace.
    #[error("namespace {0:?} not found")]
    NoNamespace(String),
    /// A request failed.
    #[error("{what}: {source}")]
    Api {
        /// What was read.
        what: String,
        /// The error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Output could not be encoded.
    #[error("cannot encode the report: {0}")]
    Encode(String),
}

/// Whether the namespace is one `verify` looks into.
fn selected(meta: &NamespaceMeta, policy: &ClusterPolicy) -> bool {
    !matches!(policy.mode_for(meta), Ok(Mode::Disabled))
}

/// The findings for a snapshot under a policy (pure).
pub fn findings(snapshot: &Snapshot, policy: &ClusterPolicy) -> Report {
    let mut report = Report::default();
    if !snapshot.vespaset_api {
        report.notes.push(
            "the VespaSet API (k8s.ai.vespa/v1 vespasets) is not served: no VespaSets checked"
                .into(),
        );
    }
    for scan in &snapshot.namespaces {
        let meta = &scan.meta;
        if !selected(meta, policy) {
            continue;
        }
        report.checked.namespaces += 1;
        let ns = meta.name.as_str();
        let mut add = |kind: &str, name: &str, problem: String, details: Vec<String>| {
            report.findings.push(Finding {
                namespace: ns.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
                problem,
                details,
            });
        };
        let mode = match policy.mode_for(meta) {
            Ok(mode) => mode,
            Err(e) => {
                add("Namespace", ns, e.to_string(), Vec::new());
                continue;
            }
        };
        let settings = match policy.settings_for(meta) {
            Ok(s) => s,
            Err(errors) => {
                add(
                    "Namespace",
                    ns,
                    "its TLS settings are refused, so the webhook denies its VespaSets and Vespa pods".into(),
                    errors.iter().map(ToString::to_string).collect(),
                );
                continue;
            }
        };
        // ConfigMaps: what the controller would create, compared with what is there.
        if let Ok(plan) = desired::desired(meta, policy) {
            for want in plan
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::ConfigMap)
            {
                match scan.config_maps.get(&want.name) {
                    None => add(
                        "ConfigMap",
                        &want.name,
                        "missing: Vespa pods mount it and stay in ContainerCreating without it (the controller creates it: is `serve --controller` running?)".into(),
                        Vec::new(),
                    ),
                    Some(have) => {
                        let diffs = content_differences(have, &want.body);
                        if !diffs.is_empty() {
                            add(
                                "ConfigMap",
                                &want.name,
                                format!("wrong content: {} (want: {})", diffs.join(", "), want.purpose),
                                Vec::new(),
                            );
                        }
                    }
                }
            }
        }
        for (issuer, what) in issuers_of(&settings) {
            if issuer.group != CERT_MANAGER_GROUP {
                report.notes.push(format!(
                    "{ns}: {what} {} {:?} (group {}) is an external issuer: not checked",
                    issuer.kind, issuer.name, issuer.group
                ));
                continue;
            }
            let found = match issuer.kind.as_str() {
                "Issuer" => scan.issuers.contains(&issuer.name),
                "ClusterIssuer" => snapshot.cluster_issuers.contains(&issuer.name),
                other => {
                    report.notes.push(format!(
                        "{ns}: {what} kind {other:?} of group {CERT_MANAGER_GROUP} is not checked"
                    ));
                    continue;
                }
            };
            if !snapshot.cert_manager_api {
                report.findings.push(Finding {
                    namespace: ns.to_string(),
                    kind: issuer.kind.clone(),
                    name: issuer.name.clone(),
                    problem: format!("cannot exist: the cert-manager.io/v1 API is not served (cert-manager and its CRDs are not installed); the csi-driver cannot issue the {what} certificates"),
                    details: Vec::new(),
                });
            } else if !found {
                let hint = if issuer.kind == "Issuer" && what == "mTLS" {
                    " (create it, or annotate the namespace tls.vespa.ai/bootstrap-ca: \"true\")"
                } else {
                    ""
                };
                report.findings.push(Finding {
                    namespace: ns.to_string(),
                    kind: issuer.kind.clone(),
                    name: issuer.name.clone(),
                    problem: format!(
                        "missing: the csi-driver cannot issue the {what} certificates, Vespa pods stay in ContainerCreating{hint}"
                    ),
                    details: Vec::new(),
                });
            }
        }
        let fingerprint = settings.fingerprint();
        let objects = scan.vespasets.iter().map(|o| (Kind::VespaSet, o)).chain(
            scan.pods
                .iter()
                .filter(|p| is_vespa_pod(p) && !crate::controller::is_terminating(p))
                .map(|o| (Kind::Pod, o)),
        );
        for (kind, obj) in objects {
            match kind {
                Kind::VespaSet => report.checked.vespasets += 1,
                _ => report.checked.pods += 1,
            }
            if let Some((problem, details)) =
                check_object(obj, kind, mode, &settings, &fingerprint, policy)
            {
                report.findings.push(Finding {
                    namespace: ns.to_string(),
                    kind: kind.as_str().to_string(),
                    name: crate::target::pointer(obj, "/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    problem,
                    details,
                });
            }
        }
    }
    report
}

fn issuers_of(settings: &TlsSettings) -> Vec<(IssuerRef, &'static str)> {
    let mut out = vec![(settings.mtls.issuer.clone(), "mTLS")];
    if let Some(ing) = &settings.ingress
        && ing.cert.issuer != settings.mtls.issuer
    {
        out.push((ing.cert.issuer.clone(), "ingress"));
    }
    out
}

fn check_object(
    obj: &Value,
    kind: Kind,
    mode: Mode,
    settings: &TlsSettings,
    fingerprint: &str,
    policy: &ClusterPolicy,
) -> Option<(String, Vec<String>)> {
    let redo = match kind {
        Kind::Pod => "recreate the pod",
        _ => "re-apply it so the webhook injects TLS",
    };
    match annotation(obj, INJECT_ANNOTATION) {
        None | Some("true") => {}
        Some("false") if mode != Mode::Enforced && policy.constraints.allow_opt_out => return None,
        Some("false") => {
            return Some((
                format!(
                    "opted out with {INJECT_ANNOTATION}: \"false\", which is not allowed here; remove the annotation and {redo}"
                ),
                Vec::new(),
            ));
        }
        Some(other) => {
            return Some((
                format!(
                    "annotation {INJECT_ANNOTATION}: {other:?} is invalid (\"true\" or \"false\")"
                ),
                Vec::new(),
            ));
        }
    }
    let problems = crate::validate::check(obj, kind, settings, &policy.constraints);
    if !problems.is_empty() {
        let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Some((
            format!(
                "lacks TLS ({} problem{}; created while the webhook was not answering?); {redo}",
                details.len(),
                if details.len() == 1 { "" } else { "s" }
            ),
            details,
        ));
    }
    match annotation(obj, INJECTED_ANNOTATION) {
        Some(seen) if seen != fingerprint => Some((
            format!(
                "outdated TLS: {INJECTED_ANNOTATION} is {seen}, the namespace's settings are now {fingerprint}; {redo}"
            ),
            Vec::new(),
        )),
        Some(_) => None,
        // The pods of an injected VespaSet carry no fingerprint: the webhook
        // admits a pod that arrives with TLS complete as it is. Their entries
        // are compared with what the namespace's current settings give.
        None if kind == Kind::Pod => {
            match crate::inject::inject(obj, kind, settings, policy.constraints.allow_mixed_mode) {
                Ok(injection) if injection.patch.is_empty() => None,
                _ => Some((
                    format!(
                        "outdated TLS: its TLS entries are not what the namespace's settings ({fingerprint}) give now; {redo}"
                    ),
                    Vec::new(),
                )),
            }
        }
        None => None,
    }
}

/// The report as an aligned table (or a one-line all-clear).
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    if report.findings.is_empty() {
        out.push_str(&format!(
            "no findings: {} labelled namespace(s), {} VespaSet(s), {} Vespa pod(s) checked\n",
            report.checked.namespaces, report.checked.vespasets, report.checked.pods
        ));
    } else {
        let header = ["NAMESPACE", "KIND", "NAME", "PROBLEM"];
        let rows: Vec<[&str; 4]> = report
            .findings
            .iter()
            .map(|f| {
                [
                    f.namespace.as_str(),
                    f.kind.as_str(),
                    f.name.as_str(),
                    f.problem.as_str(),
                ]
            })
            .collect();
        let mut width = [0usize; 3];
        for row in std::iter::once(&header).chain(rows.iter()) {
            for (w, cell) in width.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for (i, row) in std::iter::once(&header).chain(rows.iter()).enumerate() {
            let line = format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2]
            );
            out.push_str(line.trim_end());
            out.push('\n');
            if i > 0 {
                for d in &report.findings[i - 1].details {
                    out.push_str(&format!(
                        "{:indent$}    - {d}\n",
                        "",
                        indent = width[0] + width[1] + width[2] + 6 - 4
                    ));
                }
            }
        }
        out.push_str(&format!(
            "{} finding(s) in {} labelled namespace(s) ({} VespaSet(s), {} Vespa pod(s) checked)\n",
            report.findings.len(),
            report.checked.namespaces,
            report.checked.vespasets,
            report.checked.pods
        ));
    }
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

fn api_err(what: String) -> impl FnOnce(kube::Error) -> VerifyError {
    move |e| VerifyError::Api {
        what,
        source: Box::new(e),
    }
}

/// Whether `group_version` serves `plural` (false when the group is unknown).
async fn served(client: &Client, group_version: &str, plural: &str) -> Result<bool, VerifyError> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(api_err(format!("discovery of {group_version}"))(e)),
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn meta_of(ns: &Namespace) -> NamespaceMeta {
    NamespaceMeta {
        name: ns.name_any(),
        labels: ns.metadata.labels.clone().unwrap_or_default(),
        annotations: ns.metadata.annotations.clone().unwrap_or_default(),
    }
}

fn to_values<T: Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

/// Read what [`findings`] needs from the cluster.
pub async fn scan(
    client: &Client,
    only: Option<&str>,
    policy: &ClusterPolicy,
) -> Result<Snapshot, VerifyError> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let namespaces = match only {
        Some(name) => vec![
            ns_api
                .get_opt(name)
                .await
                .map_err(api_err(format!("namespace {name}")))?
                .ok_or_else(|| VerifyError::NoNamespace(name.to_string()))?,
        ],
        None => {
            ns_api
                .list(&ListParams::default())
                .await
                .map_err(api_err("list namespaces".into()))?
                .items
        }
    };
    let mut snapshot = Snapshot {
        vespaset_api: served(client, "k8s.ai.vespa/v1", "vespasets").await?,
        cert_manager_api: served(client, "cert-manager.io/v1", "issuers").await?,
        ..Snapshot::default()
    };
    let vespasets = resource("k8s.ai.vespa", "v1", "VespaSet", "vespasets");
    let issuers = resource(CERT_MANAGER_GROUP, "v1", "Issuer", "issuers");
    let cluster_issuers = resource(CERT_MANAGER_GROUP, "v1", "ClusterIssuer", "clusterissuers");
    for ns in namespaces {
        let meta = meta_of(&ns);
        if !selected(&meta, policy) {
            continue;
        }
        let name = meta.name.clone();
        let mut s = NamespaceScan {
            meta,
            ..NamespaceScan::default()
        };
        if snapshot.vespaset_api {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &name, &vespasets);
            s.vespasets = to_values(
                api.list(&ListParams::default())
                    .await
                    .map_err(api_err(format!("list VespaSets in {name}")))?
                    .items,
            );
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
        s.pods = to_values(
            pods.list(&ListParams::default())
                .await
                .map_err(api_err(format!("list pods in {name}")))?
                .items,
        );
        if let Ok(settings) = policy.settings_for(&s.meta) {
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
            let mut names = vec![settings.config_map.clone()];
            names.extend(settings.ingress.as_ref().map(|i| i.config_map.clone()));
            for cm in names {
                if let Some(found) = cms
                    .get_opt(&cm)
                    .await
                    .map_err(api_err(format!("ConfigMap {name}/{cm}")))?
                    && let Ok(v) = serde_json::to_value(found)
                {
                    s.config_maps.insert(cm, v);
                }
            }
            if snapshot.cert_manager_api {
                for (issuer, _) in issuers_of(&settings) {
                    if issuer.group != CERT_MANAGER_GROUP {
                        continue;
                    }
                    let (api, set): (Api<DynamicObject>, _) = match issuer.kind.as_str() {
                        "Issuer" => (
                            Api::namespaced_with(client.clone(), &name, &issuers),
                            &mut s.issuers,
                        ),
                        "ClusterIssuer" => (
                            Api::all_with(client.clone(), &cluster_issuers),
                            &mut snapshot.cluster_issuers,
                        ),
                        _ => continue,
                    };
                    if api
                        .get_opt(&issuer.name)
                        .await
                        .map_err(api_err(format!("{} {}", issuer.kind, issuer.name)))?
                        .is_some()
                    {
                        set.insert(issuer.name.clone());
                    }
                }
            }
        }
        snapshot.namespaces.push(s);
    }
    Ok(snapshot)
}

async fn verify(args: &VerifyArgs) -> Result<Report, VerifyError> {
    let policy = crate::offline::load_policy(args.policy.as_deref())?;
    let client = crate::controller::kube_client(args.kubeconfig.as_deref()).await?;
    let snapshot = scan(&client, args.namespace.as_deref(), &policy).await?;
    Ok(findings(&snapshot, &policy))
}

/// Run `verify`: print the report; exit 1 with findings, 0 clean, 2 on errors.
pub fn run(args: VerifyArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprint_line(format_args!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(verify(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprint_line(format_args!("error: {e}"));
            return ExitCode::from(2);
        }
    };
    let text = match args.output {
        Output::Table => render_table(&report),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(t) => t + "\n",
            Err(e) => {
                eprint_line(format_args!(
                    "error: {}",
                    VerifyError::Encode(e.to_string())
                ));
                return ExitCode::from(2);
            }
        },
    };
    let code = if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    write_stdout(&text, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::inject;
    use crate::policy::INJECTION_LABEL;
    use serde_json::json;

    fn labelled(name: &str, mode: &str) -> NamespaceMeta {
        NamespaceMeta::named(name).with_label(INJECTION_LABEL, mode)
    }

    fn vespaset(name: &str) -> Value {
        json!({
            "apiVersion": "k8s.ai.vespa/v1", "kind": "VespaSet",
            "metadata": {"name": name},
            "spec": {
                "configServer": {"podTemplate": {"spec": {"containers": [{"name": "vespa"}]}}},
                "application": {"podTemplate": {"spec": {"containers": [{"name": "vespa"}]}}},
            }
        })
    }

    fn pod(name: &str, container: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [{"name": container}]}})
    }

    /// The object as the webhook would have stored it.
    fn injected(obj: &Value, kind: Kind, meta: &NamespaceMeta, policy: &ClusterPolicy) -> Value {
        let settings = policy.settings_for(meta).unwrap();
        let patch = inject(obj, kind, &settings, false).unwrap().patch;
        crate::inject::apply(obj, &patch).unwrap()
    }

    /// A namespace with everything in place (ConfigMap, issuer).
    fn healthy(meta: NamespaceMeta, policy: &ClusterPolicy) -> NamespaceScan {
        let plan = desired::desired(&meta, policy).unwrap();
        let settings = policy.settings_for(&meta).unwrap();
        NamespaceScan {
            config_maps: plan
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::ConfigMap)
                .map(|o| (o.name.clone(), o.body.clone()))
                .collect(),
            issuers: issuers_of(&settings)
                .into_iter()
                .map(|(i, _)| i.name)
                .collect(),
            meta,
            ..NamespaceScan::default()
        }
    }

    fn snapshot(namespaces: Vec<NamespaceScan>) -> Snapshot {
        Snapshot {
            namespaces,
            vespaset_api: true,
            cert_manager_api: true,
            cluster_issuers: BTreeSet::new(),
        }
    }

    fn problems(report: &Report) -> Vec<(String, String, String)> {
        report
            .findings
            .iter()
            .map(|f| (f.kind.clone(), f.name.clone(), f.problem.clone()))
            .collect()
    }

    #[test]
    fn clean_namespace_has_no_findings() {
        let p = ClusterPolicy::default();
        let meta = labelled("vespa", "enabled");
        let mut scan = healthy(meta.clone(), &p);
        scan.vespasets = vec![injected(&vespaset("v"), Kind::VespaSet, &meta, &p)];
        scan.pods = vec![
            injected(&pod("p", "vespa"), Kind::Pod, &meta, &p),
            pod("nginx", "nginx"),
        ];
        let report = findings(&snapshot(vec![scan]), &p);
        assert_eq!(report.findings, []);
        assert_eq!(
            report.checked,
            Checked {
                namespaces: 1,
                vespasets: 1,
                pods: 1
            }
        );
        assert!(
            render_table(&report)
                .starts_with("no findings: 1 labelled namespace(s), 1 VespaSet(s), 1 Vespa pod(s)")
        );
    }

    #[test]
    fn objects_without_tls_are_listed_with_every_detail() {
        let p = ClusterPolicy::default();
        let mut scan = healthy(labelled("vespa", "enforced"), &p);
        scan.vespasets = vec![vespaset("bare")];
        scan.pods = vec![pod("bare-pod", "vespa")];
        let report = findings(&snapshot(vec![scan]), &p);
        let found = problems(&report);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("VespaSet", "bare")
        );
        assert!(found[0].2.starts_with("lacks TLS"), "{}", found[0].2);
        assert!(found[0].2.contains("re-apply"));
        assert!(
            report.findings[0]
                .details
                .iter()
                .any(|d| d.contains("VESPA_TLS_CONFIG_FILE")),
            "{:?}",
            report.findings[0].details
        );
        assert_eq!(
            (found[1].0.as_str(), found[1].1.as_str()),
            ("Pod", "bare-pod")
        );
        assert!(found[1].2.contains("recreate the pod"));
        let table = render_table(&report);
        assert!(
            table.starts_with("NAMESPACE  KIND      NAME      PROBLEM\n"),
            "{table}"
        );
        assert!(
            table.contains("2 finding(s) in 1 labelled namespace(s)"),
            "{table}"
        );
    }

    #[test]
    fn outdated_fingerprints_are_listed() {
        let p = ClusterPolicy::default();
        let meta = labelled("vespa", "enabled");
        let stored = injected(&vespaset("old"), Kind::VespaSet, &meta, &p);
        // The admin changes a setting that keeps the old TLS conformant.
        let changed = meta
            .clone()
            .with_annotation("tls.vespa.ai/duration", "100h");
        let mut scan = healthy(changed, &p);
        scan.vespasets = vec![stored];
        let report = findings(&snapshot(vec![scan]), &p);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(
            report.findings[0]
                .problem
                .starts_with("outdated TLS: tls.vespa.ai/injected is v1-"),
            "{}",
            report.findings[0].problem
        );
    }

    #[test]
    fn pods_without_a_fingerprint_are_compared_with_the_settings() {
        // A VespaSet's pod, made from its injected template: TLS, no fingerprint.
        let p = ClusterPolicy::default();
        let meta = labelled("vespa", "enabled");
        let mut from_template = injected(&pod("p", "vespa"), Kind::Pod, &meta, &p);
        from_template["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let mut scan = healthy(meta.clone(), &p);
        scan.pods = vec![from_template.clone()];
        let report = findings(&snapshot(vec![scan]), &p);
        assert_eq!(report.findings, []);
        // The admin changes a setting that keeps the old TLS conformant.
        let changed = meta.with_annotation("tls.vespa.ai/duration", "100h");
        let mut scan = healthy(changed, &p);
        scan.pods = vec![from_template];
        let report = findings(&snapshot(vec![scan]), &p);
        let found = problems(&report);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].2.starts_with(
                "outdated TLS: its TLS entries are not what the namespace's settings (v1-"
            ),
            "{}",
            found[0].2
        );
        assert!(found[0].2.ends_with("recreate the pod"), "{}", found[0].2);
    }

    #[test]
    fn opt_out_is_fine_where_allowed_and_listed_where_not() {
        let p = ClusterPolicy::default();
        let mut out = vespaset("out");
        out["metadata"]["annotations"] = json!({"tls.vespa.ai/inject": "false"});
        let mut enabled = healthy(labelled("a", "enabled"), &p);
        enabled.vespasets = vec![out.clone()];
        let mut enforced = healthy(labelled("b", "enforced"), &p);
        enforced.vespasets = vec![out];
        let report = findings(&snapshot(vec![enabled, enforced]), &p);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].namespace, "b");
        assert!(report.findings[0].problem.contains("not allowed here"));
    }

    #[test]
    fn missing_or_wrong_config_maps_and_issuers_are_listed() {
        let p = ClusterPolicy::default();
        let meta = labelled("vespa", "enabled")
            .with_annotation("tls.vespa.ai/ingress-issuer-name", "ingress-issuer");
        let mut scan = healthy(meta, &p);
        scan.config_maps.remove("vespa-config-tls-ingress");
        scan.config_maps.get_mut("vespa-config-tls").unwrap()["data"]["tls-config.json"] =
            json!("{}");
        scan.issuers.remove("ca-issuer");
        let report = findings(&snapshot(vec![scan]), &p);
        let found = problems(&report);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("ConfigMap", "vespa-config-tls")
        );
        assert!(found[0].2.contains("data.tls-config.json differs"));
        assert_eq!(
            (found[1].0.as_str(), found[1].1.as_str()),
            ("ConfigMap", "vespa-config-tls-ingress")
        );
        assert!(found[1].2.starts_with("missing"));
        assert_eq!(
            (found[2].0.as_str(), found[2].1.as_str()),
            ("Issuer", "ca-issuer")
        );
        assert!(found[2].2.contains("bootstrap-ca"));
    }

    #[test]
    fn cluster_issuers_external_issuers_and_absent_cert_manager() {
        let p = ClusterPolicy::default();
        let meta = labelled("vespa", "enabled")
            .with_annotation("tls.vespa.ai/issuer-kind", "ClusterIssuer")
            .with_annotation("tls.vespa.ai/issuer-name", "global-ca")
            .with_annotation("tls.vespa.ai/ingress-issuer-name", "acme")
            .with_annotation("tls.vespa.ai/ingress-issuer-group", "example.com")
            .with_annotation("tls.vespa.ai/ingress-issuer-kind", "AcmeIssuer");
        let scan = NamespaceScan {
            issuers: BTreeSet::new(),
            ..healthy(meta, &p)
        };
        let mut snap = snapshot(vec![scan]);
        let report = findings(&snap, &p);
        assert_eq!(problems(&report).len(), 1);
        assert_eq!(report.findings[0].kind, "ClusterIssuer");
        assert!(
            report.notes.iter().any(|n| n.contains("external issuer")),
            "{:?}",
            report.notes
        );
        snap.cluster_issuers.insert("global-ca".into());
        assert_eq!(findings(&snap, &p).findings, []);
        snap.cert_manager_api = false;
        let report = findings(&snap, &p);
        assert_eq!(report.findings.len(), 1);
        assert!(
            report.findings[0]
                .problem
                .contains("cert-manager.io/v1 API is not served")
        );
    }

    #[test]
    fn unlabelled_namespaces_are_skipped_invalid_ones_listed() {
        let p = ClusterPolicy::default();
        let plain = NamespaceScan {
            meta: NamespaceMeta::named("plain"),
            vespasets: vec![vespaset("x")],
            ..NamespaceScan::default()
        };
        let bad_label = NamespaceScan {
            meta: labelled("typo", "enable"),
            ..NamespaceScan::default()
        };
        let bad_settings = NamespaceScan {
            meta: labelled("bad", "enabled").with_annotation("tls.vespa.ai/key-size", "7"),
            vespasets: vec![vespaset("y")],
            ..NamespaceScan::default()
        };
        let mut snap = snapshot(vec![plain, bad_label, bad_settings]);
        snap.vespaset_api = false;
        let report = findings(&snap, &p);
        let found = problems(&report);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, "Namespace");
        assert!(found[0].2.contains("enabled, enforced or disabled"));
        assert!(found[1].2.contains("settings are refused"));
        assert!(report.findings[1].details[0].contains("key-size"));
        assert_eq!(report.checked.namespaces, 2);
        assert!(report.notes[0].contains("VespaSet API"));
    }

    #[test]
    fn json_report_shape() {
        let report = Report {
            findings: vec![Finding {
                namespace: "n".into(),
                kind: "Pod".into(),
                name: "p".into(),
                problem: "x".into(),
                details: vec![],
            }],
            notes: vec![],
            checked: Checked {
                namespaces: 1,
                vespasets: 0,
                pods: 1,
            },
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({"findings": [{"namespace": "n", "kind": "Pod", "name": "p", "problem": "x"}], "notes": [], "checked": {"namespaces": 1, "vespasets": 0, "pods": 1}})
        );
    }
}
