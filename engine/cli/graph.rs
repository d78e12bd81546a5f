//! `runbook graph FILE`: the compiled dependency graph, as dot or mermaid.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::ParamArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::report::graph::GraphFormat;

/// What `graph` takes.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The runbook.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
    #[command(flatten)]
    pub input: ParamArgs,
}

/// Prints the graph (with params when some are given, else as far as known without them).
pub fn execute(args: &GraphArgs) -> Result<Outcome, CliError> {
    let input = args.input.input()?;
    let plan = crate::compile::compile(&args.file, args.input.given().then_some(&input))
        .map_err(|e| args.input.compile_error(e))?;
    std::io::stdout()
        .write_all(crate::report::graph::render(&plan, args.format).as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}
