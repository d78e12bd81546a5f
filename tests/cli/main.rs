//! Fast end-to-end and property tests of the command line: validation (fixtures and snapshots),
//! the JSON Schema, plan properties, runs of small runbooks through the real binary, and the
//! documentation's examples.
//!
//! One test binary with a module per concern (linking one binary instead of one per file).
//! Run one concern with `cargo test --test cli run_flow::`.

#[path = "../common/pty.rs"]
mod pty;
#[path = "../common/run_support.rs"]
mod run_support;

mod docs;
mod estimate;
mod fingerprint;
mod fuzz;
mod hostile_text;
mod limits;
mod notify;
mod operator_choose;
mod operator_commands;
mod operator_output;
mod operator_terminal;
mod plan_props;
mod report;
mod run_commands;
mod run_drill;
mod run_fleet;
mod run_flow;
mod run_http;
mod run_params;
mod run_polls;
mod run_rehearsal;
mod run_safety;
mod run_scripts;
mod run_templates;
mod schema;
mod validate;
