//! `runbook describe FILE`: one runbook's params and steps, in order, with their titles, kinds
//! and what each waits for.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::RunFormat;
use super::error::CliError;
use crate::compile::CompileError;
use crate::drive::Outcome;
use crate::report::catalogue;
use crate::spec::LoadError;
use crate::spec::source::display_path;

/// What `describe` takes.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// The runbook.
    #[arg(value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
}

/// Describes the runbook (its mistakes, when it has some, as `validate` shows them).
pub fn execute(args: &DescribeArgs) -> Result<Outcome, CliError> {
    let runbook = crate::spec::load(&args.file).map_err(|e| {
        CliError::compile(match e {
            LoadError::Read { path, source } => CompileError::Read { path, source },
            LoadError::Invalid {
                path, diagnostics, ..
            } => CompileError::Invalid { path, diagnostics },
        })
    })?;
    let path = display_path(&args.file);
    let text = match args.format {
        RunFormat::Text => catalogue::describe_text(&path, &runbook),
        RunFormat::Json => catalogue::describe_json(&path, &runbook),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}
