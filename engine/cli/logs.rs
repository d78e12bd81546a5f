//! `runbook logs RUN_ID [STEP] [--follow]`: what a run's steps printed.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::plan::NodeId;
use crate::report::history;
use crate::state::Store;

/// How often `--follow` looks for more.
const POLL: Duration = Duration::from_millis(250);

/// What `logs` takes.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The run's id.
    pub run_id: String,
    /// One step (default: every step, in order).
    pub step: Option<String>,
    /// Keep printing as the run goes on, until it ends.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Prints the logs; with `--follow`, then what they gain until the run ends.
pub fn execute(args: &LogsArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let (timeline, _) = super::show::load(&*store, &args.run_id)?;
    let shown = history::logs(&*store, &timeline, args.step.as_deref()).map_err(CliError::logs)?;
    std::io::stdout()
        .lock()
        .write_all(shown.text.as_bytes())
        .map_err(CliError::Output)?;
    if args.follow {
        follow(&*store, args, shown.read.into_iter().collect())?;
    }
    Ok(Outcome::Succeeded)
}

/// Prints what each step's log gains, prefixed with the step (`ID | line`), until nobody
/// drives the run; `offsets`: how far each log was printed.
fn follow(
    store: &dyn Store,
    args: &LogsArgs,
    mut offsets: HashMap<NodeId, u64>,
) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    loop {
        // Read before the logs: what a run that just ended wrote is still printed.
        let driven = store.holder(&args.run_id)?.is_some();
        let timeline = store.timeline(&args.run_id)?;
        let steps = timeline
            .steps
            .iter()
            .filter(|s| args.step.as_deref().is_none_or(|only| s.id == only));
        for step in steps {
            let from = offsets.get(&step.id).copied().unwrap_or(0);
            let Some(chunk) = store.read_log(&args.run_id, &step.id, from)? else {
                continue;
            };
            // While the run goes on, a line is printed once it is whole.
            let whole = if driven {
                chunk
                    .bytes
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
            } else {
                chunk.bytes.len()
            };
            for line in String::from_utf8_lossy(&chunk.bytes[..whole]).lines() {
                writeln!(out, "{} | {line}", step.id).map_err(CliError::Output)?;
            }
            offsets.insert(step.id.clone(), from + whole as u64);
        }
        out.flush().map_err(CliError::Output)?;
        if !driven {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}
