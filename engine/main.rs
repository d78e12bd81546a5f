//! The `runbook` binary: answer a shell's completion request, or parse the command line, run
//! it, tell what went wrong, and map the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use runbook::cli::{self, Cli};

fn main() -> ExitCode {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(cli::complete::COMPLETE_VAR)
        .complete();
    let result = cli::execute(Cli::parse());
    if let Err(err) = &result {
        cli::report(err);
    }
    ExitCode::from(cli::exit_code(&result))
}
