//! Tests of the pure core: golden files from the seed, table tests of every
//! setting, mode and conflict, and property tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// serde_json's own `Value::pointer` is the independent reading here (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod fixtures;
mod golden;
mod inject_table;
mod policy_table;
mod projection;
mod props;
mod scan;
mod targets;
mod validate_table;
