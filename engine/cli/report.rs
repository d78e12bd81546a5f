//! `runbook report RUN_ID`: a run's evidence (a disaster-recovery drill's, an audit's) as one
//! self-contained HTML page, Markdown for a ticket, or JSON for machines.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::report::{evidence, html, json, markdown};

/// What `report` takes.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run's id (`runbook runs` lists them; `latest`, or the beginning of one id).
    #[arg(add = super::complete::run_ids())]
    pub run_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "html")]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained page (inline CSS and SVG; prints to PDF).
    Html,
    /// Markdown, for a ticket.
    Md,
    /// JSON (`schemas/report.schema.json`).
    Json,
}

/// Gathers the run's evidence and writes it.
pub fn execute(args: &ReportArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let run_id = store.resolve(&args.run_id)?;
    let evidence = evidence::gather(&*store, &run_id, jiff::Timestamp::now())?;
    let text = match args.format {
        ReportFormat::Html => html::render(&evidence),
        ReportFormat::Md => markdown::render(&evidence),
        ReportFormat::Json => json::render(&evidence),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        })?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(CliError::Output)?,
    }
    Ok(Outcome::Succeeded)
}
