//! `runbook man`: the manual page, generated from the command line's own definitions.

use std::io::Write as _;
use std::path::PathBuf;

use clap::CommandFactory as _;

use super::command::Cli;
use super::error::CliError;
use crate::drive::Outcome;

/// What `man` takes.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per subcommand into this folder, made if missing (`runbook.1`,
    /// `runbook-run.1`, …) instead of printing `runbook.1`.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub out_dir: Option<PathBuf>,
}

/// Prints the page, or writes every page.
pub fn execute(args: &ManArgs) -> Result<Outcome, CliError> {
    let command = Cli::command();
    if let Some(dir) = &args.out_dir {
        // A folder that is not there yet is made, as `install -D` would.
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map_err(|source| CliError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        return Ok(Outcome::Succeeded);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(CliError::Output)?;
    std::io::stdout()
        .write_all(&page)
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}
