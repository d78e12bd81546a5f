//! The command line's shape (clap) and its dispatch to one module per subcommand.

use clap::{Parser, Subcommand};

use super::error::CliError;
use super::{graph, logs, resume, run, runs, schema, show, validate};
use crate::drive::Outcome;

const EXAMPLES: &str = "\
Examples:
  runbook validate runbooks/                      check every runbook in a folder
  runbook graph runbooks/demo/drill.yaml --format mermaid
  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --dry-run
  runbook run restore.yaml --params prod.yaml --yes --approve check_snapshot --as alice

Exit codes: 0 succeeded · 1 a step failed · 2 invalid runbook, params or usage ·
3 paused for a manual step · 4 run locked by another process · 130 interrupted";

/// A declarative runbook engine: compile an operational procedure into a dependency graph and
/// run it with durable checkpoints, honest dry-runs and resume.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks without running anything: every mistake, with file, line and column.
    #[command(
        after_help = "Examples:\n  runbook validate restore.yaml\n  runbook validate runbooks/   (every .yaml/.yml below)"
    )]
    Validate(validate::ValidateArgs),
    /// Print the compiled dependency graph.
    #[command(
        after_help = "Examples:\n  runbook graph drill.yaml | dot -Tsvg > drill.svg\n  runbook graph drill.yaml --format mermaid"
    )]
    Graph(graph::GraphArgs),
    /// Run a runbook, or rehearse it with --dry-run.
    #[command(
        after_help = "Examples:\n  runbook run drill.yaml --dry-run          print every command and request; run only `safe` steps\n  runbook run drill.yaml --yes --approve-all  confirm destructive steps, approve manual ones\n  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --set nodes='[a, b]'\n  runbook run restore.yaml --approve confirm --input confirm.snapshot_id=s-42 --as alice\n\nWithout a terminal, a manual step pauses the run (exit 3) unless --approve or --approve-all\nnames it (--yes never approves one), and destructive steps need --yes."
    )]
    Run(run::RunArgs),
    /// Continue a run that failed, paused, was interrupted, or whose process died.
    #[command(
        after_help = "Examples:\n  runbook resume drill-20261121-0300            continue where it stopped\n  runbook resume drill-20261121-0300 --approve go_ahead --as alice\n  runbook resume drill-20261121-0300 --approve confirm --input confirm.snapshot_id=s-42\n  runbook resume drill-20261121-0300 --reject go_ahead --reason \"wrong snapshot\"\n  runbook resume drill-20261121-0300 --allow-changed --rerun restore\n\nSucceeded and skipped steps are never run again. A step that was in flight when the run\nstopped is re-run if idempotent, decided by its `check` if it has one, else needs --yes."
    )]
    Resume(resume::ResumeArgs),
    /// List runs with their status.
    Runs(runs::RunsArgs),
    /// A run's steps: status, attempts, times, outputs and approvals.
    Show(show::ShowArgs),
    /// What a run's steps printed.
    Logs(logs::LogsArgs),
    /// Print the JSON Schema of runbook files (for editors: `# yaml-language-server: $schema=…`).
    Schema,
}

/// Runs a parsed command line; a run's outcome (failed, paused, interrupted) is no error.
pub fn execute(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Validate(args) => validate::execute(&args),
        Command::Graph(args) => graph::execute(&args),
        Command::Run(args) => run::execute(&args),
        Command::Resume(args) => resume::execute(&args),
        Command::Runs(args) => runs::execute(&args),
        Command::Show(args) => show::execute(&args),
        Command::Logs(args) => logs::execute(&args),
        Command::Schema => schema::execute(),
    }
}
