//! Starting and resuming runs: secrets, the checks that must pass before anything runs, the run
//! folder and its lock, the tokio runtime, signals, and the pipeline executor → recorder →
//! reporter. The outcome becomes the process exit code.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::{CliError, store_error};
use crate::exec::{self, RunOptions, RunStatus, Runtime, Secrets, SettledSteps, StepStatus};
use crate::plan::{self, ParamInput, Phase, Plan};
use crate::report::live::{self, Mode};
use crate::spec;
use crate::state::fingerprint::{self, Changes};
use crate::state::identity;
use crate::state::journal::{self, Record};
use crate::state::resume::{self, ResumeError, ResumeRequest};
use crate::state::store::NewRun;
use crate::state::{Lease, LocalStore, Recorder, RunbookCopy, Store};

/// What `run` asked for.
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
    /// Where runs are kept.
    pub state_dir: PathBuf,
}

/// What `resume` asked for.
#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// The run's id (`runbook runs` lists them).
    pub run_id: String,
    /// Confirm re-running in-flight steps that are not idempotent; approve manual and destructive steps.
    #[arg(long)]
    pub yes: bool,
    /// Approve a paused manual step (repeatable).
    #[arg(long, value_name = "STEP")]
    pub approve: Vec<String>,
    /// Reject a paused manual step: the run fails and `finally` runs.
    #[arg(long, value_name = "STEP")]
    pub reject: Vec<String>,
    /// Why the step is rejected (recorded in the journal).
    #[arg(long, requires = "reject")]
    pub reason: Option<String>,
    /// Who approves or rejects (default: the OS user).
    #[arg(long = "as", value_name = "NAME")]
    pub approver: Option<String>,
    /// Resume even though the runbook file changed since the run began.
    #[arg(long)]
    pub allow_changed: bool,
    /// Run a step again, and everything after it that depends on it (repeatable).
    #[arg(long, value_name = "STEP")]
    pub rerun: Vec<String>,
    /// Steps at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: Option<u16>,
    /// Plain line-per-event output even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub state: crate::cli::StateArgs,
}

/// A new run id: the runbook's name, the UTC start time and a few random-ish digits.
pub fn new_run_id(name: &str) -> String {
    let now = jiff::Timestamp::now();
    let salt = (now.subsec_nanosecond().unsigned_abs() % 10_000) ^ (std::process::id() % 10_000);
    format!("{name}-{}-{salt:04}", now.strftime("%Y%m%d-%H%M%S"))
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn resolve_secrets(plan: &Plan) -> Result<Secrets, CliError> {
    Secrets::resolve(plan.runbooks.iter().map(AsRef::as_ref)).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        CliError::Refused(format!("{}\nnothing was run", text.join("\nerror: ")))
    })
}

/// Without a terminal, destructive steps need `--yes` before anything runs.
fn check_destructive(plan: &Plan, settled: &SettledSteps, yes: bool) -> Result<(), CliError> {
    if yes || interactive() {
        return Ok(());
    }
    let destructive: Vec<&str> = plan
        .graph
        .node_weights()
        .filter(|n| n.step.destructive && !(n.phase == Phase::Main && settled.contains_key(&n.id)))
        .map(|n| n.id.as_str())
        .collect();
    if destructive.is_empty() {
        return Ok(());
    }
    Err(CliError::Refused(format!(
        "this runbook has destructive steps ({}) and there is no terminal to confirm them; pass --yes to approve them, or rehearse with --dry-run\nnothing was run",
        destructive.join(", ")
    )))
}

/// Runs (or rehearses) a compiled plan.
pub fn start(plan: Plan, request: &Request) -> Result<(), CliError> {
    if request.json && !request.dry_run {
        return Err(CliError::Refused(
            "--format json is for --dry-run; a real run reports with `runbook show`".to_owned(),
        ));
    }
    let secrets = resolve_secrets(&plan)?;
    if !request.dry_run {
        check_destructive(&plan, &SettledSteps::new(), request.yes)?;
    }
    let run_id = request
        .run_id
        .clone()
        .unwrap_or_else(|| new_run_id(&plan.root().name));
    let recording = if request.dry_run {
        None
    } else {
        Some(create_run(
            &plan,
            &run_id,
            &LocalStore::new(&request.state_dir),
        )?)
    };
    let options = options(
        &plan,
        run_id,
        request.dry_run,
        request.yes,
        request.max_parallel,
    );
    let mode = mode(request.json, request.no_progress);
    let (status, rehearsal) = drive(
        plan,
        &secrets,
        options,
        mode,
        recording,
        SettledSteps::new(),
    )?;
    if request.json {
        let document = serde_json::to_string_pretty(&serde_json::json!({ "steps": rehearsal }))
            .unwrap_or_default();
        writeln!(std::io::stdout().lock(), "{document}").map_err(CliError::Output)?;
    }
    outcome(status)
}

/// Creates the run in the store (which gives this process its lease) and journals its start.
fn create_run(plan: &Plan, run_id: &str, store: &dyn Store) -> Result<(Recorder, Lease), CliError> {
    let started = Record::RunStarted {
        v: journal::FORMAT_VERSION,
        run_id: run_id.to_owned(),
        runbook: plan.root().name.clone(),
        source: plan.root().file.display_path(),
        hash: fingerprint::files_hash(plan),
        steps: fingerprint::node_hashes(plan),
        fingerprint: fingerprint::FINGERPRINT_VERSION,
        at: journal::now(),
        pid: std::process::id(),
        user: identity::current_user(),
        host: identity::host_name(),
    };
    let lease = store
        .create(&NewRun {
            run_id,
            runbook: &plan.root().name,
            files: &RunbookCopy::of_plan(plan),
            params: &plan.params,
            first: &started,
        })
        .map_err(store_error)?;
    let recorder = Recorder::new(store.journal(&lease).map_err(store_error)?);
    Ok((recorder, lease))
}

fn options(
    plan: &Plan,
    run_id: String,
    dry_run: bool,
    yes: bool,
    max_parallel: Option<usize>,
) -> RunOptions {
    let mut options = RunOptions::new(run_id);
    options.dry_run = dry_run;
    options.yes = yes;
    options.interactive = interactive();
    // A rehearsal lists steps in execution order, one at a time.
    options.max_parallel = if dry_run {
        1
    } else {
        max_parallel
            .or(plan.root().defaults.max_parallel)
            .unwrap_or(4)
    };
    if let Some(grace) = std::env::var("RUNBOOK_KILL_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.kill_grace = Duration::from_millis(grace);
    }
    options
}

fn mode(json: bool, no_progress: bool) -> Mode {
    if json {
        Mode::Json
    } else if std::io::stdout().is_terminal() && !no_progress {
        Mode::Progress
    } else {
        Mode::Plain
    }
}

fn outcome(status: RunStatus) -> Result<(), CliError> {
    match status {
        RunStatus::Succeeded | RunStatus::Running => Ok(()),
        RunStatus::Failed => Err(CliError::RunFailed),
        RunStatus::Paused => Err(CliError::RunPaused),
        RunStatus::Interrupted => Err(CliError::RunInterrupted),
    }
}

/// The pipeline: executor → recorder (journal, logs) → reporter, under one tokio runtime.
fn drive(
    plan: Plan,
    secrets: &Secrets,
    options: RunOptions,
    mode: Mode,
    recording: Option<(Recorder, Lease)>,
    settled: SettledSteps,
) -> Result<(RunStatus, Vec<serde_json::Value>), CliError> {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Refused(format!("failed to start the async runtime: {e}")))?;
    let (status, rehearsal, stored) = tokio.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let (recorder, lock) = recording.map_or((None, None), |(r, l)| (Some(r), Some(l)));
        let (reporter, recorder) = match recorder {
            Some(recorder) => {
                let (forward, shown) = tokio::sync::mpsc::unbounded_channel();
                let reporter = tokio::spawn(live::consume(shown, mode, color));
                (
                    reporter,
                    Some(tokio::spawn(recorder.run(rx, forward, cancel.clone()))),
                )
            }
            None => (tokio::spawn(live::consume(rx, mode, color)), None),
        };
        let rt = Arc::new(Runtime::new(options, secrets.masker(), tx, cancel.clone()));
        // Handlers are installed before any step starts: an early Ctrl-C must not kill the
        // engine outright and leave a step's process group running.
        if let (Ok(int), Ok(term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::spawn(watch_signals(int, term, cancel, rt.hurry.clone()));
        }
        let status = exec::resume(Arc::new(plan), secrets, rt, settled).await;
        let stored = match recorder {
            Some(task) => task
                .await
                .map_or_else(|e| Err(e.to_string()), |r| r.map_err(|e| e.to_string())),
            None => Ok(()),
        };
        let rehearsal = reporter.await.unwrap_or_default();
        drop(lock);
        (status, rehearsal, stored)
    });
    stored.map_err(CliError::Journal)?;
    Ok((status, rehearsal))
}

/// SIGINT/SIGTERM stop the run (process groups get SIGTERM, then SIGKILL after a grace
/// period); a second signal skips the grace period; a third ends the engine at once.
async fn watch_signals(
    mut int: Signal,
    mut term: Signal,
    cancel: CancellationToken,
    hurry: CancellationToken,
) {
    for token in [cancel, hurry] {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}

/// How long a resume waits for processes the previous engine left running to end by themselves.
const LEFTOVER_PATIENCE: Duration = Duration::from_secs(3);

/// Continues a run from its journal.
pub fn resume(args: &ResumeArgs) -> Result<(), CliError> {
    let store = args.state.store();
    let lease = store.take(&args.run_id).map_err(store_error)?;
    let params = store.params(&args.run_id).map_err(store_error)?;
    let input = ParamInput {
        files: vec![params],
        sets: Vec::new(),
    };
    let copy = store.runbook(&args.run_id).map_err(store_error)?;
    // The runbook where it lives now (secret files resolve next to it); the run's own copy
    // only when the original is gone.
    let original = copy.original_root().to_owned();
    // The journal is read while the runbook compiles: for a long run, each takes a while.
    let (record, compiled) = std::thread::scope(|scope| {
        let reading = scope.spawn(|| store.timeline(&args.run_id));
        let compiled = original
            .is_file()
            .then(|| crate::cli::compile(&original, Some(&input)));
        (reading.join(), compiled)
    });
    let record = record
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .map_err(store_error)?;
    // Steps in flight when the engine stopped may still be running: never start them beside
    // themselves.
    let groups: Vec<i32> = record
        .steps
        .iter()
        .flat_map(|s| s.groups().iter().copied())
        .collect();
    let leftovers = crate::state::leftovers::wait(&args.run_id, &groups, LEFTOVER_PATIENCE);
    if !leftovers.is_empty() {
        let list: Vec<String> = leftovers
            .iter()
            .map(|l| {
                format!(
                    "  pid {} (group {}) of step {}: {}",
                    l.pid, l.pgid, l.step, l.command
                )
            })
            .collect();
        let groups: std::collections::BTreeSet<String> =
            leftovers.iter().map(|l| format!("-{}", l.pgid)).collect();
        return Err(CliError::Locked(format!(
            "run {} still has processes from the engine that stopped:\n{}\nwait for them to finish, or stop them (kill -TERM {}), then resume",
            args.run_id,
            list.join("\n"),
            groups.into_iter().collect::<Vec<_>>().join(" ")
        )));
    }
    // This process holds the lease: nobody else drives the run.
    let run_status = record.status(false);
    if run_status == RunStatus::Succeeded && args.rerun.is_empty() {
        println!(
            "run {} already succeeded; nothing to do (`runbook show {}` has its steps)",
            record.run.run_id, record.run.run_id
        );
        return Ok(());
    }
    let mut adopted: Option<Record> = None;
    let plan = if let Some(current) = compiled {
        let current = current?;
        // Per-step hashes only when the files differ: hashing every step of a long runbook
        // costs more than the rest of a resume. Hashes of another canonical form (a run started
        // by an older build) cannot be compared step by step.
        let same_files = fingerprint::files_hash(&current) == record.run.hash;
        let comparable = record.run.fingerprint == fingerprint::FINGERPRINT_VERSION;
        let changes = if same_files || !comparable {
            Changes::default()
        } else {
            Changes::between(&record.run.step_hashes, &fingerprint::node_hashes(&current))
        };
        if !same_files && (!changes.is_empty() || !comparable) {
            let what = if comparable {
                changes.describe()
            } else {
                "  (which steps changed is unknown: the run was started by an older build of runbook, whose step fingerprints cannot be compared with this one's)\n".to_owned()
            };
            if !args.allow_changed {
                return Err(CliError::Refused(format!(
                    "{} changed since run {} began:\n{what}resume with --allow-changed to continue with the new version (steps that succeeded stay done unless --rerun STEP)",
                    spec::source::display_path(&copy.source),
                    record.run.run_id,
                )));
            }
            eprintln!("continuing with the changed runbook:\n{}", what.trim_end());
            // The run now follows this version: later resumes compare against it.
            adopted = Some(Record::RunbookChanged {
                hash: fingerprint::files_hash(&current),
                steps: fingerprint::node_hashes(&current),
                fingerprint: fingerprint::FINGERPRINT_VERSION,
                by: identity::current_user(),
                at: journal::now(),
            });
        }
        current
    } else {
        eprintln!(
            "{} is gone; resuming with the run's own copy of it",
            spec::source::display_path(&copy.source)
        );
        let written = copy.materialise().map_err(|e| {
            CliError::Refused(format!(
                "failed to write the run's copy of its runbook to a temporary folder: {e}"
            ))
        })?;
        compile_quiet(&written.root, &input)?
    };
    let user = args.approver.clone().unwrap_or_else(identity::current_user);
    let host = identity::host_name();
    let mut request = ResumeRequest {
        rerun: args.rerun.clone(),
        approve: args.approve.clone(),
        reject: args.reject.clone(),
        reason: args.reason.clone(),
        confirmed: args.yes,
    };
    let decision = match resume::decide(&record, &plan, &request, &user) {
        Err(ResumeError::NeedsConfirmation(steps)) if interactive() => {
            let question = format!(
                "{} in flight when the run stopped and may have taken effect: {}. Run again?",
                if steps.len() == 1 {
                    "this step was"
                } else {
                    "these steps were"
                },
                steps.join(", ")
            );
            if !dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact()
                .unwrap_or(false)
            {
                return Err(CliError::Refused("nothing was run".to_owned()));
            }
            request.confirmed = true;
            resume::decide(&record, &plan, &request, &user)
        }
        other => other,
    }
    .map_err(|e| CliError::Refused(e.to_string()))?;
    let secrets = resolve_secrets(&plan)?;
    check_destructive(&plan, &decision.settled, args.yes)?;

    let mut recorder = Recorder::new(store.journal(&lease).map_err(store_error)?);
    let mut records = vec![Record::Resumed {
        at: journal::now(),
        pid: std::process::id(),
        user: user.clone(),
        host: host.clone(),
    }];
    records.extend(adopted);
    for (ids, approved) in [(&args.approve, true), (&args.reject, false)] {
        for id in ids {
            let id =
                crate::plan::NodeId::parse(id).map_err(|e| CliError::Refused(e.to_string()))?;
            records.push(Record::Approval {
                id: id.clone(),
                approved,
                by: user.clone(),
                host: host.clone(),
                reason: if approved { None } else { args.reason.clone() },
                at: journal::now(),
            });
            if approved {
                records.push(Record::StepFinished {
                    id: id.clone(),
                    status: StepStatus::Succeeded,
                    attempts: 1,
                    outputs: serde_json::Map::new(),
                    items: Vec::new(),
                    reason: Some(format!("approved by {user}")),
                    duration_ms: 0,
                    at: journal::now(),
                });
            }
        }
    }
    recorder
        .append(&records)
        .map_err(|e| CliError::Journal(e.to_string()))?;
    for (id, why) in &decision.rerun_in_flight {
        eprintln!("{id} was in flight when the run stopped; running it again: {why}");
    }
    let options = options(
        &plan,
        record.run.run_id.clone(),
        false,
        args.yes,
        args.max_parallel.map(usize::from),
    );
    let mode = mode(false, args.no_progress);
    let (status, _) = drive(
        plan,
        &secrets,
        options,
        mode,
        Some((recorder, lease)),
        decision.settled,
    )?;
    outcome(status)
}

fn compile_quiet(path: &Path, input: &ParamInput) -> Result<Plan, CliError> {
    let runbook = spec::load(path).map_err(|e| {
        CliError::Refused(format!("the run's copy of its runbook is unreadable: {e}"))
    })?;
    plan::compile(runbook, Some(input)).map_err(|e| {
        CliError::Refused(format!(
            "the run's copy of its runbook no longer compiles: {e}"
        ))
    })
}
