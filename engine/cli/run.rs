//! `runbook run FILE`: runs a runbook, or rehearses it with `--dry-run`.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::{ParamArgs, PeopleArgs, RunFormat, StateArgs, VerbosityArgs};
use super::error::CliError;
use super::terminal;
use crate::drive::{self, Choice, Outcome, Selection, StartRequest, pipeline};
use crate::exec::SettledSteps;
use crate::report::estimate::{Estimate, History};
use crate::report::prompt::{self, Consent};

/// What `run` takes.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The runbook.
    pub file: PathBuf,
    #[command(flatten)]
    pub input: ParamArgs,
    /// Rehearse: print every command and request fully rendered, run only `safe` steps.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm destructive steps without asking (never approves a manual step).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub people: PeopleArgs,
    /// Steps at once (default: the runbook's `defaults.max_parallel`, else 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: Option<u16>,
    /// The run's id (default: the runbook's name and the start time).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Run only these steps of the runbook (repeat, or separate with commas): a fan-out with
    /// its items, a block or call with its steps. What they depend on does not run: it is
    /// named, for you to confirm (--yes) that its effect is in place.
    #[arg(
        long,
        value_name = "STEP",
        value_delimiter = ',',
        conflicts_with = "from"
    )]
    pub only: Vec<String>,
    /// Run this step and every step that depends on it (then `finally`); the steps before it
    /// do not run: they are named, for you to confirm (--yes) that their effect is in place.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// Plain line-per-event output even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
    /// Output format (json: the rehearsal, with --dry-run).
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Compiles the runbook with its params, then runs or rehearses it.
pub fn execute(args: &RunArgs) -> Result<Outcome, CliError> {
    let json = args.format == RunFormat::Json;
    let input = args.input.input()?;
    let plan = crate::compile::compile(&args.file, Some(&input))
        .map_err(|e| args.input.compile_error(e))?;
    if json && !args.dry_run {
        return Err(CliError::Usage(
            "--format json is for --dry-run; a real run reports with `runbook show`".to_owned(),
        ));
    }
    let store = args.state.store()?;
    let presentation = terminal::presentation(json, args.no_progress, args.verbosity.level());
    let left_out = match choice(args) {
        Some(choice) => {
            let selection =
                drive::select(&plan, &choice).map_err(|e| CliError::Usage(e.to_string()))?;
            confirm(&selection, args, presentation.interactive)?;
            selection.left_out
        }
        None => SettledSteps::new(),
    };
    // Read before the run starts (a rehearsal keeps no run, but be sure not to count it).
    let estimate = if args.dry_run {
        let history = History::read(&*store, &plan.root().name, None)?;
        let cap = pipeline::max_parallel(&plan, args.max_parallel.map(usize::from));
        Some(Estimate::of(&plan, &history, cap, &left_out))
    } else {
        None
    };
    let request = StartRequest {
        run_id: args.run_id.clone(),
        dry_run: args.dry_run,
        yes: args.yes,
        approve: args.people.approve.clone(),
        people: args.people.people(),
        max_parallel: args.max_parallel.map(usize::from),
        presentation,
        left_out,
    };
    let started = drive::start(&*store, plan, &request).map_err(CliError::drive)?;
    if json {
        let mut document = serde_json::json!({ "steps": started.rehearsal });
        if let Some(estimate) = &estimate {
            document["estimate"] = estimate.to_json();
        }
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        writeln!(std::io::stdout().lock(), "{text}").map_err(CliError::Output)?;
    } else if let Some(estimate) = &estimate {
        writeln!(std::io::stdout().lock(), "{estimate}").map_err(CliError::Output)?;
    }
    Ok(started.outcome)
}

/// The steps asked for with `--only` or `--from`.
fn choice(args: &RunArgs) -> Option<Choice> {
    if let Some(from) = &args.from {
        return Some(Choice::From(from.clone()));
    }
    (!args.only.is_empty()).then(|| Choice::Only(args.only.clone()))
}

/// Says which steps run and which are left out; steps that the chosen ones depend on are taken
/// as in place only when the operator confirms it (at the terminal, or `--yes`). A rehearsal
/// asks nothing.
fn confirm(selection: &Selection, args: &RunArgs, interactive: bool) -> Result<(), CliError> {
    eprintln!(
        "{}: running {}",
        selection.written,
        selection.chosen.join(", ")
    );
    if selection.assumed.is_empty() {
        return Ok(());
    }
    let assumed = format!(
        "they depend on {}, which will not run: their effect must already be in place",
        selection.assumed.join(", ")
    );
    if args.dry_run || args.yes {
        eprintln!("{assumed}");
        return Ok(());
    }
    if !interactive {
        return Err(CliError::Usage(format!(
            "{}: {assumed}; --yes confirms it",
            selection.written
        )));
    }
    if prompt::ask(&format!("{assumed}. Go on?"), &Consent::YesNo, &|| false) {
        Ok(())
    } else {
        Err(CliError::Declined)
    }
}
