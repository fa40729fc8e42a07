//! `serve`: the binary's edge. Turns the flags into a [`ServerConfig`], runs the
//! server on a multi-threaded runtime and shuts it down gracefully on
//! SIGTERM/SIGINT.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{LogFormat, ServeArgs};
use crate::controller;
use crate::namespace_view::NamespaceSource;
use crate::policy_watch::PolicySource;
use crate::server::{Server, ServerConfig};

/// Production listen address.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443);
/// `--dev` listen address.
pub const DEV_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// `--dev` namespaces when `--namespaces` is not given.
pub const DEV_NAMESPACES: &str = "examples/namespaces.yaml";
/// Sample review printed in the `--dev` startup hint.
pub const DEV_REVIEW: &str = "examples/review-vespaset.json";

/// Run the webhook until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let format = args.log_format.unwrap_or(if args.dev {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let _log = crate::logging::init(format).context("cannot start the logging thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let dev = args.dev;
    let controller_args = args.controller.then(|| args.clone());
    let config = config(args)?;
    if controller_args.is_some() && matches!(config.namespaces, NamespaceSource::File(_)) {
        anyhow::bail!(
            "--controller needs a cluster (--kubeconfig or in-cluster), not a --namespaces file"
        );
    }
    let certs_hint = config.tls_cert.with_file_name("ca.crt");
    let policy_source = config.policy.clone();
    let server = Server::start(config).await?;
    let controller = match controller_args {
        Some(a) => Some(start_controller(a, policy_source, server.policy()).await?),
        None => None,
    };
    if dev {
        let addr = server.local_addr();
        tracing::info!(
            "dev mode: try  curl --cacert {} -H 'Content-Type: application/json' --data @{DEV_REVIEW} https://localhost:{}/mutate",
            certs_hint.display(),
            addr.port()
        );
    }
    let signal = shutdown_signal().await?;
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    if let Some((token, task)) = controller {
        // Stop reconciling and release the Lease first, so a standby takes over at once.
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    server.shutdown().await;
    Ok(())
}

/// Start the controller (leader election, then reconciling) beside the server,
/// following the server's policy (same watcher).
async fn start_controller(
    args: ServeArgs,
    policy: PolicySource,
    handle: crate::policy_watch::PolicyHandle,
) -> anyhow::Result<(CancellationToken, tokio::task::JoinHandle<()>)> {
    let client = controller::kube_client(args.kubeconfig.as_deref()).await?;
    let config = controller::ControllerConfig {
        client,
        policy: std::sync::Arc::new(move || handle.current()),
        lease_namespace: policy
            .webhook_namespace
            .unwrap_or_else(|| controller::DEFAULT_LEASE_NAMESPACE.to_string()),
        identity: controller::identity(),
        timing: args.lease.timing(),
    };
    let token = CancellationToken::new();
    let stop = token.clone();
    let task = tokio::spawn(async move {
        controller::run(config, stop).await;
    });
    Ok((token, task))
}

fn config(args: ServeArgs) -> anyhow::Result<ServerConfig> {
    let (tls_cert, tls_key) = if args.dev {
        let certs = crate::dev::write_certs(&args.certs_dir)?;
        tracing::info!(dir = %args.certs_dir.display(), "dev mode: wrote a throw-away CA and serving certificate");
        (certs.cert, certs.key)
    } else {
        let cert = args.tls_cert.context("--tls-cert is required (or --dev)")?;
        let key = args.tls_key.context("--tls-key is required (or --dev)")?;
        (cert, key)
    };
    let addr = args
        .addr
        .unwrap_or(if args.dev { DEV_ADDR } else { DEFAULT_ADDR });
    let namespaces = match (args.namespaces, args.kubeconfig) {
        (Some(file), _) => NamespaceSource::File(file),
        (None, None) if args.dev => NamespaceSource::File(PathBuf::from(DEV_NAMESPACES)),
        (None, kubeconfig) => NamespaceSource::Cluster { kubeconfig },
    };
    let mut config = ServerConfig::new(addr, tls_cert, tls_key);
    config.metrics_addr = args.metrics_addr;
    config.policy = PolicySource {
        path: args.policy,
        webhook_namespace: args.webhook_namespace.filter(|n| !n.is_empty()),
    };
    config.namespaces = namespaces;
    config.read_timeout = Duration::from_secs(args.read_timeout_secs.max(1));
    config.idle_timeout = Duration::from_secs(args.idle_timeout_secs);
    config.max_idle_connections = usize::try_from(args.max_idle_connections).unwrap_or(usize::MAX);
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.max_in_flight = usize::try_from(args.max_in_flight).unwrap_or(usize::MAX);
    config.max_in_flight_body_bytes =
        usize::try_from(args.max_in_flight_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    config.namespace_stale_after = Duration::from_secs(args.namespace_stale_after_secs);
    Ok(config)
}

#[cfg(unix)]
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok("Ctrl-C")
}
