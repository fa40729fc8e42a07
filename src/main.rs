//! `vespa-tls-webhook`: the binary's edge. Everything else lives in the library.

use clap::Parser;

/// jemalloc, built to return freed memory at once (`.cargo/config.toml`): README "Decisions".
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = vespa_tls_webhook::cli::Args::parse();
    vespa_tls_webhook::cli::run(args)
}
