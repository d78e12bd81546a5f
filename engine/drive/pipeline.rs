//! The pipeline of a run, under one tokio runtime: the executor emits events; the recorder
//! (when the run is stored) journals them and forwards them; the reporter shows them. Signals
//! stop the run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{DriveError, Presentation};
use crate::exec::{self, Message, RunOptions, RunStatus, Runtime, Secrets, SettledSteps};
use crate::plan::Plan;
use crate::plan::order::PlanOrder;
use crate::report::live::{self, View};
use crate::state::{Lease, Recorder, StoreError};

/// Where a stored run is recorded: its recorder, and the lease that lets this process write it
/// (released once the recorder is done).
pub struct Recording {
    /// Writes the journal and logs.
    pub recorder: Recorder,
    /// This process drives the run.
    pub lease: Lease,
}

/// How the executor runs: the run's id, dry-run, confirmation and parallelism.
pub fn options(
    plan: &Plan,
    run_id: String,
    dry_run: bool,
    yes: bool,
    interactive: bool,
    max_parallel: Option<usize>,
) -> RunOptions {
    let mut options = RunOptions::new(run_id);
    options.dry_run = dry_run;
    options.yes = yes;
    options.interactive = interactive;
    // A rehearsal lists steps in execution order, one at a time.
    options.max_parallel = if dry_run {
        1
    } else {
        self::max_parallel(plan, max_parallel)
    };
    if let Some(grace) = std::env::var("RUNBOOK_KILL_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.kill_grace = Duration::from_millis(grace);
    }
    options
}

/// Runs the plan (what `settled` holds is not run again); returns the run's status and, for a
/// rehearsal shown as JSON, the rehearsal.
pub fn run(
    plan: Plan,
    secrets: &Secrets,
    mut options: RunOptions,
    presentation: Presentation,
    recording: Option<Recording>,
    settled: SettledSteps,
) -> Result<(RunStatus, Vec<serde_json::Value>), DriveError> {
    options.secret_sources = secrets.sources();
    options.dead_man =
        exec::DeadMan::start(options.kill_grace, &options.secret_sources).map(Arc::new);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DriveError::Runtime)?;
    let order = PlanOrder::of(&plan);
    let (status, rehearsal, stored) = tokio.block_on(async move {
        let (tx, rx) = unbounded_channel();
        let cancel = CancellationToken::new();
        let view = View {
            mode: presentation.mode,
            color: presentation.color,
            verbosity: presentation.verbosity,
            order,
            stop: cancel.clone(),
        };
        let (reporter, recorder, lease) = consumers(rx, view, recording, &cancel);
        let rt = Arc::new(Runtime::new(options, secrets.masker(), tx, cancel.clone()));
        super::signals::watch(cancel, rt.hurry.clone());
        let status = exec::resume(Arc::new(plan), secrets, Arc::clone(&rt), settled).await;
        rt.remote.close().await;
        // The last sender of the event channel: the reporter and the recorder end with it.
        drop(rt);
        let stored = match recorder {
            Some(task) => task
                .await
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic())),
            None => Ok(()),
        };
        let rehearsal = reporter.await.unwrap_or_default();
        drop(lease);
        (status, rehearsal, stored)
    });
    stored.map_err(DriveError::Recording)?;
    Ok((status, rehearsal))
}

type Reporter = JoinHandle<Vec<serde_json::Value>>;
type Recorded = JoinHandle<Result<(), StoreError>>;

/// The reporter, and the recorder in front of it when the run is stored.
fn consumers(
    rx: UnboundedReceiver<Message>,
    view: View,
    recording: Option<Recording>,
    cancel: &CancellationToken,
) -> (Reporter, Option<Recorded>, Option<Lease>) {
    let show = |rx| tokio::spawn(live::consume(rx, view));
    match recording {
        Some(Recording { recorder, lease }) => {
            // A lease the store lost (another process may drive the run now): stop starting
            // steps at once.
            let (lost, stop) = (lease.lost().clone(), cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = lost.cancelled() => stop.cancel(),
                    () = stop.cancelled() => {}
                }
            });
            let (forward, shown) = unbounded_channel();
            let recorder = tokio::spawn(recorder.run(rx, forward, cancel.clone()));
            (show(shown), Some(recorder), Some(lease))
        }
        None => (show(rx), None, None),
    }
}

/// Steps at once in a real run: `--max-parallel`, else `defaults.max_parallel`, else 4.
pub fn max_parallel(plan: &Plan, requested: Option<usize>) -> usize {
    requested.or(plan.root().defaults.max_parallel).unwrap_or(4)
}
