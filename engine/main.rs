//! The `runbook` binary: parse the command line, run it, tell what went wrong, and map the
//! outcome to an exit code.

use std::process::ExitCode;

use clap::Parser as _;
use runbook::cli::{self, Cli};

fn main() -> ExitCode {
    let result = cli::execute(Cli::parse());
    if let Err(err) = &result {
        cli::report(err);
    }
    ExitCode::from(cli::exit_code(&result))
}
