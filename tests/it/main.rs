//! Integration tests: the real server on 127.0.0.1:0, TLS from a test CA,
//! namespaces and policy from files in a temp dir.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_bodies;
mod cluster;
mod fixtures;
mod lifecycle;
mod mutate;
mod policy_reload;
mod rotation;
mod support;
mod validate;
