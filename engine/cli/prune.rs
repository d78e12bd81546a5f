//! `runbook prune --older-than AGE`: removes runs that ended long ago. Only succeeded runs
//! unless `--all` (a failed, paused or interrupted run can still be resumed); never a run that a
//! process drives, nor one that cannot be read.

use std::time::Duration;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::exec::RunStatus;
use crate::state::StoreError;

/// What `prune` takes.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove runs that ended longer ago than this (`30d`, `12h`).
    #[arg(long, value_name = "AGE", value_parser = super::args::duration)]
    pub older_than: Duration,
    /// Also remove failed, paused and interrupted runs (which could still be resumed).
    #[arg(long)]
    pub all: bool,
    /// Only say which runs would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Removes the runs that qualify and says what it did.
pub fn execute(args: &PruneArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let now = jiff::Timestamp::now();
    let mut removed = 0;
    let mut resumable = 0;
    for listed in store.list()? {
        let summary = match listed.summary {
            Ok(summary) => summary,
            Err(e) => {
                eprintln!("warning: keeping run {}: {e}", listed.run_id);
                continue;
            }
        };
        let Some(ended) = summary.finished_at.or(summary.started_at) else {
            continue;
        };
        let age = Duration::try_from(now.duration_since(ended)).unwrap_or(Duration::ZERO);
        if age < args.older_than {
            continue;
        }
        match summary.status {
            RunStatus::Running => continue,
            RunStatus::Succeeded => {}
            RunStatus::Failed | RunStatus::Paused | RunStatus::Interrupted if args.all => {}
            RunStatus::Failed | RunStatus::Paused | RunStatus::Interrupted => {
                resumable += 1;
                continue;
            }
        }
        let line = format!(
            "{} ({}, {})",
            summary.run_id,
            summary.status.as_str(),
            ended.strftime("%Y-%m-%d %H:%M")
        );
        if args.dry_run {
            println!("would remove {line}");
        } else {
            match store.remove(&summary.run_id) {
                Ok(()) => println!("removed {line}"),
                Err(e @ StoreError::Locked { .. }) => {
                    eprintln!("warning: keeping run {}: {e}", summary.run_id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        removed += 1;
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let kept = if resumable > 0 {
        format!(
            "; kept {resumable} failed, paused or interrupted run{} (--all removes them)",
            if resumable == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    println!(
        "{verb} {removed} run{} older than {}{kept}",
        if removed == 1 { "" } else { "s" },
        crate::spec::duration::Human(args.older_than)
    );
    Ok(Outcome::Succeeded)
}
