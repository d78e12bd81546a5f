//! What a run's journal says: its status, each step's status, attempts, times and outputs,
//! approvals, and what a resume must know (in-flight steps, paused steps).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::journal::{self, JournalError, Record};
use super::run_dir::{RunDir, RunDirError};
use crate::exec::{RunStatus, StepStatus};
use crate::plan::NodeId;

/// Why a run's history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The run folder.
    #[error(transparent)]
    Dir(#[from] RunDirError),
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// One step as the journal knows it (SPEC §5 `show --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Full id.
    pub id: NodeId,
    /// Last known status.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// First start.
    pub started_at: Option<String>,
    /// Last finish.
    pub finished_at: Option<String>,
    /// Outputs.
    pub outputs: Map<String, Value>,
    /// Items of a run-time fan-out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Value>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Started but never finished when its process died.
    #[serde(skip)]
    pub in_flight: bool,
    /// Process groups its in-flight attempt started (a resume waits until they have ended).
    #[serde(skip)]
    pub groups: Vec<i32>,
}

/// An approval or rejection of a manual step.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// The step.
    pub id: NodeId,
    /// Approved or rejected.
    pub approved: bool,
    /// Who.
    pub by: String,
    /// When.
    pub at: String,
    /// Why (rejections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A run as its journal tells it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// running, succeeded, failed, paused or interrupted.
    pub status: RunStatus,
    /// When it was created.
    pub started_at: Option<String>,
    /// When it last ended.
    pub finished_at: Option<String>,
    /// Steps in the order they first appeared.
    pub steps: Vec<StepRecord>,
    /// Manual approvals.
    pub approvals: Vec<ApprovalRecord>,
    /// Steps paused for approval (not approved since).
    #[serde(skip)]
    pub paused: Vec<NodeId>,
    /// The hash of the runbook files as they ran.
    #[serde(skip)]
    pub hash: String,
    /// Hash of each compiled node, by id.
    #[serde(skip)]
    pub step_hashes: Map<String, Value>,
    /// The version of those hashes' canonical form.
    #[serde(skip)]
    pub fingerprint: u32,
}

impl RunRecord {
    /// Reads a run folder's journal.
    pub fn load(dir: &RunDir) -> Result<Self, HistoryError> {
        let meta = dir.meta()?;
        let records = journal::load(&dir.journal())?;
        let mut run = Self {
            run_id: dir.id.clone(),
            runbook: meta.runbook,
            status: RunStatus::Running,
            started_at: Some(meta.created_at),
            finished_at: None,
            steps: Vec::new(),
            approvals: Vec::new(),
            paused: Vec::new(),
            hash: String::new(),
            step_hashes: Map::new(),
            fingerprint: 0,
        };
        let mut index: HashMap<NodeId, usize> = HashMap::new();
        let mut ended = false;
        for record in records {
            match record {
                Record::RunStarted {
                    at,
                    hash,
                    steps,
                    fingerprint,
                    ..
                } => {
                    run.started_at = Some(at);
                    run.hash = hash;
                    run.step_hashes = steps;
                    run.fingerprint = fingerprint;
                }
                Record::RunbookChanged {
                    hash,
                    steps,
                    fingerprint,
                    ..
                } => {
                    run.hash = hash;
                    run.step_hashes = steps;
                    run.fingerprint = fingerprint;
                }
                Record::Resumed { .. } => {
                    ended = false;
                    run.paused.clear();
                }
                Record::StepStarted { id, attempt, at } => {
                    let step = run.step(&mut index, &id);
                    step.status = StepStatus::Running;
                    step.in_flight = true;
                    step.groups.clear();
                    step.attempts = step.attempts.max(attempt);
                    step.started_at.get_or_insert(at);
                }
                Record::ProcessStarted { id, pgid, .. } => {
                    run.step(&mut index, &id).groups.push(pgid);
                }
                Record::StepFinished {
                    id,
                    status,
                    attempts,
                    outputs,
                    items,
                    reason,
                    at,
                    ..
                } => {
                    let step = run.step(&mut index, &id);
                    step.status = status;
                    step.in_flight = false;
                    step.attempts = step.attempts.max(attempts);
                    step.outputs = outputs;
                    step.items = items;
                    step.reason = reason;
                    step.finished_at = Some(at);
                }
                Record::Paused { id, .. } => {
                    let step = run.step(&mut index, &id);
                    step.status = StepStatus::Pending;
                    step.in_flight = false;
                    run.paused.push(id);
                }
                Record::Approval {
                    id,
                    approved,
                    by,
                    reason,
                    at,
                } => {
                    run.paused.retain(|p| p != &id);
                    run.approvals.push(ApprovalRecord {
                        id,
                        approved,
                        by,
                        at,
                        reason,
                    });
                }
                Record::RunFinished { status, at } => {
                    run.status = status;
                    run.finished_at = Some(at);
                    ended = true;
                }
            }
        }
        // Steps that never started are pending (in the order of their ids: the journal
        // records no plan order for them).
        let never: Vec<NodeId> = run
            .step_hashes
            .keys()
            .filter(|id| !index.contains_key(id.as_str()))
            .filter_map(|id| NodeId::parse(id).ok())
            .collect();
        for id in never {
            run.step(&mut index, &id);
        }
        if !ended {
            // Nobody holds the lock: the process that drove the run died.
            run.status = if dir.is_locked() {
                RunStatus::Running
            } else {
                RunStatus::Interrupted
            };
        }
        if run.status != RunStatus::Running {
            // Nothing runs in a run that stopped: a step it left in flight is to be run (or
            // decided) again, and says so.
            for step in run.steps.iter_mut().filter(|s| s.in_flight) {
                step.status = StepStatus::Pending;
                step.reason = Some("in flight when the run stopped".to_owned());
            }
        }
        Ok(run)
    }

    fn step(&mut self, index: &mut HashMap<NodeId, usize>, id: &NodeId) -> &mut StepRecord {
        if let Some(&i) = index.get(id) {
            return &mut self.steps[i];
        }
        let i = *index.entry(id.clone()).or_insert_with(|| {
            self.steps.push(StepRecord {
                id: id.clone(),
                status: StepStatus::Pending,
                attempts: 0,
                started_at: None,
                finished_at: None,
                outputs: Map::new(),
                items: Vec::new(),
                reason: None,
                in_flight: false,
                groups: Vec::new(),
            });
            self.steps.len() - 1
        });
        &mut self.steps[i]
    }

    /// A step by id.
    pub fn get(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// How long the run has taken so far (first start to last end).
    pub fn duration(&self) -> Option<std::time::Duration> {
        let start: jiff::Timestamp = self.started_at.as_ref()?.parse().ok()?;
        let end: jiff::Timestamp = self.finished_at.as_ref()?.parse().ok()?;
        let span = end.duration_since(start);
        std::time::Duration::try_from(span).ok()
    }
}
