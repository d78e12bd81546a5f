//! The `runbook` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = runbook::cli::Cli::parse();
    match runbook::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !matches!(
                err,
                runbook::cli::CliError::Invalid { .. }
                    | runbook::cli::CliError::Params
                    | runbook::cli::CliError::RunFailed
                    | runbook::cli::CliError::RunPaused
                    | runbook::cli::CliError::RunInterrupted
            ) {
                eprintln!("error: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
