//! `runbook run FILE`: runs a runbook, or rehearses it with `--dry-run`.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::{ParamArgs, PeopleArgs, RunFormat, StateArgs};
use super::error::CliError;
use super::terminal;
use crate::drive::{self, Outcome, StartRequest};

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
    /// Plain line-per-event output even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Output format (json only with --dry-run).
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Compiles the runbook with its params, then runs or rehearses it.
pub fn execute(args: &RunArgs) -> Result<Outcome, CliError> {
    let json = args.format == RunFormat::Json;
    let input = args.input.input()?;
    let plan = crate::compile::compile(&args.file, Some(&input)).map_err(CliError::compile)?;
    if json && !args.dry_run {
        return Err(CliError::Usage(
            "--format json is for --dry-run; a real run reports with `runbook show`".to_owned(),
        ));
    }
    let request = StartRequest {
        run_id: args.run_id.clone(),
        dry_run: args.dry_run,
        yes: args.yes,
        approve: args.people.approve.clone(),
        people: args.people.people(),
        max_parallel: args.max_parallel.map(usize::from),
        presentation: terminal::presentation(json, args.no_progress),
    };
    let started = drive::start(&args.state.store(), plan, &request).map_err(CliError::drive)?;
    if json {
        let document = serde_json::json!({ "steps": started.rehearsal });
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        writeln!(std::io::stdout().lock(), "{text}").map_err(CliError::Output)?;
    }
    Ok(started.outcome)
}
