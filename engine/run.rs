//! Starting a run: secrets, confirmations that must happen before anything runs, the tokio
//! runtime, signals, the reporter, and the outcome as an exit code.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::exec::{self, RunOptions, RunStatus, Runtime, Secrets};
use crate::plan::{Phase, Plan};
use crate::report::live::{self, Mode};

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Rehearse only.
    pub dry_run: bool,
    /// Approve manual and destructive steps.
    pub yes: bool,
    /// `--max-parallel`.
    pub max_parallel: Option<usize>,
    /// `--run-id`.
    pub run_id: Option<String>,
    /// `--no-progress`.
    pub no_progress: bool,
    /// `--format json` (rehearsal only).
    pub json: bool,
}

/// A new run id: the runbook's name, the UTC start time and a few random-ish digits.
pub fn new_run_id(name: &str) -> String {
    let now = jiff::Timestamp::now();
    let salt = (now.subsec_nanosecond().unsigned_abs() % 10_000) ^ (std::process::id() % 10_000);
    format!("{name}-{}-{salt:04}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Runs (or rehearses) a compiled plan; the outcome maps to the process exit code.
pub fn start(plan: Plan, request: &Request) -> Result<(), CliError> {
    if request.json && !request.dry_run {
        return Err(CliError::Refused(
            "--format json is for --dry-run; a real run reports with `runbook show`".to_owned(),
        ));
    }
    let secrets = Secrets::resolve(plan.runbooks.iter().map(AsRef::as_ref)).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        CliError::Refused(format!("{}\nnothing was run", text.join("\nerror: ")))
    })?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !request.dry_run && !request.yes && !interactive {
        let destructive: Vec<&str> = plan
            .graph
            .node_weights()
            .filter(|n| n.step.destructive && matches!(n.phase, Phase::Main | Phase::Finally))
            .map(|n| n.id.as_str())
            .collect();
        if !destructive.is_empty() {
            return Err(CliError::Refused(format!(
                "this runbook has destructive steps ({}) and there is no terminal to confirm them; pass --yes to approve them, or rehearse with --dry-run\nnothing was run",
                destructive.join(", ")
            )));
        }
    }
    let run_id = request
        .run_id
        .clone()
        .unwrap_or_else(|| new_run_id(&plan.root().name));
    let mut options = RunOptions::new(run_id);
    options.dry_run = request.dry_run;
    options.yes = request.yes;
    options.interactive = interactive;
    // A rehearsal lists steps in execution order, one at a time.
    options.max_parallel = if request.dry_run {
        1
    } else {
        request
            .max_parallel
            .or(plan.root().defaults.max_parallel)
            .unwrap_or(4)
    };
    if let Some(grace) = std::env::var("RUNBOOK_KILL_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.kill_grace = Duration::from_millis(grace);
    }
    let mode = if request.json {
        Mode::Json
    } else if std::io::stdout().is_terminal() && !request.no_progress {
        Mode::Progress
    } else {
        Mode::Plain
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Refused(format!("failed to start the async runtime: {e}")))?;
    let (status, rehearsal) = tokio.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let reporter = tokio::spawn(live::consume(rx, mode, color));
        // Handlers are installed before any step starts: an early Ctrl-C must not kill the
        // engine outright and leave a step's process group running.
        if let (Ok(int), Ok(term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::spawn(watch_signals(int, term, cancel.clone()));
        }
        let rt = Arc::new(Runtime::new(options, secrets.masker(), tx, cancel));
        let status = exec::execute(Arc::new(plan), &secrets, rt).await;
        let rehearsal = reporter.await.unwrap_or_default();
        (status, rehearsal)
    });
    if request.json {
        let document = serde_json::to_string_pretty(&serde_json::json!({ "steps": rehearsal }))
            .unwrap_or_default();
        writeln!(std::io::stdout().lock(), "{document}").map_err(CliError::Output)?;
    }
    match status {
        RunStatus::Succeeded | RunStatus::Running => Ok(()),
        RunStatus::Failed => Err(CliError::RunFailed),
        RunStatus::Paused => Err(CliError::RunPaused),
        RunStatus::Interrupted => Err(CliError::RunInterrupted),
    }
}

/// SIGINT/SIGTERM cancel the run: running steps' process groups are stopped.
async fn watch_signals(mut int: Signal, mut term: Signal, cancel: CancellationToken) {
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    cancel.cancel();
    // A second signal ends the process at once.
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}
