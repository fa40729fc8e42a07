//! `vespa-tls-webhook`: the binary's edge. Everything else lives in the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc: a review allocates and frees thousands of
/// small blocks, and glibc's allocator was a fifth of the server's CPU under load
/// (README "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = vespa_tls_webhook::cli::Args::parse();
    vespa_tls_webhook::cli::run(args)
}
