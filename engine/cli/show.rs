//! `runbook show RUN_ID`: a run's steps (in plan order), statuses, attempts, times, outputs and
//! approvals.

use std::io::Write as _;

use super::args::{RunFormat, StateArgs};
use super::error::CliError;
use crate::drive::{Outcome, pipeline};
use crate::exec::RunStatus;
use crate::report::estimate::{self, History, Remaining};
use crate::report::{evidence, history};
use crate::spec::duration::Human;
use crate::state::{Store, Timeline};

/// What `show` takes.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run's id (`latest`, or the beginning of one id).
    #[arg(add = super::complete::run_ids())]
    pub run_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Prints the run.
pub fn execute(args: &ShowArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let (timeline, status) = load(&*store, &args.run_id)?;
    let remaining = if status == RunStatus::Running {
        remaining(&*store, &timeline)?
    } else {
        None
    };
    let text = match args.format {
        RunFormat::Text => {
            let mut text = history::show_text(&timeline, status);
            if let Some(remaining) = remaining {
                text.push_str(&remaining_line(remaining));
            }
            text
        }
        RunFormat::Json => history::show_json(&timeline, status, remaining),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}

/// A run's timeline, and its status now (a run nobody drives is not running); `given`: the
/// run's id, `latest`, or the beginning of one id.
pub fn load(store: &dyn Store, given: &str) -> Result<(Timeline, RunStatus), CliError> {
    let run_id = store.resolve(given)?;
    let timeline = store.timeline(&run_id)?;
    let driven = store.holder(&run_id)?.is_some();
    let status = timeline.status(driven);
    Ok((timeline, status))
}

/// What is left of a running run, from the history of its runbook's past runs (`None` when the
/// run's copy of its runbook no longer compiles).
fn remaining(store: &dyn Store, timeline: &Timeline) -> Result<Option<Remaining>, CliError> {
    let run_id = &timeline.run.run_id;
    let Ok(plan) = evidence::gather::compile_copy(&store.runbook(run_id)?, &store.params(run_id)?)
    else {
        return Ok(None);
    };
    let history = History::read(store, &plan.root().name, Some(run_id))?;
    let cap = pipeline::max_parallel(&plan, None);
    Ok(Some(Remaining {
        left: estimate::remaining(&plan, &history, timeline, cap, jiff::Timestamp::now()),
        runs: history.runs,
    }))
}

/// `expected remaining: …`, the last line of `show` of a running run.
fn remaining_line(remaining: Remaining) -> String {
    match remaining.left {
        Some(left) => format!(
            "expected remaining: {} (medians of {} past run{})\n",
            Human(left),
            remaining.runs,
            if remaining.runs == 1 { "" } else { "s" }
        ),
        None => "expected remaining: unknown (no past run of this runbook)\n".to_owned(),
    }
}
