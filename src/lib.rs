//! vespa-tls-webhook: a Kubernetes admission webhook that injects cert-manager
//! CSI TLS into Vespa workloads and enforces it.
//!
//! The functional core is pure and synchronous: [`policy`] and [`settings`]
//! (cluster policy + namespace → effective settings), [`inject`] (settings +
//! object → JSON patch), [`validate`] (object + policy → findings) and
//! [`admission`] (AdmissionReview → decision). The shell — [`server`],
//! [`tls`], [`namespace_view`], [`policy_watch`], [`metrics`] and [`cli`] — does
//! the I/O around it.

#![forbid(unsafe_code)]

pub mod admission;
pub mod cli;
pub mod controller;
pub mod dev;
pub mod duration;
pub mod file_watch;
pub mod inject;
pub mod layout;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod namespace_view;
pub mod namespaces;
pub mod offline;
pub mod policy;
pub mod policy_watch;
pub mod serve;
pub mod server;
pub mod settings;
pub mod target;
pub mod tls;
pub mod validate;
pub mod verify;
pub mod webhook_config;
