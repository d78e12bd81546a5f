//! Gathering a run's evidence from its store: the journal as a timeline (with its chronicle of
//! batches, gates, waits and versions), the params, the run's own copy of its runbook compiled
//! again for the plan's order, step names and kinds, and the logs of the steps that failed.
//! Only the [`Store`] trait is read; nothing here reaches into the executor.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::model::{Evidence, FORMAT_VERSION, Param, RunFacts, RunbookFacts};
use super::{people, steps, totals};
use crate::exec::RunStatus;
use crate::plan::{ParamInput, Phase, Plan, Role};
use crate::report::history;
use crate::state::timeline::Timeline;
use crate::state::{Store, StoreError};

/// How many lines of a failed attempt's log a report shows.
pub const LOG_TAIL: usize = 12;

/// What the report knows of a plan node.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// Its position in the plan's order.
    pub position: usize,
    /// Its title as written.
    pub name: Option<String>,
    /// Its kind's key (`run`, `http`, …).
    pub kind: &'static str,
    /// In `finally:`.
    pub finally: bool,
    /// It polls (`until`).
    pub polls: bool,
}

/// What the report knows of the runbook as compiled again from the run's copy.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    /// Each node, by full id.
    pub nodes: HashMap<String, NodeFacts>,
    /// The runbook's description.
    pub description: Option<String>,
    /// The declared params, in file order.
    pub params: Vec<String>,
    /// The declared secrets' names, in file order.
    pub secrets: Vec<String>,
}

impl PlanFacts {
    /// Reads what the report needs from a compiled plan.
    pub fn of(plan: &Plan) -> Self {
        let nodes = plan
            .order
            .iter()
            .enumerate()
            .map(|(position, &index)| {
                let node = &plan.graph[index];
                let kind = match node.role {
                    Role::DynamicFanOut => "fan-out",
                    _ => node.step.kind.key(),
                };
                (
                    node.id.to_string(),
                    NodeFacts {
                        position,
                        name: node.step.name.clone(),
                        kind,
                        finally: node.phase == Phase::Finally,
                        polls: node.step.poll.is_some(),
                    },
                )
            })
            .collect();
        let root = plan.root();
        Self {
            nodes,
            description: root.description.clone(),
            params: root.params.iter().map(|p| p.name.clone()).collect(),
            secrets: root.secrets.iter().map(|s| s.name.clone()).collect(),
        }
    }
}

/// Everything a report is made from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The journal, folded.
    pub timeline: Timeline,
    /// A live process drives the run now.
    pub driven: bool,
    /// The params the run was started with.
    pub params: Map<String, Value>,
    /// The plan, when the run's copy of its runbook still compiles.
    pub plan: Option<PlanFacts>,
    /// sha256 of the run's copy of its root runbook file.
    pub copy_sha256: String,
    /// The logs of steps that had an attempt fail, by id.
    pub logs: HashMap<String, String>,
    /// When the report is made.
    pub now: Timestamp,
    /// What could not be read.
    pub notes: Vec<String>,
}

/// Reads a run's evidence from its store.
pub fn gather(store: &dyn Store, run_id: &str, now: Timestamp) -> Result<Evidence, StoreError> {
    let timeline = store.timeline(run_id)?;
    let driven = store.holder(run_id)?.is_some();
    let params = store.params(run_id)?;
    let copy = store.runbook(run_id)?;
    let root_text = copy
        .files
        .iter()
        .find(|f| f.relative == copy.root)
        .map(|f| f.bytes.clone())
        .unwrap_or_default();
    let mut notes = Vec::new();
    let plan = match compile_copy(&copy, &params) {
        Ok(plan) => Some(PlanFacts::of(&plan)),
        Err(why) => {
            notes.push(format!(
                "the run's copy of its runbook does not compile now ({why}): steps are listed without their names and kinds"
            ));
            None
        }
    };
    let mut logs = HashMap::new();
    for step in &timeline.steps {
        if steps::had_failure(step)
            && let Some(bytes) = crate::report::history::read_log(store, &timeline, &step.id, 0)?
        {
            logs.insert(
                step.id.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
    }
    let sources = Sources {
        timeline,
        driven,
        params,
        plan,
        copy_sha256: crate::state::fingerprint::sha256_hex(&root_text),
        logs,
        now,
        notes,
    };
    Ok(assemble(&sources))
}

/// Compiles a run's copy of its runbook with the run's params.
pub fn compile_copy(
    copy: &crate::state::RunbookCopy,
    params: &Map<String, Value>,
) -> Result<Plan, String> {
    let written = copy.materialise().map_err(|e| e.to_string())?;
    let input = ParamInput {
        files: vec![params.clone().into()],
        sets: Vec::new(),
    };
    crate::compile::compile(&written.root, Some(&input)).map_err(|e| e.to_string())
}

/// The evidence, from what was read.
pub fn assemble(sources: &Sources) -> Evidence {
    let timeline = &sources.timeline;
    let status = timeline.status(sources.driven);
    let processes = totals::processes(sources, status);
    let mut steps = steps::steps(sources, status, &processes);
    let waits = people::waits(sources, status, &steps, &processes);
    for wait in &waits {
        if let Some(step) = steps.iter_mut().find(|s| s.id == wait.step) {
            step.waiting_ms += wait.duration_ms;
        }
    }
    let approvals = people::approvals(timeline, &steps);
    let failures = steps::failures(sources, &steps);
    let totals = totals::totals(sources, status, &processes, &steps, &waits);
    let first = timeline.chronicle.versions.first();
    let runbook = RunbookFacts {
        name: timeline.run.runbook.clone(),
        description: sources.plan.as_ref().and_then(|p| p.description.clone()),
        source: timeline.run.source.clone(),
        sha256: first.map_or_else(|| sources.copy_sha256.clone(), |v| v.sha256.clone()),
        commit: first.and_then(|v| v.commit.clone()),
        modified: first.is_some_and(|v| v.modified),
        changed_during_run: timeline
            .chronicle
            .versions
            .iter()
            .any(|v| first.is_some_and(|f| f.sha256 != v.sha256)),
    };
    let waiting_for: Vec<String> = if status == RunStatus::Paused {
        timeline.paused.iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let resume_command = resume_command(&timeline.run.run_id, status, &waiting_for);
    Evidence {
        format: FORMAT_VERSION,
        generated_at: sources.now,
        run: RunFacts {
            id: timeline.run.run_id.clone(),
            status: status.as_str().to_owned(),
            started_at: timeline.started_at(),
            ended_at: if status == RunStatus::Running {
                None
            } else {
                timeline.finished_at()
            },
            waiting_for,
            resume_command,
        },
        runbook,
        processes,
        params: params(sources),
        steps,
        approvals,
        waits_for_people: waits,
        failures,
        notifications: timeline
            .chronicle
            .notifications
            .iter()
            .map(|n| super::model::Notification {
                on: n.on.as_str().to_owned(),
                url: n.url.clone(),
                at: n.at,
                delivered: n.error.is_none(),
                detail: match (&n.error, n.status) {
                    (Some(error), _) => error.clone(),
                    (None, Some(code)) => format!("HTTP {code}"),
                    (None, None) => "sent".to_owned(),
                },
            })
            .collect(),
        totals,
        notes: sources.notes.clone(),
    }
}

/// What to type to continue a run that stopped.
fn resume_command(run_id: &str, status: RunStatus, waiting: &[String]) -> Option<String> {
    match status {
        RunStatus::Paused => Some(format!(
            "runbook resume {run_id}{}",
            waiting.iter().fold(String::new(), |mut out, w| {
                let _ = write!(out, " --approve {w}");
                out
            })
        )),
        RunStatus::Failed | RunStatus::Interrupted => Some(format!("runbook resume {run_id}")),
        RunStatus::Running | RunStatus::Succeeded => None,
    }
}

/// The params in the order the runbook declares them, then any others, then the secrets by
/// name with their values masked.
fn params(sources: &Sources) -> Vec<Param> {
    let declared = sources
        .plan
        .as_ref()
        .map(|p| p.params.clone())
        .unwrap_or_default();
    let mut names: Vec<&String> = declared
        .iter()
        .filter(|n| sources.params.contains_key(n.as_str()))
        .collect();
    names.extend(sources.params.keys().filter(|k| !declared.contains(k)));
    let mut out: Vec<Param> = names
        .into_iter()
        .map(|name| Param {
            name: name.clone(),
            value: sources.params[name.as_str()].clone(),
            secret: false,
        })
        .collect();
    for secret in sources.plan.iter().flat_map(|p| &p.secrets) {
        out.push(Param {
            name: secret.clone(),
            value: Value::String("***".to_owned()),
            secret: true,
        });
    }
    out
}

/// A step's status and reason as `show` tells them (a step left in flight by a run that
/// stopped is pending again).
pub fn shown_status(
    step: &crate::state::timeline::StepHistory,
    status: RunStatus,
) -> (String, Option<String>) {
    let (s, reason) = history::shown(step, status);
    (s.as_str().to_owned(), reason.map(str::to_owned))
}
