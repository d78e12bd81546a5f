//! `runbook resume RUN_ID`: continues a run. The engine takes the run over and decides; this
//! module says what it found, and asks before running again a step that was in flight and is
//! not safe to repeat.

use super::args::{PeopleArgs, StateArgs, VerbosityArgs};
use super::error::CliError;
use super::terminal;
use crate::drive::{Continuation, Outcome, ResumeOptions, Resumption};
use crate::report::prompt::{self, Consent};
use crate::state::identity;
use crate::state::resume::{Decision, ResumeError, ResumeRequest};

/// What `resume` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// The run's id (`runbook runs` lists them; `latest`, or the beginning of one id).
    #[arg(add = super::complete::run_ids())]
    pub run_id: String,
    /// Confirm destructive steps, and re-running in-flight steps that are not idempotent (never
    /// approves a manual step).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub people: PeopleArgs,
    /// Reject a paused manual step: the run fails and `finally` runs.
    #[arg(long, value_name = "STEP")]
    pub reject: Vec<String>,
    /// Why the step is rejected (recorded in the journal).
    #[arg(long, requires = "reject")]
    pub reason: Option<String>,
    /// A new value for a param that no finished step has read (`NAME=VALUE`, as on `run`);
    /// recorded in the run's journal. Repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Resume even though the runbook file changed since the run began.
    #[arg(long)]
    pub allow_changed: bool,
    /// Run a step again, and everything after it that depends on it (repeatable).
    #[arg(long, value_name = "STEP")]
    pub rerun: Vec<String>,
    /// Steps at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: Option<u16>,
    /// Plain line-per-event output even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Takes the run over, decides, says what will happen, and drives it.
pub fn execute(args: &ResumeArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let presentation = terminal::presentation(false, args.no_progress, args.verbosity.level());
    let options = ResumeOptions {
        run_id: store.resolve(&args.run_id)?,
        allow_changed: args.allow_changed,
        rerun: !args.rerun.is_empty(),
        yes: args.yes,
        people: args.people.people(),
        max_parallel: args.max_parallel.map(usize::from),
        presentation,
        user: args
            .people
            .approver
            .clone()
            .unwrap_or_else(identity::current_user),
        sets: args.sets.clone(),
    };
    let resumption = match Resumption::take_over(&*store, options).map_err(CliError::drive)? {
        Continuation::AlreadySucceeded { run_id } => {
            println!(
                "run {run_id} already succeeded; nothing to do (`runbook show {run_id}` has its steps)"
            );
            return Ok(Outcome::Succeeded);
        }
        Continuation::Resume(resumption) => resumption,
    };
    if let Some(changes) = resumption.changed() {
        eprintln!(
            "continuing with the changed runbook:\n{}",
            changes.trim_end()
        );
    }
    if let Some(source) = resumption.gone() {
        eprintln!("{source} is gone; resuming with the run's own copy of it");
    }
    let request = ResumeRequest {
        rerun: args.rerun.clone(),
        approve: args.people.approve.clone(),
        reject: args.reject.clone(),
        reason: args.reason.clone(),
        confirmed: args.yes,
        new_params: args
            .sets
            .iter()
            .filter_map(|set| set.split_once('=').map(|(name, _)| name.trim().to_owned()))
            .collect(),
    };
    let decision = decide(&resumption, request, presentation.interactive)?;
    let ready = resumption.ready(decision).map_err(CliError::drive)?;
    for (id, why) in ready.rerun_in_flight() {
        eprintln!("{id} was in flight when the run stopped; running it again: {why}");
    }
    ready.drive().map_err(CliError::drive)
}

/// The decision; steps in flight that are not safe to repeat are asked about at a terminal.
fn decide(
    resumption: &Resumption<'_>,
    mut request: ResumeRequest,
    interactive: bool,
) -> Result<Decision, CliError> {
    match resumption.decide(&request) {
        Err(ResumeError::NeedsConfirmation(steps)) if interactive => {
            let question = format!(
                "{} in flight when the run stopped and may have taken effect: {}. Run again?",
                if steps.len() == 1 {
                    "this step was"
                } else {
                    "these steps were"
                },
                steps
                    .iter()
                    .map(crate::plan::NodeId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !prompt::ask(&question, &Consent::YesNo, &|| false) {
                return Err(CliError::Declined);
            }
            request.confirmed = true;
            resumption.decide(&request)
        }
        other => other,
    }
    .map_err(|e| CliError::drive(e.into()))
}
