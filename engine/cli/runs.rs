//! `runbook runs`: every run with its status.

use std::io::Write as _;

use super::args::{RunFormat, StateArgs};
use super::error::CliError;
use crate::drive::Outcome;
use crate::report::history;

/// What `runs` takes.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Lists the runs; one that cannot be read is named in a warning, and the others are listed.
pub fn execute(args: &RunsArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let mut runs = Vec::new();
    for listed in store.list()? {
        match listed.summary {
            Ok(summary) => runs.push(summary),
            Err(e) => eprintln!("warning: skipping run {}: {e}", listed.run_id),
        }
    }
    let text = match args.format {
        RunFormat::Text if runs.is_empty() => format!(
            "no runs in {} (`runbook run FILE` starts one)\n",
            store.location()
        ),
        RunFormat::Text => history::runs_table(&runs),
        RunFormat::Json => history::runs_json(&runs),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}
