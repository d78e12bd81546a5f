//! The command line: clap definitions and one function per subcommand.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::diagnostic::{self, Diagnostic};
use crate::plan::{self, ParamError, ParamInput, PlanError};
use crate::report::graph::GraphFormat;
use crate::spec::{self, LoadError};

const EXAMPLES: &str = "\
Examples:
  runbook validate runbooks/                      check every runbook in a folder
  runbook graph runbooks/demo/drill.yaml --format mermaid
  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --dry-run
  runbook run restore.yaml --params prod.yaml --yes

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

/// Where runs are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// Where runs are kept (journal, logs, copies of the runbook).
    #[arg(
        long,
        env = "RUNBOOK_STATE_DIR",
        default_value = ".runbook",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
}

/// Values for the runbook's params.
#[derive(Debug, clap::Args)]
pub struct ParamArgs {
    /// Set a param (`name=value`; lists as `[a, b]`, maps as `{k: v}`); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Read params from a YAML file (repeatable; `--set` wins).
    #[arg(long = "params", value_name = "FILE")]
    pub params: Vec<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks without running anything: every mistake, with file, line and column.
    #[command(
        after_help = "Examples:\n  runbook validate restore.yaml\n  runbook validate runbooks/   (every .yaml/.yml below)"
    )]
    Validate {
        /// Runbook files or folders.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the compiled dependency graph.
    #[command(
        after_help = "Examples:\n  runbook graph drill.yaml | dot -Tsvg > drill.svg\n  runbook graph drill.yaml --format mermaid"
    )]
    Graph {
        /// The runbook.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        #[command(flatten)]
        input: ParamArgs,
    },
    /// Run a runbook, or rehearse it with --dry-run.
    #[command(
        after_help = "Examples:\n  runbook run drill.yaml --dry-run          print every command and request; run only `safe` steps\n  runbook run drill.yaml --yes              approve manual and destructive steps up front\n  runbook run restore.yaml --set snapshot=nightly-2026.11.20 --set nodes='[a, b]'\n\nWithout a terminal, a manual step pauses the run (exit 3) and destructive steps need --yes."
    )]
    Run {
        /// The runbook.
        file: PathBuf,
        #[command(flatten)]
        input: ParamArgs,
        /// Rehearse: print every command and request fully rendered, run only `safe` steps.
        #[arg(long)]
        dry_run: bool,
        /// Approve manual and destructive steps without asking.
        #[arg(long)]
        yes: bool,
        /// Steps at once (default: the runbook's `defaults.max_parallel`, else 4).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        max_parallel: Option<u16>,
        /// The run's id (default: the runbook's name and the start time).
        #[arg(long, value_name = "ID")]
        run_id: Option<String>,
        /// Plain line-per-event output even on a terminal.
        #[arg(long)]
        no_progress: bool,
        /// Output format (json only with --dry-run).
        #[arg(long, value_enum, default_value = "text")]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Continue a run that failed, paused, was interrupted, or whose process died.
    #[command(
        after_help = "Examples:\n  runbook resume drill-20261121-0300            continue where it stopped\n  runbook resume drill-20261121-0300 --approve go_ahead --as alice\n  runbook resume drill-20261121-0300 --reject go_ahead --reason \"wrong snapshot\"\n  runbook resume drill-20261121-0300 --allow-changed --rerun restore\n\nSucceeded and skipped steps are never run again. A step that was in flight when the run\nstopped is re-run if idempotent, decided by its `check` if it has one, else needs --yes."
    )]
    Resume(crate::run::ResumeArgs),
    /// List runs with their status.
    Runs {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// A run's steps: status, attempts, times, outputs and approvals.
    Show {
        /// The run's id.
        run_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// What a run's steps printed.
    Logs {
        /// The run's id.
        run_id: String,
        /// One step (default: every step, in order).
        step: Option<String>,
        /// Keep printing as the run goes on, until it ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print the JSON Schema of runbook files (for editors: `# yaml-language-server: $schema=…`).
    Schema,
}

/// What `run --dry-run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunFormat {
    /// Human-readable lines.
    Text,
    /// The rehearsal as JSON (with `--dry-run`).
    Json,
}

/// Why a command did not succeed; [`CliError::exit_code`] is the one place codes are chosen.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Runbooks with mistakes (already reported).
    #[error("{count} mistake(s) found")]
    Invalid {
        /// How many diagnostics were printed.
        count: usize,
    },
    /// Bad params (already reported).
    #[error("invalid params")]
    Params,
    /// A problem found before anything ran (secrets, confirmation, options); already explained.
    #[error("{0}")]
    Refused(String),
    /// A step failed.
    #[error("the run failed")]
    RunFailed,
    /// A manual step is waiting.
    #[error("the run is paused")]
    RunPaused,
    /// Stopped by a signal.
    #[error("the run was interrupted")]
    RunInterrupted,
    /// Another process drives the run.
    #[error("{0}")]
    Locked(String),
    /// The journal could not be read or written.
    #[error("{0}")]
    Journal(String),
    /// A file that could not be read.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// Writing the output failed.
    #[error("failed to write output")]
    Output(#[source] std::io::Error),
}

impl CliError {
    /// The process exit code for this error (SPEC §5).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid { .. } | Self::Params | Self::Load(_) | Self::Refused(_) => 2,
            Self::Output(_) | Self::RunFailed | Self::Journal(_) => 1,
            Self::RunPaused => 3,
            Self::Locked(_) => 4,
            Self::RunInterrupted => 130,
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Graph {
            file,
            format,
            input,
        } => graph(&file, format, &input),
        Command::Run {
            file,
            input,
            dry_run,
            yes,
            max_parallel,
            run_id,
            no_progress,
            format,
            state,
        } => {
            let input = param_input(&input)?;
            let plan = compile(&file, Some(&input))?;
            let request = crate::run::Request {
                dry_run,
                yes,
                max_parallel: max_parallel.map(usize::from),
                run_id,
                no_progress,
                json: format == RunFormat::Json,
                state_dir: state.state_dir,
            };
            crate::run::start(plan, &request)
        }
        Command::Resume(args) => crate::run::resume(&args),
        Command::Runs { format, state } => runs(&state.state_dir, format),
        Command::Show {
            run_id,
            format,
            state,
        } => show(&state.state_dir, &run_id, format),
        Command::Logs {
            run_id,
            step,
            follow,
            state,
        } => logs(&state.state_dir, &run_id, step.as_deref(), follow),
        Command::Schema => std::io::stdout()
            .write_all(crate::spec::schema::schema_json().as_bytes())
            .map_err(CliError::Output),
    }
}

/// Whether stderr gets colors.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    eprint!("{}", diagnostic::render_all(diagnostics, color()));
}

fn print_param_errors(errors: &[ParamError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

/// Every runbook file named, folders searched for `.yaml`/`.yml`, in a stable order.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_yaml(path, &mut found);
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    out
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Loads and compiles one runbook, reporting every mistake.
pub fn compile(path: &Path, params: Option<&ParamInput>) -> Result<plan::Plan, CliError> {
    let runbook = match spec::load(path) {
        Ok(r) => r,
        Err(LoadError::Invalid {
            mut diagnostics,
            partial,
            ..
        }) => {
            if let Some(partial) = partial {
                diagnostics.extend(plan::static_checks(&partial));
            }
            diagnostics.sort_by_key(|d| d.at.span.offset);
            print_diagnostics(&diagnostics);
            return Err(CliError::Invalid {
                count: diagnostics.len(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    match plan::compile(runbook, params) {
        Ok(plan) => Ok(plan),
        Err(PlanError::Invalid(diagnostics)) => {
            print_diagnostics(&diagnostics);
            Err(CliError::Invalid {
                count: diagnostics.len(),
            })
        }
        Err(PlanError::Params(errors)) => {
            print_param_errors(&errors);
            Err(CliError::Params)
        }
    }
}

fn validate(paths: &[PathBuf]) -> Result<(), CliError> {
    let files = expand(paths);
    let mut mistakes = 0;
    let mut bad_files = 0;
    let mut stdout = std::io::stdout().lock();
    for file in &files {
        match compile(file, None) {
            Ok(plan) => {
                let steps = plan.graph.node_count();
                writeln!(
                    stdout,
                    "ok: {} ({} step{})",
                    spec::source::display_path(file),
                    steps,
                    if steps == 1 { "" } else { "s" }
                )
                .map_err(CliError::Output)?;
            }
            Err(CliError::Invalid { count }) => {
                mistakes += count;
                bad_files += 1;
            }
            Err(CliError::Load(e)) => {
                eprintln!("error: {e}");
                mistakes += 1;
                bad_files += 1;
            }
            Err(other) => return Err(other),
        }
    }
    if files.is_empty() {
        eprintln!(
            "error: no runbook files found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(CliError::Invalid { count: 1 });
    }
    if mistakes > 0 {
        eprintln!(
            "error: {mistakes} mistake{} in {bad_files} of {} file{}",
            if mistakes == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
        return Err(CliError::Invalid { count: mistakes });
    }
    Ok(())
}

/// Reads `--params` files and keeps `--set` arguments.
pub fn param_input(args: &ParamArgs) -> Result<ParamInput, CliError> {
    let mut input = ParamInput {
        files: Vec::new(),
        sets: args.sets.clone(),
    };
    for file in &args.params {
        match ParamInput::read_file(file) {
            Ok(map) => input.files.push(map),
            Err(e) => {
                print_param_errors(&[e]);
                return Err(CliError::Params);
            }
        }
    }
    Ok(input)
}

fn graph(file: &Path, format: GraphFormat, args: &ParamArgs) -> Result<(), CliError> {
    let input = param_input(args)?;
    let given = !(input.sets.is_empty() && input.files.is_empty());
    let plan = compile(file, given.then_some(&input))?;
    std::io::stdout()
        .write_all(crate::report::graph::render(&plan, format).as_bytes())
        .map_err(CliError::Output)
}

fn load_run(
    state_dir: &Path,
    id: &str,
) -> Result<(crate::state::RunDir, crate::state::RunRecord), CliError> {
    let dir =
        crate::state::RunDir::open(state_dir, id).map_err(|e| CliError::Refused(e.to_string()))?;
    let record =
        crate::state::RunRecord::load(&dir).map_err(|e| CliError::Journal(e.to_string()))?;
    Ok((dir, record))
}

fn runs(state_dir: &Path, format: RunFormat) -> Result<(), CliError> {
    let mut records = Vec::new();
    for dir in crate::state::RunDir::list(state_dir) {
        match crate::state::RunRecord::load(&dir) {
            Ok(r) => records.push(r),
            Err(e) => eprintln!("warning: skipping run {}: {e}", dir.id),
        }
    }
    let text = match format {
        RunFormat::Text => crate::report::history::runs_table(&records),
        RunFormat::Json => crate::report::history::runs_json(&records),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)
}

fn show(state_dir: &Path, id: &str, format: RunFormat) -> Result<(), CliError> {
    let (_, record) = load_run(state_dir, id)?;
    let text = match format {
        RunFormat::Text => crate::report::history::show_text(&record),
        RunFormat::Json => crate::report::history::show_json(&record),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)
}

fn logs(state_dir: &Path, id: &str, step: Option<&str>, follow: bool) -> Result<(), CliError> {
    let (dir, record) = load_run(state_dir, id)?;
    let text = crate::report::history::logs(&dir, &record, step).map_err(CliError::Refused)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(CliError::Output)?;
    if !follow {
        return Ok(());
    }
    // Follow: print what each step's log gains, prefixed with the step, until the run ends.
    let mut offsets: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for s in &record.steps {
        offsets.insert(
            s.id.clone(),
            std::fs::metadata(dir.log_of(&s.id))
                .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0)),
        );
    }
    loop {
        let running = dir.is_locked();
        let (_, fresh) = load_run(state_dir, id)?;
        for s in fresh
            .steps
            .iter()
            .filter(|s| step.is_none_or(|only| only == s.id))
        {
            let Ok(text) = std::fs::read_to_string(dir.log_of(&s.id)) else {
                continue;
            };
            let seen = offsets.entry(s.id.clone()).or_insert(0);
            if text.len() > *seen {
                for line in text[*seen..].lines() {
                    writeln!(out, "{} | {line}", s.id).map_err(CliError::Output)?;
                }
                *seen = text.len();
            }
        }
        out.flush().map_err(CliError::Output)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
