//! Faults under load (issue 6): every test drives a bounded request loop on
//! loopback while something goes wrong, and counts failed requests.
//!
//! | module | fault | binary |
//! |---|---|---|
//! | `rotation` | serving pair rotated every second by `..data` swap (plus broken, mismatched and expired pairs); a certificate expiring while serving | in-process |
//! | `policy` | policy file replaced by invalid ones | in-process |
//! | `sigterm` | SIGTERM with requests in flight and keep-alive connections open | real binary |
//! | `transport` | plain HTTP and TLS 1.1 on the TLS port, a 16 MiB body | real binary |
//! | `overload` | more admission requests (and bigger bodies) than the in-flight limits | real binary |
//! | `watch` | the namespace watch quiet, then the apiserver gone and back (fake apiserver) | in-process |
//! | `soak` | a fixed rate for `VTW_SOAK_SECS` (default 60; 600 for the full soak) | real binary |
//!
//! The tests run one at a time (a shared lock): they measure latency, memory and
//! exit times, and two cores shared with other builds are little enough already.
//! `VTW_FAULTS_ROTATION_SECS` (default 30) bounds the rotation run.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

#[path = "../it/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

mod common;
#[path = "../common/listen.rs"]
#[allow(dead_code)]
mod listen;
mod overload;
mod policy;
mod rotation;
mod sigterm;
mod soak;
mod transport;
mod watch;
