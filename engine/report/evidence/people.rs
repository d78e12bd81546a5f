//! People in a run's evidence: who approved or rejected each manual step, when and how, and how
//! long the run waited for them. A manual step waits from its first attempt until a person
//! decides: at the prompt, by `runbook resume --approve`/`--reject`, or not yet.

use jiff::Timestamp;

use super::gather::Sources;
use super::model::{Approval, PersonWait, Process, StepFacts};
use super::steps::millis_between;
use crate::exec::RunStatus;
use crate::state::timeline::Timeline;

/// How a step finished when a person decided at once (no approval record).
const AT_ONCE: [(&str, &str, bool); 3] = [
    ("approved by --yes", "--yes", true),
    ("approved at the prompt", "at the prompt", true),
    ("rejected at the prompt", "at the prompt", false),
];

/// Every decision on a manual step, in order: those journaled by a resume, and those taken in
/// the run's own process (at the prompt, or by `--yes`).
pub fn approvals(timeline: &Timeline, steps: &[StepFacts]) -> Vec<Approval> {
    let mut out: Vec<Approval> = timeline
        .approvals
        .iter()
        .map(|a| Approval {
            step: a.id.to_string(),
            decision: if a.approved { "approved" } else { "rejected" }.to_owned(),
            by: a.by.clone(),
            host: a.host.clone(),
            at: a.at,
            how: if a.approved {
                "runbook resume --approve"
            } else {
                "runbook resume --reject"
            }
            .to_owned(),
            reason: a.reason.clone(),
        })
        .collect();
    for step in steps.iter().filter(|s| s.kind == "manual") {
        let Some(reason) = step.reason.as_deref() else {
            continue;
        };
        let Some((_, how, approved)) = AT_ONCE.iter().find(|(r, ..)| *r == reason) else {
            continue;
        };
        let Some(at) = step.finished_at else {
            continue;
        };
        let process = step
            .attempts
            .last()
            .and_then(|a| timeline.segments.get(a.process - 1));
        out.push(Approval {
            step: step.id.clone(),
            decision: if *approved { "approved" } else { "rejected" }.to_owned(),
            by: process.map_or_else(|| "unknown".to_owned(), |p| p.user.clone()),
            host: process.and_then(|p| p.host.clone()),
            at,
            how: (*how).to_owned(),
            reason: None,
        });
    }
    out.sort_by_key(|a| a.at);
    out
}

/// How long each manual step waited for a person: from its first attempt to the decision, or,
/// undecided, to now while the run waits (paused) and to the run's last moment otherwise.
pub fn waits(
    sources: &Sources,
    status: RunStatus,
    steps: &[StepFacts],
    processes: &[Process],
) -> Vec<PersonWait> {
    let timeline = &sources.timeline;
    let last_seen = processes
        .iter()
        .map(|p| p.last_seen_at)
        .max()
        .unwrap_or(sources.now);
    let mut out = Vec::new();
    for step in steps.iter().filter(|s| s.kind == "manual") {
        let Some(from) = step.attempts.first().map(|a| a.started_at) else {
            // Approved on a resume before the run reached it: nobody was waited for.
            continue;
        };
        let decided: Option<Timestamp> = timeline
            .approvals
            .iter()
            .find(|a| a.id.as_str() == step.id && a.at >= from)
            .map(|a| a.at)
            .or(step.finished_at);
        let end = decided.unwrap_or(match status {
            RunStatus::Paused | RunStatus::Running => sources.now,
            _ => last_seen,
        });
        out.push(PersonWait {
            step: step.id.clone(),
            from,
            until: decided,
            duration_ms: millis_between(from, end),
        });
    }
    out
}
