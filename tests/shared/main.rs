//! Runs kept in `PostgreSQL` (`--state postgres://…`) end to end, against a real `PostgreSQL` that
//! the tests start themselves (`tests/drills/services.sh`, the one the drills use): a run
//! started in one folder ("machine") is followed, approved and resumed from another; one process
//! drives a run at a time; kill -9 trials never re-run a settled step; a database that goes
//! away stops the run as interrupted without a step starting unrecorded; secrets never reach a
//! table; failures to reach the store are named.
//!
//! Run one concern with `cargo test --test shared shared_flow::`.

#[path = "../common/durable_support.rs"]
mod durable_support;
#[path = "../common/run_support.rs"]
mod run_support;

mod pg;
mod shared_crash;
mod shared_faults;
mod shared_flow;
mod shared_import;
