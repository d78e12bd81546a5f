//! A run's steps as evidence: in the plan's order (items of a fan-out known only at run time,
//! and the steps inside a group, after the node they belong to), each with its attempts and
//! their ends, its waits before attempts, the batches and gates of a fan-out, its work time,
//! and, for the steps that had an attempt fail, the last lines of their logs.

use std::time::Duration;

use jiff::Timestamp;

use super::gather::{LOG_TAIL, NodeFacts, Sources, shown_status};
use super::model::{AttemptFacts, BatchFacts, Failure, GateFacts, Process, StepFacts, StepWait};
use crate::exec::{RunStatus, StepStatus};
use crate::plan::NodeId;
use crate::state::chronicle::WaitKind;
use crate::state::timeline::{AttemptEnd, StepHistory};

/// Whether a step failed, or had an attempt fail before a later one got it through.
pub fn had_failure(step: &StepHistory) -> bool {
    step.status == StepStatus::Failed
        || step.attempts.iter().any(|a| {
            matches!(
                a.end,
                AttemptEnd::Finished(StepStatus::Failed) | AttemptEnd::Retried
            )
        })
}

/// The plan node a journal id is, or belongs to (an item's fan-out, a group's step), and
/// whether it is that node itself.
pub fn plan_node<'p>(sources: &'p Sources, id: &NodeId) -> Option<(&'p NodeFacts, bool)> {
    let plan = sources.plan.as_ref()?;
    let mut candidate = id.clone();
    let mut itself = true;
    loop {
        if let Some(node) = plan.nodes.get(candidate.as_str()) {
            return Some((node, itself));
        }
        itself = false;
        candidate = candidate.fan_out().or_else(|| candidate.group())?;
    }
}

/// Milliseconds between two moments (0 when the second is not later).
pub fn millis_between(from: Timestamp, to: Timestamp) -> u64 {
    let span = to.duration_since(from);
    Duration::try_from(span).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every step, in plan order; a fan-out whose items are nodes of the plan (its list known
/// before the run) gets a row of its own for its batches and gates, before its items.
pub fn steps(sources: &Sources, status: RunStatus, processes: &[Process]) -> Vec<StepFacts> {
    let timeline = &sources.timeline;
    let mut keyed: Vec<((usize, u8, usize), StepFacts)> = timeline
        .steps
        .iter()
        .enumerate()
        .map(|(journal_order, step)| {
            let (position, itself) = plan_node(sources, &step.id)
                .map_or((usize::MAX, false), |(n, itself)| (n.position, itself));
            (
                (position, if itself { 1 } else { 2 }, journal_order),
                facts(sources, step, status, processes),
            )
        })
        .collect();
    // A fan-out whose items are plan nodes has a journal row of its own but no plan node:
    // it goes before its items, titled as they are.
    let item_positions: Vec<(NodeId, usize, Option<String>, bool)> = keyed
        .iter()
        .filter_map(|((p, ..), f)| {
            let parent = NodeId::parse(&f.id).ok()?.fan_out()?;
            Some((parent, *p, f.name.clone(), f.phase == "finally"))
        })
        .collect();
    for ((position, order, _), row) in &mut keyed {
        if *position != usize::MAX {
            continue;
        }
        let Ok(id) = NodeId::parse(&row.id) else {
            continue;
        };
        if let Some((_, p, name, finally)) = item_positions
            .iter()
            .filter(|(parent, ..)| *parent == id)
            .min_by_key(|(_, p, ..)| *p)
        {
            *position = *p;
            *order = 0;
            "fan-out".clone_into(&mut row.kind);
            row.name.clone_from(name);
            if *finally {
                "finally".clone_into(&mut row.phase);
            }
        }
    }
    let chronicle = &timeline.chronicle;
    let mut fanned: Vec<&NodeId> = chronicle
        .batches
        .iter()
        .map(|b| &b.id)
        .chain(chronicle.gates.iter().map(|g| &g.id))
        .filter(|id| timeline.step(id.as_str()).is_none())
        .collect();
    fanned.dedup();
    let mut seen = std::collections::HashSet::new();
    for id in fanned {
        if !seen.insert(id.clone()) {
            continue;
        }
        let row = fan_out_row(sources, id, status, processes);
        let position = keyed
            .iter()
            .filter(|(_, f)| NodeId::parse(&f.id).is_ok_and(|i| i.fan_out().as_ref() == Some(id)))
            .map(|((p, ..), _)| *p)
            .min()
            .unwrap_or(usize::MAX);
        keyed.push(((position, 0, 0), row));
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, facts)| facts).collect()
}

/// The row of a fan-out whose items are plan nodes: its batches and gates, and its items'
/// span and status taken together.
fn fan_out_row(
    sources: &Sources,
    id: &NodeId,
    status: RunStatus,
    processes: &[Process],
) -> StepFacts {
    let items: Vec<StepFacts> = sources
        .timeline
        .steps
        .iter()
        .filter(|s| s.id.fan_out().as_ref() == Some(id))
        .map(|s| facts(sources, s, status, processes))
        .collect();
    let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
    let overall = ["failed", "running", "pending"]
        .into_iter()
        .find(|s| statuses.contains(s))
        .unwrap_or(if statuses.iter().all(|s| *s == "skipped") {
            "skipped"
        } else {
            "succeeded"
        });
    let finished_at = if items.iter().all(|i| i.finished_at.is_some()) {
        items.iter().filter_map(|i| i.finished_at).max()
    } else {
        None
    };
    let node = plan_node(
        sources,
        &NodeId::parse(&format!("{id}[0]")).unwrap_or_else(|_| id.clone()),
    );
    let chronicle = &sources.timeline.chronicle;
    let mut row = StepFacts {
        id: id.to_string(),
        name: node.and_then(|(n, _)| n.name.clone()),
        kind: "fan-out".to_owned(),
        phase: if node.is_some_and(|(n, _)| n.finally) {
            "finally"
        } else {
            "main"
        }
        .to_owned(),
        status: overall.to_owned(),
        reason: None,
        polls: false,
        attempt_count: 0,
        started_at: items.iter().filter_map(|i| i.started_at).min(),
        finished_at,
        work_ms: 0,
        waiting_ms: 0,
        outputs: serde_json::Map::new(),
        items: Vec::new(),
        attempts: Vec::new(),
        waits: Vec::new(),
        batches: Vec::new(),
    };
    row.batches = batches(chronicle, id);
    row
}

fn facts(
    sources: &Sources,
    step: &StepHistory,
    status: RunStatus,
    processes: &[Process],
) -> StepFacts {
    let chronicle = &sources.timeline.chronicle;
    let node = plan_node(sources, &step.id);
    let (kind, name, phase, polls) = match node {
        Some((n, true)) => (n.kind, n.name.clone(), n.finally, n.polls),
        Some((n, false)) => {
            // An item of a fan-out known at run time is the fan-out's step, once per item.
            let item = step.id.fan_out().is_some_and(|f| {
                sources
                    .plan
                    .as_ref()
                    .and_then(|p| p.nodes.get(f.as_str()))
                    .is_some()
            });
            let kind = if item { "item" } else { "step" };
            (kind, None, n.finally, item && n.polls)
        }
        None => ("step", None, false, false),
    };
    let (shown, reason) = shown_status(step, status);
    let backoffs: Vec<(u32, Timestamp, &str)> = chronicle
        .waits
        .iter()
        .filter(|w| w.id == step.id)
        .filter_map(|w| match &w.kind {
            WaitKind::Backoff { failed, error } => Some((*failed, w.at, error.as_str())),
            WaitKind::Delay => None,
        })
        .collect();
    let attempts: Vec<AttemptFacts> = step
        .attempts
        .iter()
        .map(|a| {
            let retry = backoffs.iter().find(|(n, ..)| *n == a.number);
            AttemptFacts {
                number: a.number,
                process: a.segment + 1,
                started_at: a.started_at,
                ended_at: a.ended_at.or(retry.map(|(_, at, _)| *at)),
                outcome: a.end.as_str().to_owned(),
                error: retry.map(|(.., e)| (*e).to_owned()),
            }
        })
        .collect();
    let manual = kind == "manual";
    let work_ms = if manual {
        0
    } else if attempts.is_empty() {
        step.duration.map_or(0, millis)
    } else {
        attempts
            .iter()
            .map(|a| {
                let end = a.ended_at.unwrap_or_else(|| {
                    processes
                        .get(a.process - 1)
                        .map_or(sources.now, |p| p.last_seen_at)
                });
                millis_between(a.started_at, end)
            })
            .sum()
    };
    StepFacts {
        id: step.id.to_string(),
        name,
        kind: kind.to_owned(),
        phase: if phase { "finally" } else { "main" }.to_owned(),
        status: shown,
        reason,
        polls,
        attempt_count: step.attempt_count(),
        started_at: step.started_at,
        finished_at: step.finished_at,
        work_ms,
        waiting_ms: 0,
        outputs: step.outputs.clone(),
        items: step.items.clone(),
        attempts,
        waits: chronicle
            .waits
            .iter()
            .filter(|w| w.id == step.id)
            .map(|w| StepWait {
                kind: match w.kind {
                    WaitKind::Delay => "delay",
                    WaitKind::Backoff { .. } => "backoff",
                }
                .to_owned(),
                at: w.at,
                duration_ms: millis(w.duration),
            })
            .collect(),
        batches: batches(chronicle, &step.id),
    }
}

/// The batches of a fan-out, each with the gate checked after it.
fn batches(chronicle: &crate::state::chronicle::Chronicle, id: &NodeId) -> Vec<BatchFacts> {
    chronicle
        .batches
        .iter()
        .filter(|b| &b.id == id)
        .map(|b| BatchFacts {
            number: b.batch,
            of: b.of,
            items: b.items.clone(),
            started_at: b.started_at,
            gate: chronicle
                .gates
                .iter()
                .rev()
                .find(|g| g.id == b.id && g.batch == b.batch && g.started_at >= b.started_at)
                .map(|g| GateFacts {
                    started_at: g.started_at,
                    ended_at: g.ended.as_ref().map(|e| e.at),
                    held: g.ended.as_ref().map(|e| e.held),
                    detail: g.ended.as_ref().map(|e| e.detail.clone()),
                }),
        })
        .collect()
}

/// The steps that failed or had an attempt fail, each with the last lines its log holds for
/// the attempt that failed last.
pub fn failures(sources: &Sources, steps: &[StepFacts]) -> Vec<Failure> {
    let mut out = Vec::new();
    for history in sources.timeline.steps.iter().filter(|s| had_failure(s)) {
        let id = history.id.to_string();
        let Some(facts) = steps.iter().find(|s| s.id == id) else {
            continue;
        };
        let last_failed = facts
            .attempts
            .iter()
            .rev()
            .find(|a| a.outcome == "failed" || a.outcome == "retried");
        let reason = match last_failed {
            Some(a) if a.outcome == "retried" => a.error.clone(),
            _ => history.reason.clone(),
        };
        let log = sources.logs.get(&id).map_or("", String::as_str);
        let position =
            last_failed.and_then(|a| facts.attempts.iter().position(|b| b.number == a.number));
        out.push(Failure {
            step: id,
            status: facts.status.clone(),
            reason,
            log_tail: log_tail(log, position),
        });
    }
    out
}

/// The last lines of one attempt's part of a step's log: the `n`-th (0-based) section that
/// starts with an attempt's header (`--- <time> attempt <n>: …`), or the whole log's end.
pub fn log_tail(log: &str, attempt: Option<usize>) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let headers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| is_attempt_header(l))
        .map(|(i, _)| i)
        .collect();
    let (start, end) = match attempt.and_then(|n| headers.get(n).map(|&h| (n, h))) {
        Some((n, header)) => (header, headers.get(n + 1).copied().unwrap_or(lines.len())),
        None => (0, lines.len()),
    };
    let section = &lines[start..end];
    section[section.len().saturating_sub(LOG_TAIL)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// `--- 2026-11-21T03:00:00Z attempt 2: …`, as the recorder writes it.
fn is_attempt_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("--- ") else {
        return false;
    };
    let Some((_, after)) = rest.split_once(' ') else {
        return false;
    };
    after
        .strip_prefix("attempt ")
        .and_then(|a| a.split_once(':'))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn a_log_tail_is_that_of_the_attempt_asked_for() {
        let log = "--- 2026-11-21T03:00:00Z attempt 1: false\n! boom\n--- 2026-11-21T03:00:01Z failed: exit 1\n--- 2026-11-21T03:00:09Z attempt 2: true\n--- 2026-11-21T03:00:09Z succeeded\n";
        assert_eq!(
            log_tail(log, Some(0)),
            [
                "--- 2026-11-21T03:00:00Z attempt 1: false",
                "! boom",
                "--- 2026-11-21T03:00:01Z failed: exit 1"
            ]
        );
        assert_eq!(log_tail(log, Some(1)).len(), 2);
        assert_eq!(log_tail(log, None).len(), 5, "the whole log's end");
        let long: String = (0..40).fold(String::new(), |mut out, i| {
            let _ = writeln!(out, "line {i}");
            out
        });
        let tail = log_tail(&long, None);
        assert_eq!(tail.len(), LOG_TAIL);
        assert_eq!(tail.last().map(String::as_str), Some("line 39"));
    }

    #[test]
    fn attempt_headers_are_told_from_output_that_looks_alike() {
        assert!(is_attempt_header(
            "--- 2026-11-21T03:00:00Z attempt 12: tar"
        ));
        assert!(!is_attempt_header("--- attempt 1 failed: exit 1"));
        assert!(!is_attempt_header("--- 2026-11-21T03:00:00Z succeeded"));
        assert!(!is_attempt_header("attempt 1: x"));
    }
}
