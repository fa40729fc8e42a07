//! Integration tests: the real server on 127.0.0.1:0, TLS from a test CA,
//! namespaces and policy from files in a temp dir.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod bad_bodies;
mod cluster;
mod fixtures;
mod lifecycle;
mod mutate;
mod policy_reload;
mod rotation;
mod support;
mod validate;
