//! Deciding what a resume does: which steps are already done (never re-run), which were in
//! flight when the process died and how each is handled, which are re-run on request, which
//! manual steps the operator approves or rejects, and which still wait since an earlier process.

use std::collections::{BTreeSet, HashMap, HashSet};

use petgraph::visit::Dfs;

use super::timeline::Timeline;
use crate::exec::approvals::{Verdict, Waiting};
use crate::exec::{Settled, SettledSteps, StepStatus};
use crate::plan::{NodeId, Phase, Plan, Role, reads};
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
    /// `--set` for params that steps which finished (and are not run again) read.
    #[error("{}", .0.iter().map(|(param, steps)| format!("param `{param}` was read by {} that finished: {}; a new value would not reach {}", if steps.len() == 1 { "a step" } else { "steps" }, steps.iter().map(NodeId::as_str).collect::<Vec<_>>().join(", "), if steps.len() == 1 { "it" } else { "them" })).collect::<Vec<_>>().join("\nerror: ") + "\nkeep the run's values, or run those steps again with --rerun STEP")]
    ParamsUsed(Vec<(String, Vec<NodeId>)>),
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
    /// Params given new values (`--set`): no finished step may have read them.
    pub new_params: Vec<String>,
}

/// The decision, ready for the executor.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// What is settled.
    pub settled: SettledSteps,
    /// In-flight steps that will run again, and why that is safe.
    pub rerun_in_flight: Vec<(NodeId, &'static str)>,
    /// Manual steps approved or rejected now: the executor records each decision when it
    /// reaches the step (a step may need more approvals than this one).
    pub verdicts: Vec<Verdict>,
    /// Manual steps waiting since an earlier process: since when, and who approved them.
    pub waiting: HashMap<NodeId, Waiting>,
}

/// Decides what a resume does, from the run's timeline and the plan it continues with: steps
/// done before are settled (unless run again on request), manual steps are approved or
/// rejected, and steps in flight when the run stopped run again where that is safe.
pub fn decide(
    timeline: &Timeline,
    plan: &Plan,
    request: &ResumeRequest,
) -> Result<Decision, ResumeError> {
    let rerun = rerun(plan, &request.rerun)?;
    let mut decision = Decision::default();
    settle_done(timeline, &rerun, &mut decision);
    unread_params(plan, &decision.settled, &request.new_params)?;
    finally_runs_again(timeline, plan, &mut decision);
    for (ids, approved) in [(&request.approve, true), (&request.reject, false)] {
        for id in ids {
            let reason = request.reason.clone().filter(|_| !approved);
            judge(timeline, plan, id, approved, reason, &mut decision)?;
        }
    }
    decision.waiting = timeline.waiting();
    decision
        .waiting
        .retain(|id, _| !rerun.contains(id) && !decision.settled.contains_key(id));
    rerun_in_flight(timeline, plan, request.confirmed, &mut decision)?;
    Ok(decision)
}

/// A step named by the operator that the plan does not have.
fn unknown(plan: &Plan, id: &str) -> ResumeError {
    let known = plan.graph.node_weights().map(|n| n.id.as_str());
    ResumeError::UnknownStep {
        id: id.to_owned(),
        hint: crate::spec::suggest::did_you_mean(id, known),
    }
}

/// The nodes `--rerun` asks for: each step named, its items, the steps inside it (a call), and
/// everything after them that depends on them.
fn rerun(plan: &Plan, asked: &[String]) -> Result<BTreeSet<NodeId>, ResumeError> {
    let mut rerun = BTreeSet::new();
    for id in asked {
        let step = NodeId::parse(id).map_err(|_| unknown(plan, id))?;
        let starts: Vec<_> = plan
            .graph
            .node_indices()
            .filter(|&n| plan.graph[n].id.is_within(&step))
            .collect();
        if starts.is_empty() {
            return Err(unknown(plan, id));
        }
        for start in starts {
            let mut dfs = Dfs::new(&plan.graph, start);
            while let Some(n) = dfs.next(&plan.graph) {
                rerun.insert(plan.graph[n].id.clone());
            }
        }
    }
    Ok(rerun)
}

/// Steps that succeeded or were skipped are settled, with their outputs: never run again
/// unless `--rerun` asks for them.
fn settle_done(timeline: &Timeline, rerun: &BTreeSet<NodeId>, decision: &mut Decision) {
    for step in &timeline.steps {
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
                    record: false,
                },
            );
        }
    }
}

/// New values are only for params that no finished step read (a finished step is never run
/// again, so a new value would not reach it: the run would mix the two).
fn unread_params(
    plan: &Plan,
    settled: &SettledSteps,
    params: &[String],
) -> Result<(), ResumeError> {
    if params.is_empty() {
        return Ok(());
    }
    // Fan-outs with items that finished (items expanded at run time are not plan nodes).
    let fans: HashSet<NodeId> = settled.keys().filter_map(NodeId::fan_out).collect();
    let finished: Vec<_> = plan
        .graph
        .node_weights()
        .filter(|n| n.phase == Phase::Main && (settled.contains_key(&n.id) || fans.contains(&n.id)))
        .filter(|n| reads::reads_root_params(plan, n))
        .map(|n| (n, reads::of_node(plan, n)))
        .collect();
    let mut used = Vec::new();
    for param in params {
        let steps: Vec<NodeId> = finished
            .iter()
            .filter(|(_, r)| r.param(param))
            .map(|(n, _)| n.id.clone())
            .collect();
        if !steps.is_empty() && !used.iter().any(|(p, _)| p == param) {
            used.push((param.clone(), steps));
        }
    }
    if used.is_empty() {
        Ok(())
    } else {
        Err(ResumeError::ParamsUsed(used))
    }
}

/// A `finally` step runs when its group ends. A group that runs again on this resume (the run
/// itself, or a call or block with steps still to run) ends again, and its `finally` runs
/// again: what it did after the earlier end is not settled. Only a `finally` step that finished
/// in the last process, which died before the end was recorded, is not run again.
fn finally_runs_again(timeline: &Timeline, plan: &Plan, decision: &mut Decision) {
    let last = timeline.segments.last();
    let died_in_last = |finished: Option<jiff::Timestamp>| {
        last.is_some_and(|s| s.end.is_none() && finished.is_some_and(|f| f >= s.started_at))
    };
    let mut group_runs_again: Vec<Option<bool>> = vec![None; plan.scopes.len()];
    for node in plan.graph.node_weights() {
        if node.phase != Phase::Finally || !decision.settled.contains_key(&node.id) {
            continue;
        }
        let again = *group_runs_again[node.scope].get_or_insert_with(|| {
            node.scope == 0
                || plan.graph.node_weights().any(|m| {
                    m.scope == node.scope
                        && m.phase == Phase::Main
                        && !decision.settled.contains_key(&m.id)
                })
        });
        let finished = timeline
            .steps
            .iter()
            .find(|s| s.id == node.id)
            .and_then(|s| s.finished_at);
        if again && !died_in_last(finished) {
            decision.settled.remove(&node.id);
        }
    }
}

/// Approves or rejects a manual step waiting for a decision (a fan-out's name stands for each
/// of its items; a manual step not reached yet is approved when it is).
fn judge(
    timeline: &Timeline,
    plan: &Plan,
    id: &str,
    approved: bool,
    reason: Option<String>,
    decision: &mut Decision,
) -> Result<(), ResumeError> {
    let step = NodeId::parse(id).map_err(|_| unknown(plan, id))?;
    let named: Vec<_> = plan
        .graph
        .node_weights()
        .filter(|n| n.id.is_within(&step) || step.is_within(&n.id))
        .collect();
    if named.is_empty() {
        return Err(unknown(plan, id));
    }
    let waiting = named.iter().any(|node| {
        matches!(node.step.kind, StepKind::Manual(_))
            && (timeline.paused.contains(&node.id) || !decision.settled.contains_key(&node.id))
    });
    if !waiting {
        return Err(ResumeError::NotPaused(step));
    }
    decision.verdicts.push(Verdict {
        step,
        approved,
        reason,
    });
    Ok(())
}

/// Steps in flight when the run stopped run again when that is safe: their check decides, or
/// they are idempotent, or the operator confirmed it. Otherwise the resume needs confirmation.
fn rerun_in_flight(
    timeline: &Timeline,
    plan: &Plan,
    confirmed: bool,
    decision: &mut Decision,
) -> Result<(), ResumeError> {
    // Steps in flight, and the fan-outs with an item in flight (`fan[2]` → `fan`): looked up
    // once per node, never searched for (a run has as many records as steps).
    let mut in_flight: HashSet<NodeId> = HashSet::new();
    for s in timeline.steps.iter().filter(|s| s.in_flight) {
        in_flight.insert(s.id.clone());
        if let Some(fan_out) = s.id.fan_out() {
            in_flight.insert(fan_out);
        }
    }
    let mut blind = Vec::new();
    for node in plan.graph.node_weights() {
        if node.phase != Phase::Main
            || matches!(node.role, Role::CallEntry { .. })
            || !in_flight.contains(&node.id)
            || decision.settled.contains_key(&node.id)
        {
            continue;
        }
        let why = if node.step.check.is_some() {
            "its check decides whether it already took effect"
        } else if node.step.idempotent {
            "idempotent: safe to repeat"
        } else if confirmed {
            "not idempotent, re-run as confirmed"
        } else {
            blind.push(node.id.clone());
            continue;
        };
        decision.rerun_in_flight.push((node.id.clone(), why));
    }
    if blind.is_empty() {
        Ok(())
    } else {
        Err(ResumeError::NeedsConfirmation(blind))
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::{Map, Value};

    use super::*;
    use crate::exec::RunStatus;
    use crate::state::journal::Record;

    const BOOK: &str = "\
name: r
steps:
  - id: a
    run: echo a
  - id: b
    run: echo b
  - id: blind
    idempotent: false
    run: echo blind
  - id: probed
    idempotent: false
    check: { run: 'true' }
    run: echo probed
  - id: gate
    manual: Go on?
  - id: last
    run: echo last
";

    fn plan() -> Plan {
        let file = crate::spec::SourceFile::new("resume-test.yaml", BOOK);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        crate::plan::compile(runbook, None).expect("it compiles")
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).expect("a valid id")
    }

    fn timeline(records: Vec<Record>) -> Timeline {
        let at = Timestamp::UNIX_EPOCH;
        let mut all = vec![Record::RunStarted {
            v: 1,
            run_id: "r1".to_owned(),
            runbook: "r".to_owned(),
            source: "r.yaml".to_owned(),
            hash: String::new(),
            steps: Map::new(),
            order: Vec::new(),
            fingerprint: 1,
            at,
            pid: 1,
            user: "alice".to_owned(),
            host: None,
        }];
        all.extend(records);
        Timeline::from_records(all)
    }

    fn started(step: &str) -> Record {
        Record::StepStarted {
            id: id(step),
            attempt: 1,
            description: None,
            at: Timestamp::UNIX_EPOCH,
        }
    }

    fn finished(step: &str, status: StepStatus) -> Record {
        let mut outputs = Map::new();
        outputs.insert("seen".to_owned(), Value::from(step));
        Record::StepFinished {
            id: id(step),
            status,
            attempts: 1,
            outputs,
            items: Vec::new(),
            reason: None,
            log_lost: None,
            duration_ms: 1,
            at: Timestamp::UNIX_EPOCH,
        }
    }

    fn settled_ids(decision: &Decision) -> BTreeSet<&str> {
        decision.settled.keys().map(NodeId::as_str).collect()
    }

    #[test]
    fn succeeded_steps_are_settled_with_their_outputs_and_failed_ones_run_again() {
        let run = timeline(vec![
            started("a"),
            finished("a", StepStatus::Succeeded),
            started("b"),
            finished("b", StepStatus::Failed),
            Record::RunFinished {
                status: RunStatus::Failed,
                at: Timestamp::UNIX_EPOCH,
            },
        ]);
        let decision = decide(&run, &plan(), &ResumeRequest::default()).unwrap();
        assert_eq!(settled_ids(&decision), BTreeSet::from(["a"]));
        assert_eq!(decision.settled[&id("a")].outputs["seen"], "a");
        assert!(decision.rerun_in_flight.is_empty());
    }

    #[test]
    fn steps_in_flight_run_again_when_that_is_safe_and_otherwise_need_confirmation() {
        let run = timeline(vec![started("a"), started("blind"), started("probed")]);
        let plan = plan();
        let refused = decide(&run, &plan, &ResumeRequest::default()).unwrap_err();
        assert_eq!(refused, ResumeError::NeedsConfirmation(vec![id("blind")]));
        assert!(refused.to_string().contains("--yes"), "{refused}");

        let confirmed = ResumeRequest {
            confirmed: true,
            ..ResumeRequest::default()
        };
        let decision = decide(&run, &plan, &confirmed).unwrap();
        assert!(decision.settled.is_empty(), "nothing in flight is settled");
        let why: Vec<(&str, &str)> = decision
            .rerun_in_flight
            .iter()
            .map(|(id, why)| (id.as_str(), *why))
            .collect();
        assert_eq!(
            why,
            [
                ("a", "idempotent: safe to repeat"),
                ("blind", "not idempotent, re-run as confirmed"),
                ("probed", "its check decides whether it already took effect"),
            ]
        );
    }

    #[test]
    fn rerun_takes_a_step_and_its_dependents_out_of_the_settled_ones() {
        let mut records = Vec::new();
        for step in ["a", "b", "blind", "probed"] {
            records.push(started(step));
            records.push(finished(step, StepStatus::Succeeded));
        }
        let run = timeline(records);
        let request = ResumeRequest {
            rerun: vec!["blind".to_owned()],
            ..ResumeRequest::default()
        };
        let decision = decide(&run, &plan(), &request).unwrap();
        assert_eq!(settled_ids(&decision), BTreeSet::from(["a", "b"]));

        let typo = ResumeRequest {
            rerun: vec!["blnd".to_owned()],
            ..ResumeRequest::default()
        };
        let err = decide(&run, &plan(), &typo).unwrap_err();
        assert!(
            matches!(&err, ResumeError::UnknownStep { id, hint: Some(h) } if id == "blnd" && h.contains("blind")),
            "{err:?}"
        );
    }

    #[test]
    fn a_paused_manual_step_is_approved_or_rejected_by_name_and_no_other_step_is() {
        let run = timeline(vec![
            started("gate"),
            Record::Paused {
                id: id("gate"),
                at: Timestamp::UNIX_EPOCH,
            },
            Record::RunFinished {
                status: RunStatus::Paused,
                at: Timestamp::UNIX_EPOCH,
            },
        ]);
        let plan = plan();
        let approve = ResumeRequest {
            approve: vec!["gate".to_owned()],
            ..ResumeRequest::default()
        };
        let decision = decide(&run, &plan, &approve).unwrap();
        assert!(
            !decision.settled.contains_key(&id("gate")),
            "the executor decides it when it reaches it"
        );
        assert_eq!(
            decision.verdicts,
            [Verdict {
                step: id("gate"),
                approved: true,
                reason: None,
            }]
        );
        let waiting = &decision.waiting[&id("gate")];
        assert_eq!(waiting.since, Timestamp::UNIX_EPOCH, "its wait goes on");
        assert!(waiting.approvals.is_empty());

        let reject = ResumeRequest {
            reject: vec!["gate".to_owned()],
            reason: Some("wrong snapshot".to_owned()),
            ..ResumeRequest::default()
        };
        let decision = decide(&run, &plan, &reject).unwrap();
        assert_eq!(
            decision.verdicts,
            [Verdict {
                step: id("gate"),
                approved: false,
                reason: Some("wrong snapshot".to_owned()),
            }]
        );

        let not_manual = ResumeRequest {
            approve: vec!["last".to_owned()],
            ..ResumeRequest::default()
        };
        assert_eq!(
            decide(&run, &plan, &not_manual).unwrap_err(),
            ResumeError::NotPaused(id("last"))
        );
    }

    #[test]
    fn an_earlier_approval_of_a_wait_is_counted_and_one_before_it_is_not() {
        let at = |s: i64| Timestamp::from_second(s).expect("a valid time");
        let approval = |second: i64| Record::Approval {
            id: id("gate"),
            approved: true,
            by: "alice".to_owned(),
            host: None,
            reason: None,
            how: None,
            inputs: Map::new(),
            at: at(second),
        };
        let run = timeline(vec![
            approval(1),
            Record::StepStarted {
                id: id("gate"),
                attempt: 1,
                description: None,
                at: at(5),
            },
            approval(6),
            Record::Paused {
                id: id("gate"),
                at: at(6),
            },
        ]);
        let decision = decide(&run, &plan(), &ResumeRequest::default()).unwrap();
        let waiting = &decision.waiting[&id("gate")];
        assert_eq!(waiting.since, at(5));
        assert_eq!(waiting.approvals.len(), 1, "{waiting:?}");
    }
}
