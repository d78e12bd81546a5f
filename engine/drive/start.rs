//! Starting a run (or rehearsing one): secrets and confirmations first, then the run's record
//! in the store, then the pipeline.

use super::checks::{People, approvals, check_destructive, resolve_secrets};
use super::pipeline::{self, Recording};
use super::{DriveError, Outcome, Presentation};
use std::collections::HashMap;

use crate::exec::SettledSteps;
use crate::exec::approvals::Verdict;
use crate::plan::Plan;
use crate::state::store::NewRun;
use crate::state::{Record, Recorder, RunbookCopy, Store, fingerprint, identity, journal};

/// What `run` asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The run's id (default: [`new_run_id`]).
    pub run_id: Option<String>,
    /// Rehearse: only `safe` steps execute, nothing is stored.
    pub dry_run: bool,
    /// Confirm destructive steps (never a manual step).
    pub yes: bool,
    /// Manual steps approved up front (`--approve STEP`): recorded when each is reached.
    pub approve: Vec<String>,
    /// Who decides manual steps, `--approve-all`, `--input`.
    pub people: People,
    /// Steps at once (default: the runbook's, else 4).
    pub max_parallel: Option<usize>,
    /// How the run is shown.
    pub presentation: Presentation,
    /// The steps left out (`--only`, `--from`): recorded as skipped, never run.
    pub left_out: SettledSteps,
}

/// How a run ended, and what its rehearsal listed (JSON mode).
#[derive(Debug)]
pub struct Started {
    /// How it ended.
    pub outcome: Outcome,
    /// The rehearsal's steps (`--dry-run --format json`).
    pub rehearsal: Vec<serde_json::Value>,
}

/// A new run id: the runbook's name, the UTC start time and a few random-ish digits.
pub fn new_run_id(name: &str) -> String {
    let now = jiff::Timestamp::now();
    let salt = (now.subsec_nanosecond().unsigned_abs() % 10_000) ^ (std::process::id() % 10_000);
    format!("{name}-{}-{salt:04}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Runs (or rehearses) a compiled plan; a real run is kept in `store`.
pub fn start(store: &dyn Store, plan: Plan, request: &StartRequest) -> Result<Started, DriveError> {
    let version = (!request.dry_run).then(|| super::version::Probe::start(&plan));
    let secrets = resolve_secrets(&plan)?;
    let interactive = request.presentation.interactive;
    let named = crate::exec::approvals::check_named(&plan, &request.approve)
        .map_err(|errors| DriveError::Approvals { errors })?;
    let verdicts = named
        .into_iter()
        .map(|step| Verdict {
            step,
            approved: true,
            reason: None,
        })
        .collect();
    let people = approvals(&plan, &request.people, verdicts, HashMap::new())?;
    if !request.dry_run {
        check_destructive(&plan, &request.left_out, request.yes, interactive)?;
    }
    let run_id = request
        .run_id
        .clone()
        .unwrap_or_else(|| new_run_id(&plan.root().name));
    let recording = match version {
        Some(version) => Some(create(store, &plan, &run_id, version)?),
        None => None,
    };
    let mut options = pipeline::options(
        &plan,
        run_id,
        request.dry_run,
        request.yes,
        interactive,
        request.max_parallel,
    );
    options.approvals = people;
    let (status, rehearsal) = pipeline::run(
        plan,
        &secrets,
        options,
        request.presentation,
        recording,
        request.left_out.clone(),
    )?;
    Ok(Started {
        outcome: status.into(),
        rehearsal,
    })
}

/// Creates the run in the store (which gives this process its lease), starting its journal.
fn create(
    store: &dyn Store,
    plan: &Plan,
    run_id: &str,
    version: super::version::Probe,
) -> Result<Recording, DriveError> {
    let started = Record::RunStarted {
        v: journal::FORMAT_VERSION,
        run_id: run_id.to_owned(),
        runbook: plan.root().name.clone(),
        source: plan.root().file.display_path(),
        hash: fingerprint::files_hash(plan),
        steps: fingerprint::node_hashes(plan),
        order: plan.declared_order(),
        fingerprint: fingerprint::FINGERPRINT_VERSION,
        at: journal::now(),
        pid: std::process::id(),
        user: identity::current_user(),
        host: identity::host_name(),
    };
    let lease = store.create(&NewRun {
        run_id,
        runbook: &plan.root().name,
        files: &RunbookCopy::of_plan(plan),
        params: &plan.params,
        first: &started,
    })?;
    let mut recorder = Recorder::new(store.journal(&lease)?);
    recorder.append(&[version.record()])?;
    Ok(Recording { recorder, lease })
}
