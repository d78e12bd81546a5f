//! Durable runs end to end: crash trials (SIGKILL at random moments, then resume), resume
//! rules, run state on disk, locks and signals, and what an operator does with runs (find,
//! stop, prune, follow).
//!
//! Run one concern with `cargo test --test durable durable_crash::`.

#[path = "../common/durable_support.rs"]
mod durable_support;
#[path = "../common/run_support.rs"]
mod run_support;

mod disk_faults;
mod durable_crash;
mod durable_operator;
mod durable_people;
mod durable_resume;
mod durable_state;
mod lock_holder;
mod secret_sinks;
mod terminal_loss;
