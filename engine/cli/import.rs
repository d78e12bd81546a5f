//! `runbook state import DIR [RUN_ID…]`: copies the runs of a state folder into the store
//! `--state` names (a team's database), whole: the journal record by record, the runbook files
//! and params they ran with, and every step's log. A run already in the store is left as it
//! is, and so is one a process drives now (its journal is still growing).

use std::path::PathBuf;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::plan::NodeId;
use crate::state::local::LocalStore;
use crate::state::store::NewRun;
use crate::state::{Record, Store, StoreError};

/// `runbook state …`: what is kept about runs, as a whole.
#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Copy the runs of a state folder into the store `--state` names (a team's database):
    /// journal, runbook copies, params and logs. Runs already there are left alone.
    #[command(
        after_help = "Examples:\n  runbook state import .runbook --state postgres://runbook@db.internal/ops\n  RUNBOOK_STATE=postgres://… runbook state import ~/drills/.runbook drill-20261121-0300\n\nA run a process drives now is not copied (its journal still grows): import it once it\nstopped. A paused or interrupted run can be resumed from the store once it is there.\n\nExit codes: 0 every run was copied or was there already · 1 a run could not be copied ·\n2 DIR is not a state folder"
    )]
    Import(ImportArgs),
}

/// What `state import` takes.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The state folder to copy from (the `.runbook` folder that holds `runs/`).
    #[arg(value_name = "DIR")]
    pub from: PathBuf,
    /// Only these runs (default: every run of the folder).
    #[arg(value_name = "RUN_ID")]
    pub runs: Vec<String>,
    /// Where the runs go.
    #[command(flatten)]
    pub state: StateArgs,
}

/// Runs a `state` subcommand.
pub fn execute(command: &StateCommand) -> Result<Outcome, CliError> {
    match command {
        StateCommand::Import(args) => import(args),
    }
}

/// What became of one run.
enum Copied {
    /// Copied: its status and how many records and logs.
    Done {
        status: String,
        records: usize,
        logs: usize,
    },
    /// The store has a run with this id already.
    There,
}

fn import(args: &ImportArgs) -> Result<Outcome, CliError> {
    if !args.from.join("runs").is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a state folder (it has no runs/ folder); give the `.runbook` folder a run was kept in",
            args.from.display()
        )));
    }
    let from = LocalStore::new(&args.from);
    let to = args.state.store()?;
    let ids = if args.runs.is_empty() {
        from.ids()?
    } else {
        args.runs
            .iter()
            .map(|given| from.resolve(given))
            .collect::<Result<_, _>>()?
    };
    let (mut copied, mut there, mut failed) = (0, 0, 0);
    for id in &ids {
        match copy(&from, &*to, id) {
            Ok(Copied::Done {
                status,
                records,
                logs,
            }) => {
                copied += 1;
                println!(
                    "imported {id} ({status}; {records} record{}, {logs} log{})",
                    if records == 1 { "" } else { "s" },
                    if logs == 1 { "" } else { "s" }
                );
            }
            Ok(Copied::There) => {
                there += 1;
                println!(
                    "left {id}: {} has a run with this id already",
                    to.location()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "warning: not imported {id}: {}",
                    crate::state::store::with_reasons(&e)
                );
            }
        }
    }
    println!(
        "{copied} run{} imported into {}{}{}",
        if copied == 1 { "" } else { "s" },
        to.location(),
        if there > 0 {
            format!(", {there} there already")
        } else {
            String::new()
        },
        if failed > 0 {
            format!(", {failed} not imported")
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 {
        Outcome::Failed
    } else {
        Outcome::Succeeded
    })
}

/// Records written to the store at a time.
const RECORDS_AT_ONCE: usize = 1000;

/// Copies one run; the store's lease on it is held until the copy is whole, so nobody resumes a
/// half-copied run.
fn copy(from: &LocalStore, to: &dyn Store, id: &str) -> Result<Copied, StoreError> {
    if let Some(holder) = from.holder(id)? {
        return Err(StoreError::Locked {
            id: id.to_owned(),
            holder,
        });
    }
    let records = from.records(id)?;
    let Some((first @ Record::RunStarted { runbook, .. }, rest)) = records.split_first() else {
        return Err(StoreError::Damaged {
            path: from.location().into(),
            reason: format!("run `{id}`'s journal does not begin with the run's start"),
        });
    };
    let timeline = from.timeline(id)?;
    let status = timeline.status(false).as_str().to_owned();
    let files = from.runbook(id)?;
    let params = from.params(id)?;
    let lease = match to.create(&NewRun {
        run_id: id,
        runbook,
        files: &files,
        params: &params,
        first,
    }) {
        Ok(lease) => lease,
        Err(StoreError::Exists(_)) => return Ok(Copied::There),
        Err(e) => return Err(e),
    };
    let mut journal = to.journal(&lease)?;
    for chunk in rest.chunks(RECORDS_AT_ONCE) {
        journal.write(chunk)?;
    }
    journal.sync()?;
    let mut logs = 0;
    for step in &timeline.steps {
        if copy_log(from, &mut *journal, id, &step.id)? {
            logs += 1;
        }
    }
    journal.flush_logs()?;
    drop(lease);
    Ok(Copied::Done {
        status,
        records: records.len(),
        logs,
    })
}

/// Copies a step's log line by line; whether it had one.
fn copy_log(
    from: &LocalStore,
    journal: &mut dyn crate::state::store::RunJournal,
    id: &str,
    step: &NodeId,
) -> Result<bool, StoreError> {
    let Some(chunk) = from.read_log(id, step, 0)? else {
        return Ok(false);
    };
    let text = String::from_utf8_lossy(&chunk.bytes);
    for line in text.lines() {
        journal.log_line(step, line)?;
    }
    journal.end_log(step);
    if let Some(reason) = journal.log_failure(step) {
        return Err(StoreError::Damaged {
            path: from.location().into(),
            reason: format!("the log of `{step}` could not be copied: {reason}"),
        });
    }
    Ok(true)
}
