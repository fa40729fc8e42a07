//! `vespa-tls-webhook`: the binary's edge. Everything else lives in the library.

use clap::Parser;

/// mimalloc: the decision path is allocation-heavy (a `serde_json::Value` tree per
/// review) and glibc malloc spent ~30% of the server's CPU in it under load; see the
/// README's Performance section for the figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = vespa_tls_webhook::cli::Args::parse();
    vespa_tls_webhook::cli::run(args)
}
