//! Tests of the pure core: golden files from the seed, table tests of every
//! setting, mode and conflict, and property tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod golden;
mod inject_table;
mod policy_table;
mod projection;
mod props;
mod scan;
mod validate_table;
