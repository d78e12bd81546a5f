//! `runbook show RUN_ID`: a run's steps, statuses, attempts, times, outputs and approvals.

use std::io::Write as _;

use super::args::{RunFormat, StateArgs};
use super::error::CliError;
use crate::drive::Outcome;
use crate::exec::RunStatus;
use crate::report::history;
use crate::state::{Store, Timeline};

/// What `show` takes.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run's id.
    pub run_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Prints the run.
pub fn execute(args: &ShowArgs) -> Result<Outcome, CliError> {
    let (timeline, status) = load(&*args.state.store()?, &args.run_id)?;
    let text = match args.format {
        RunFormat::Text => history::show_text(&timeline, status),
        RunFormat::Json => history::show_json(&timeline, status),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}

/// A run's timeline, and its status now (a run nobody drives is not running).
pub fn load(store: &dyn Store, run_id: &str) -> Result<(Timeline, RunStatus), CliError> {
    let timeline = store.timeline(run_id)?;
    let driven = store.holder(run_id)?.is_some();
    let status = timeline.status(driven);
    Ok((timeline, status))
}
