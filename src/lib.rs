//! vespa-tls-webhook: a Kubernetes admission webhook that injects cert-manager
//! CSI TLS into Vespa workloads and enforces it.
//!
//! The functional core is pure and synchronous: [`policy`] and [`settings`]
//! (cluster policy + namespace → effective settings), [`inject`] (settings +
//! object → JSON patch, its operations in [`patch`]), [`validate`] (object +
//! policy → findings) and
//! [`admission`] (AdmissionReview → decision). The shell — [`server`],
//! [`tls`], [`namespace_view`], [`policy_watch`], [`metrics`] and [`cli`] — does
//! the I/O around it.
//!
//! The shell is the default `server` feature. Without it
//! (`default-features = false`) the crate is the pure core alone — no async
//! runtime, no Kubernetes client, no TLS — which is how the fuzz targets build it.

#![forbid(unsafe_code)]

// The pure core: synchronous, no I/O.
pub mod admission;
pub mod duration;
pub mod inject;
pub mod layout;
pub mod namespaces;
pub mod offline;
pub mod ordered;
pub mod patch;
pub mod policy;
pub mod projection;
pub mod ready;
pub mod scan;
pub mod settings;
pub mod target;
pub mod validate;
pub mod webhook_config;

// The shell (the default `server` feature).
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod conn_timer;
#[cfg(feature = "server")]
pub mod controller;
#[cfg(feature = "server")]
pub mod dev;
#[cfg(feature = "server")]
pub mod file_watch;
#[cfg(feature = "server")]
pub mod leader;
#[cfg(feature = "server")]
pub mod log_batch;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod namespace_view;
#[cfg(feature = "server")]
pub mod policy_watch;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod stdio;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod verify;
