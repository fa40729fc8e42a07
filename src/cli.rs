//! The command line: one `Args` with `env` fallbacks; errors name the flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::offline::{self, Format, NamespaceSource, OfflineError};
use crate::stdio::{eprint_line, write_stdout};

/// TLS for Vespa on Kubernetes, injected and enforced by an admission webhook.
#[derive(Debug, Parser)]
#[command(name = "vespa-tls-webhook", version, about)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook (HTTPS: /mutate, /validate, /healthz, /readyz, /metrics).
    Serve(ServeArgs),
    /// Print the object(s) with TLS injected, offline; exit 1 if they would be rejected.
    Inject(OfflineArgs),
    /// Print the validating verdict, offline; exit 1 when denied.
    Check(OfflineArgs),
    /// Print the webhook configurations with a CA bundle filled in (no cainjector).
    WebhookConfig(WebhookConfigArgs),
    /// List VespaSets and Vespa pods without (current) TLS, and labelled namespaces
    /// missing their ConfigMap or issuer; exit 1 when anything is listed.
    Verify(crate::verify::VerifyArgs),
    /// Run only the controller (ConfigMaps, CA bootstrap), with leader election;
    /// `serve --controller` runs the same inside the webhook.
    Controller(crate::controller::ControllerArgs),
}

/// `webhook-config` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfigArgs {
    /// PEM file of the CA that signed the webhook's serving certificate.
    #[arg(long)]
    pub ca_bundle: PathBuf,
    /// Namespace of the webhook's Service.
    #[arg(long, default_value = "vespa-tls-webhook")]
    pub service_namespace: String,
    /// Name of the webhook's Service.
    #[arg(long, default_value = "vespa-tls-webhook")]
    pub service_name: String,
    /// Reach the webhook at this URL instead of a Service (e.g. https://127.0.0.1:8443).
    #[arg(long, conflicts_with_all = ["service_namespace", "service_name"])]
    pub url: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable.
    Text,
}

/// `serve` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HTTPS listen address [default: 0.0.0.0:8443; 127.0.0.1:8443 with --dev].
    #[arg(long, env = "VTW_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Optional plain-HTTP listener for /metrics, /healthz and /readyz (for scrapers).
    #[arg(long, env = "VTW_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// PEM certificate chain; reloaded when the file changes.
    #[arg(long, env = "VTW_TLS_CERT", required_unless_present = "dev")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key; reloaded when the file changes.
    #[arg(long, env = "VTW_TLS_KEY", required_unless_present = "dev")]
    pub tls_key: Option<PathBuf>,
    /// Cluster policy (YAML); reloaded when it changes. Built-in policy when absent.
    #[arg(long, env = "VTW_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubeconfig for the namespace view (default: in-cluster, then ~/.kube/config).
    #[arg(long, env = "VTW_KUBECONFIG", conflicts_with = "namespaces")]
    pub kubeconfig: Option<PathBuf>,
    /// Read namespaces from this YAML file instead of a cluster (reloaded when it changes).
    #[arg(long, env = "VTW_NAMESPACES")]
    pub namespaces: Option<PathBuf>,
    /// The webhook's own namespace, always excluded.
    #[arg(long, env = "POD_NAMESPACE")]
    pub webhook_namespace: Option<String>,
    /// Development mode: throw-away CA and serving certificate in --certs-dir, listen on
    /// 127.0.0.1:8443, namespaces from examples/namespaces.yaml, text logs.
    #[arg(long)]
    pub dev: bool,
    /// Where --dev writes its certificates.
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,
    /// Log format (default: json, text with --dev).
    #[arg(long, env = "VTW_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Time to read a request's headers and body before the connection is dropped (seconds).
    #[arg(long, env = "VTW_READ_TIMEOUT", default_value_t = 3)]
    pub read_timeout_secs: u64,
    /// How long a keep-alive connection may sit idle between requests (seconds); keep it
    /// above the apiserver's 90 s, so that the apiserver, not the webhook, closes it.
    #[arg(long, env = "VTW_IDLE_TIMEOUT", default_value_t = crate::conn_timer::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,
    /// Idle keep-alive connections kept at most; when another connection arrives with this
    /// many idle, the one idle longest is closed (about 35 KiB each).
    #[arg(long, env = "VTW_MAX_IDLE_CONNECTIONS", default_value_t = crate::conn_timer::DEFAULT_MAX_IDLE as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_idle_connections: u64,
    /// Connections open at most on each listener (handshaking, busy or idle); when another
    /// arrives with this many open, the one idle longest is closed, or with none idle the new
    /// one is refused (about 35 KiB each, 90 KiB while a body arrives).
    #[arg(long, env = "VTW_MAX_CONNECTIONS", default_value_t = crate::conn_timer::DEFAULT_MAX_OPEN as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Admission requests read and decided at once; more wait up to 1 s, then get 503.
    #[arg(long, env = "VTW_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_in_flight: u64,
    /// MiB of request bodies the admission requests in flight may hold between them
    /// (a body costs about 6x its size while decided; 16 keeps a 128 MiB container safe).
    #[arg(long, env = "VTW_MAX_IN_FLIGHT_MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_in_flight_mib: u64,
    /// /readyz fails when the namespace view has not heard from the apiserver (a watch
    /// event or a list) for this long (seconds); a quiet watch is relisted after half.
    #[arg(long, env = "VTW_NAMESPACE_STALE_AFTER", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub namespace_stale_after_secs: u64,
    /// Also run the controller in this process: it creates and keeps the TLS
    /// ConfigMaps (and with tls.vespa.ai/bootstrap-ca the CA chain) of labelled
    /// namespaces. Replicas elect one leader over the Lease vespa-tls-webhook-controller
    /// in --webhook-namespace. Needs a cluster (not with --namespaces).
    #[arg(long, env = "VTW_CONTROLLER", conflicts_with = "namespaces")]
    pub controller: bool,
    /// Leader election of the controller.
    #[command(flatten)]
    pub lease: crate::controller::LeaseArgs,
}

/// `inject` / `check` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OfflineArgs {
    /// Input file (YAML, multi-document, or JSON); `-` for stdin.
    #[arg(short = 'f', long = "filename")]
    pub file: String,
    /// Namespace to admit into (default: each object's metadata.namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// A label of the namespace, `key=value` (repeatable).
    #[arg(long = "namespace-label")]
    pub namespace_labels: Vec<String>,
    /// An annotation of the namespace, `key=value` (repeatable).
    #[arg(long = "namespace-annotation")]
    pub namespace_annotations: Vec<String>,
    /// Namespaces (YAML list of Namespace objects) to take labels/annotations from.
    #[arg(long)]
    pub namespaces: Option<PathBuf>,
    /// Cluster policy file (built-in policy when absent).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Output format for `inject` (default: the input's).
    #[arg(short = 'o', long)]
    pub output: Option<Format>,
}

/// Run a parsed command line; the process exit code.
pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Serve(serve) => match crate::serve::run(serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprint_line(format_args!("vespa-tls-webhook serve: {e:#}"));
                ExitCode::from(2)
            }
        },
        Command::Verify(a) => crate::verify::run(a),
        Command::Controller(a) => crate::controller::run_cli(a),
        Command::Inject(a) => offline_exit(run_offline(&a, true)),
        Command::Check(a) => offline_exit(run_offline(&a, false)),
        Command::WebhookConfig(a) => {
            let rendered = std::fs::read_to_string(&a.ca_bundle)
                .map_err(|e| format!("--ca-bundle {}: {e}", a.ca_bundle.display()))
                .and_then(|pem| {
                    let endpoint = match &a.url {
                        Some(url) => crate::webhook_config::Endpoint::Url(url),
                        None => crate::webhook_config::Endpoint::Service {
                            namespace: &a.service_namespace,
                            name: &a.service_name,
                        },
                    };
                    crate::webhook_config::render(&pem, &endpoint).map_err(|e| e.to_string())
                });
            match rendered {
                Ok(out) => write_stdout(&out, ExitCode::SUCCESS),
                Err(e) => {
                    eprint_line(format_args!("error: {e}"));
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn run_offline(a: &OfflineArgs, inject: bool) -> Result<String, OfflineError> {
    let policy = offline::load_policy(a.policy.as_deref())?;
    let source = NamespaceSource {
        namespace: a.namespace.clone(),
        labels: a.namespace_labels.clone(),
        annotations: a.namespace_annotations.clone(),
        namespaces_file: a.namespaces.clone(),
    };
    let text = offline::read_input(&a.file)?;
    let mut warn = |w: &str| eprint_line(format_args!("{w}"));
    if inject {
        offline::inject_text(&text, &a.file, &policy, &source, a.output, &mut warn)
    } else {
        offline::check_text(&text, &a.file, &policy, &source, &mut warn)
    }
}

fn offline_exit(result: Result<String, OfflineError>) -> ExitCode {
    match result {
        Ok(out) => write_stdout(&out, ExitCode::SUCCESS),
        Err(OfflineError::Denied(reasons)) => {
            for r in reasons {
                eprint_line(format_args!("{r}"));
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprint_line(format_args!("error: {e}"));
            ExitCode::from(2)
        }
    }
}
