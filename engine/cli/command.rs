//! The command line's shape (clap) and its dispatch to one module per subcommand.

use clap::{Parser, Subcommand};

use super::error::CliError;
use super::{
    complete, describe, graph, import, list, logs, man, prune, report, resume, run, runs, schema,
    show, stop, validate,
};
use crate::drive::Outcome;

const EXAMPLES: &str = "\
Examples:
  runbook list runbooks/                          the runbooks there, with their params
  runbook validate runbooks/                      check every runbook in a folder
  runbook graph runbooks/demo/drill.yaml --format mermaid
  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --dry-run
  runbook run restore.yaml --params prod.yaml --yes --approve check_snapshot --as alice
  runbook show latest                             the run started last

Runs are kept in the nearest .runbook folder (this one or above it), as git finds .git.
A RUN_ID may be `latest` or the beginning of one run's id.

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
        after_help = "Examples:\n  runbook validate restore.yaml\n  runbook validate runbooks/                  every .yaml/.yml below (hidden folders skipped)\n  runbook validate runbooks/ --format github  annotations in a GitHub Actions job\n  runbook validate runbooks/ --format json    for other CI systems and editors\n\nExit codes: 0 every runbook is valid · 2 a mistake was found"
    )]
    Validate(validate::ValidateArgs),
    /// List the runbooks in a folder (and below it), with their descriptions and params.
    #[command(
        after_help = "Examples:\n  runbook list                    the runbooks in this folder and below it\n  runbook list runbooks/devicedb\n  runbook list --format json"
    )]
    List(list::ListArgs),
    /// Show one runbook: its params and its steps in order, with their names.
    #[command(
        after_help = "Examples:\n  runbook describe runbooks/devicedb/restore.yaml\n  runbook describe restore.yaml --format json"
    )]
    Describe(describe::DescribeArgs),
    /// Print the compiled dependency graph.
    #[command(
        after_help = "Examples:\n  runbook graph drill.yaml | dot -Tsvg > drill.svg\n  runbook graph drill.yaml --format mermaid"
    )]
    Graph(graph::GraphArgs),
    /// Run a runbook, or rehearse it with --dry-run.
    #[command(
        after_help = "Examples:\n  runbook run drill.yaml --dry-run          print every command and request; run only `safe` steps\n  runbook run drill.yaml --yes --approve-all  confirm destructive steps, approve manual ones\n  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --set nodes='[a, b]'\n  runbook run restore.yaml --approve confirm --input confirm.snapshot_id=s-42 --as alice\n  runbook run drill.yaml -q                 only failures, questions and the verdict\n\nAt a terminal a destructive step is confirmed by typing its id (or yes). Without a\nterminal, a manual step pauses the run (exit 3) unless --approve or --approve-all\nnames it (--yes never approves one), and destructive steps need --yes."
    )]
    Run(run::RunArgs),
    /// Continue a run that failed, paused, was interrupted, or whose process died.
    #[command(
        after_help = "Examples:\n  runbook resume drill-20261121-0300            continue where it stopped\n  runbook resume latest                         the run started last\n  runbook resume drill-20261121-0300 --approve go_ahead --as alice\n  runbook resume drill-20261121-0300 --approve confirm --input confirm.snapshot_id=s-42\n  runbook resume drill-20261121-0300 --reject go_ahead --reason \"wrong snapshot\"\n  runbook resume drill-20261121-0300 --allow-changed --rerun restore\n\nSucceeded and skipped steps are never run again. A step that was in flight when the run\nstopped is re-run if idempotent, decided by its `check` if it has one, else needs --yes."
    )]
    Resume(resume::ResumeArgs),
    /// Stop a run that another terminal or process drives: it ends `interrupted`, resumable.
    #[command(
        after_help = "Examples:\n  runbook stop drill-20261121-0300\n  runbook stop latest --wait 2m\n\nThe process that drives the run gets SIGTERM and stops as at Ctrl-C: its steps' processes\nare stopped (SIGTERM, then SIGKILL after a grace period) and the run can be resumed.\n\nExit codes: 0 the run stopped · 2 no such run, or no process drives it · 4 its process\nruns on another machine or cannot be signalled, or the run still goes on after --wait"
    )]
    Stop(stop::StopArgs),
    /// List runs with their status.
    #[command(after_help = "Examples:\n  runbook runs\n  runbook runs --format json")]
    Runs(runs::RunsArgs),
    /// A run's steps: status, attempts, times, outputs and approvals.
    #[command(
        after_help = "Examples:\n  runbook show latest\n  runbook show drill-2026                 the one run whose id begins so\n  runbook show latest --format json"
    )]
    Show(show::ShowArgs),
    /// What a run's steps printed.
    #[command(
        after_help = "Examples:\n  runbook logs latest                  every step, in plan order\n  runbook logs latest restore          one step\n  runbook logs latest --follow         and what comes, until the run ends"
    )]
    Logs(logs::LogsArgs),
    /// Remove runs that ended long ago (only succeeded ones unless --all).
    #[command(
        after_help = "Examples:\n  runbook prune --older-than 30d --dry-run   say what would go\n  runbook prune --older-than 30d\n  runbook prune --older-than 90d --all      failed, paused and interrupted runs too\n\nA run that a process drives, or that cannot be read, is never removed."
    )]
    Prune(prune::PruneArgs),
    /// What is kept about runs as a whole: `runbook state import DIR` copies a state folder's
    /// runs into a team's database.
    #[command(subcommand)]
    State(import::StateCommand),
    /// A run's evidence: one self-contained HTML page (Gantt chart, steps, approvals, failures,
    /// time to recovery), Markdown for a ticket, or JSON.
    #[command(
        after_help = "Examples:\n  runbook report drill-20261121-0300 -o drill.html   open it, or print it to PDF\n  runbook report drill-20261121-0300 --format md     paste it into a ticket\n  runbook report drill-20261121-0300 --format json   for machines (schemas/report.schema.json)"
    )]
    Report(report::ReportArgs),
    /// Print the JSON Schema of runbook files (for editors: `# yaml-language-server: $schema=…`).
    Schema,
    /// Print the script that completes subcommands, options and run ids in a shell.
    #[command(
        after_help = "Examples:\n  source <(runbook completions bash)                      for this shell (add it to ~/.bashrc)\n  source <(runbook completions zsh)                        in ~/.zshrc\n  runbook completions fish > ~/.config/fish/completions/runbook.fish\n\nThe script calls runbook back to complete, so it follows upgrades by itself."
    )]
    Completions(complete::CompletionsArgs),
    /// Print the manual page (roff).
    #[command(
        after_help = "Examples:\n  runbook man | man -l -\n  runbook man > ~/.local/share/man/man1/runbook.1\n  runbook man --out-dir ~/.local/share/man/man1     one page per subcommand too"
    )]
    Man(man::ManArgs),
}

/// Runs a parsed command line; a run's outcome (failed, paused, interrupted) is no error.
pub fn execute(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Validate(args) => validate::execute(&args),
        Command::List(args) => list::execute(&args),
        Command::Describe(args) => describe::execute(&args),
        Command::Graph(args) => graph::execute(&args),
        Command::Run(args) => run::execute(&args),
        Command::Resume(args) => resume::execute(&args),
        Command::Stop(args) => stop::execute(&args),
        Command::Runs(args) => runs::execute(&args),
        Command::Show(args) => show::execute(&args),
        Command::Logs(args) => logs::execute(&args),
        Command::Prune(args) => prune::execute(&args),
        Command::State(command) => import::execute(&command),
        Command::Report(args) => report::execute(&args),
        Command::Schema => schema::execute(),
        Command::Completions(args) => complete::execute(&args),
        Command::Man(args) => man::execute(&args),
    }
}
