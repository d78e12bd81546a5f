//! Shell completion. `runbook completions SHELL` prints the script a shell loads; that script
//! calls `runbook` back (`clap_complete`'s `COMPLETE=SHELL` protocol, answered first thing in
//! `main`) to complete subcommands, options, files, and run ids where a run is named.

use std::io::Write as _;
use std::path::PathBuf;

use clap_complete::env::Shells;
use clap_complete::{ArgValueCandidates, CompletionCandidate};

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::state::store::LATEST;

/// The environment variable the completion scripts set when they call `runbook` back.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// What `completions` takes.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells completions are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// Bash (4.4 or later completes run ids; older ones subcommands and options).
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

impl CompletionShell {
    fn name(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Zsh => "zsh",
            Self::Fish => "fish",
        }
    }
}

/// Prints the shell's completion script.
pub fn execute(args: &CompletionsArgs) -> Result<Outcome, CliError> {
    let shells = Shells::builtins();
    let Some(shell) = shells.completer(args.shell.name()) else {
        return Err(CliError::Usage(format!(
            "no completions for {}",
            args.shell.name()
        )));
    };
    let mut script = Vec::new();
    shell
        .write_registration(
            COMPLETE_VAR,
            "runbook",
            "runbook",
            &completer(),
            &mut script,
        )
        .map_err(CliError::Output)?;
    std::io::stdout()
        .write_all(&script)
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}

/// The program the script calls back: as this one was started (a path is made absolute, a bare
/// name is looked up on `PATH` by the shell).
fn completer() -> String {
    let started = std::env::args_os()
        .next()
        .map_or_else(|| PathBuf::from("runbook"), PathBuf::from);
    let path = if started.components().count() > 1 {
        std::env::current_dir().map_or(started.clone(), |cwd| cwd.join(&started))
    } else {
        started
    };
    path.to_string_lossy().into_owned()
}

/// What completes a run id: `latest`, then the runs in the store found from the current
/// directory (or `RUNBOOK_STATE_DIR`), newest first.
pub fn run_ids() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let state = StateArgs {
            state_dir: std::env::var_os("RUNBOOK_STATE_DIR").map(PathBuf::from),
            state: std::env::var("RUNBOOK_STATE").ok(),
        };
        let mut ids = state
            .store()
            .ok()
            .and_then(|store| store.ids().ok())
            .unwrap_or_default();
        ids.reverse();
        std::iter::once(CompletionCandidate::new(LATEST).help(Some("the run started last".into())))
            .chain(ids.into_iter().map(CompletionCandidate::new))
            .collect()
    })
}
