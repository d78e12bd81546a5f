//! `runbook logs RUN_ID [STEP] [--follow]`: what a run's steps printed, in plan order.

use std::io::Write as _;
use std::time::Duration;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::report::history::{self, LogPrinter};

/// How often `--follow` looks for more.
const POLL: Duration = Duration::from_millis(250);

/// What `logs` takes.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The run's id (`latest`, or the beginning of one id).
    #[arg(add = super::complete::run_ids())]
    pub run_id: String,
    /// One step (default: every step, in plan order, each under a `=== STEP` line).
    pub step: Option<String>,
    /// Keep printing as the run goes on, until it ends (a `=== STEP` line again each time the
    /// output moves on to another step).
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Prints the logs; with `--follow`, then what they gain until the run ends.
pub fn execute(args: &LogsArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let store = &*store;
    let (timeline, _) = super::show::load(store, &args.run_id)?;
    let run_id = timeline.run.run_id.clone();
    let steps =
        history::log_steps(store, &timeline, args.step.as_deref()).map_err(CliError::logs)?;
    let mut printer = LogPrinter::new(args.step.is_none());
    let mut out = std::io::stdout().lock();
    loop {
        // Read before the logs: what a run that just ended wrote is still printed.
        let driven = args.follow && store.holder(&run_id)?.is_some();
        // Following, the journal again: items a fan-out expanded since, steps that ended.
        let fresh;
        let run = if args.follow {
            fresh = store.timeline(&run_id)?;
            &fresh
        } else {
            &timeline
        };
        let steps = if args.follow && args.step.is_none() {
            history::log_steps(store, run, None).map_err(CliError::logs)?
        } else {
            steps.clone()
        };
        let mut text = String::new();
        printer.pass(store, run, &steps, driven, &mut text)?;
        out.write_all(text.as_bytes()).map_err(CliError::Output)?;
        out.flush().map_err(CliError::Output)?;
        if !driven {
            return Ok(Outcome::Succeeded);
        }
        std::thread::sleep(POLL);
    }
}
