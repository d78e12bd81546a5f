//! Deciding what a resume does: which steps are already done (never re-run), which were in
//! flight when the process died and how each is handled, which are re-run on request, and which
//! manual steps are approved or rejected.

use std::collections::{BTreeSet, HashSet};

use petgraph::visit::Dfs;
use serde_json::Map;

use super::history::RunRecord;
use crate::exec::{Settled, SettledSteps, StepStatus};
use crate::plan::{NodeId, Phase, Plan, Role};
use crate::spec::StepKind;

/// Why a resume cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// `--rerun`, `--approve` or `--reject` names no step of the run.
    #[error("run has no step `{id}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownStep {
        /// The id as given.
        id: String,
        /// Did you mean.
        hint: Option<String>,
    },
    /// `--approve`/`--reject` of a step that is not a manual step waiting for approval.
    #[error("step `{0}` is not waiting for approval")]
    NotPaused(NodeId),
    /// In-flight steps that are not idempotent and have no check, without confirmation.
    #[error("{} in flight when the run stopped and not safe to repeat blindly: {}; they may or may not have taken effect. Check by hand, then resume with --yes to run them again", if .0.len() == 1 { "this step was" } else { "these steps were" }, .0.iter().map(NodeId::as_str).collect::<Vec<_>>().join(", "))]
    NeedsConfirmation(Vec<NodeId>),
}

/// The operator's instructions for a resume.
#[derive(Debug, Clone, Default)]
pub struct ResumeRequest {
    /// Steps to run again (with everything after them that depends on them).
    pub rerun: Vec<String>,
    /// Manual steps approved now.
    pub approve: Vec<String>,
    /// Manual steps rejected now.
    pub reject: Vec<String>,
    /// Why they are rejected.
    pub reason: Option<String>,
    /// Re-run in-flight non-idempotent steps without a check (`--yes` or a terminal's answer).
    pub confirmed: bool,
}

/// The decision, ready for the executor.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// What is settled.
    pub settled: SettledSteps,
    /// In-flight steps that will run again, and why that is safe.
    pub rerun_in_flight: Vec<(NodeId, &'static str)>,
}

/// Decides what a resume does.
pub fn decide(
    record: &RunRecord,
    plan: &Plan,
    request: &ResumeRequest,
    user: &str,
) -> Result<Decision, ResumeError> {
    let known: Vec<&str> = plan.graph.node_weights().map(|n| n.id.as_str()).collect();
    let unknown = |id: &str| ResumeError::UnknownStep {
        id: id.to_owned(),
        hint: crate::spec::suggest::did_you_mean(id, known.iter().copied()),
    };
    let mut rerun: BTreeSet<NodeId> = BTreeSet::new();
    for id in &request.rerun {
        let asked = NodeId::parse(id).map_err(|_| unknown(id))?;
        // The step, its items, and the steps inside it (a call).
        let starts: Vec<_> = plan
            .graph
            .node_indices()
            .filter(|&n| plan.graph[n].id.is_within(&asked))
            .collect();
        if starts.is_empty() {
            return Err(unknown(id));
        }
        for start in starts {
            let mut dfs = Dfs::new(&plan.graph, start);
            while let Some(n) = dfs.next(&plan.graph) {
                rerun.insert(plan.graph[n].id.clone());
            }
        }
    }
    let mut decision = Decision::default();
    for step in &record.steps {
        let rerun_it =
            rerun.contains(&step.id) || step.id.fan_out().is_some_and(|f| rerun.contains(&f));
        if matches!(step.status, StepStatus::Succeeded | StepStatus::Skipped)
            && !rerun_it
            && !step.in_flight
        {
            decision.settled.insert(
                step.id.clone(),
                Settled {
                    status: step.status,
                    outputs: step.outputs.clone(),
                    items: step.items.clone(),
                    reason: "done before this resume; not run again".to_owned(),
                },
            );
        }
    }
    for (ids, approved) in [(&request.approve, true), (&request.reject, false)] {
        for id in ids {
            let node = plan
                .graph
                .node_weights()
                .find(|n| n.id == id.as_str())
                .ok_or_else(|| unknown(id))?;
            let id = &node.id;
            let waiting = record.paused.contains(id)
                || (matches!(node.step.kind, StepKind::Manual(_))
                    && !decision.settled.contains_key(id));
            if !matches!(node.step.kind, StepKind::Manual(_)) || !waiting {
                return Err(ResumeError::NotPaused(id.clone()));
            }
            decision.settled.insert(
                id.clone(),
                Settled {
                    status: if approved {
                        StepStatus::Succeeded
                    } else {
                        StepStatus::Failed
                    },
                    outputs: Map::new(),
                    items: Vec::new(),
                    reason: format!(
                        "{} by {user}{}",
                        if approved { "approved" } else { "rejected" },
                        request
                            .reason
                            .as_ref()
                            .filter(|_| !approved)
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ),
                },
            );
        }
    }
    // Steps in flight, and the fan-outs with an item in flight (`fan[2]` → `fan`): looked up
    // once per node, never searched for (a run has as many records as steps).
    let mut in_flight_ids: HashSet<NodeId> = HashSet::new();
    for s in record.steps.iter().filter(|s| s.in_flight) {
        in_flight_ids.insert(s.id.clone());
        if let Some(fan_out) = s.id.fan_out() {
            in_flight_ids.insert(fan_out);
        }
    }
    let mut blind = Vec::new();
    for node in plan.graph.node_weights() {
        if node.phase != Phase::Main || matches!(node.role, Role::CallEntry { .. }) {
            continue;
        }
        let in_flight = in_flight_ids.contains(&node.id);
        if !in_flight || decision.settled.contains_key(&node.id) {
            continue;
        }
        let why = if node.step.check.is_some() {
            "its check decides whether it already took effect"
        } else if node.step.idempotent {
            "idempotent: safe to repeat"
        } else if request.confirmed {
            "not idempotent, re-run as confirmed"
        } else {
            blind.push(node.id.clone());
            continue;
        };
        decision.rerun_in_flight.push((node.id.clone(), why));
    }
    if !blind.is_empty() {
        return Err(ResumeError::NeedsConfirmation(blind));
    }
    Ok(decision)
}
