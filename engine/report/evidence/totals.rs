//! The processes that drove a run, as evidence (with the last moment the journal knows of each,
//! for a process that died without recording its end), and the totals an audit asks for: time
//! to recovery, time waiting for people, in polls, in delays, and stopped between processes.

use jiff::Timestamp;

use super::gather::Sources;
use super::model::{PersonWait, Process, StepFacts, Totals};
use super::steps::millis_between;
use crate::exec::RunStatus;
use crate::state::timeline::SegmentKind;

/// The processes, in order.
pub fn processes(sources: &Sources, status: RunStatus) -> Vec<Process> {
    let timeline = &sources.timeline;
    let count = timeline.segments.len();
    timeline
        .segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let live = i + 1 == count && status == RunStatus::Running;
            let last_seen_at = match segment.end {
                Some(end) => end.at,
                None if live => sources.now,
                None => last_record(sources, i).max(segment.started_at),
            };
            Process {
                number: i + 1,
                kind: match segment.kind {
                    SegmentKind::Started => "started",
                    SegmentKind::Resumed => "resumed",
                }
                .to_owned(),
                user: segment.user.clone(),
                host: segment.host.clone(),
                pid: segment.pid,
                started_at: segment.started_at,
                ended_at: segment.end.map(|e| e.at),
                last_seen_at,
                outcome: match segment.end {
                    Some(end) => end.status.as_str(),
                    None if live => "running",
                    None => "died",
                }
                .to_owned(),
            }
        })
        .collect()
}

/// The latest moment a record of process `segment` tells of.
fn last_record(sources: &Sources, segment: usize) -> Timestamp {
    let timeline = &sources.timeline;
    let chronicle = &timeline.chronicle;
    let attempts = timeline
        .steps
        .iter()
        .flat_map(|s| &s.attempts)
        .filter(|a| a.segment == segment)
        .flat_map(|a| [Some(a.started_at), a.ended_at])
        .flatten();
    let finishes = timeline.steps.iter().filter_map(|s| {
        let last = s.attempts.last()?;
        (last.segment == segment).then_some(s.finished_at).flatten()
    });
    let waits = chronicle
        .waits
        .iter()
        .filter(|w| w.segment == segment)
        .map(|w| w.at);
    let batches = chronicle
        .batches
        .iter()
        .filter(|b| b.segment == segment)
        .map(|b| b.started_at);
    let gates = chronicle
        .gates
        .iter()
        .filter(|g| g.segment == segment)
        .flat_map(|g| [Some(g.started_at), g.ended.as_ref().map(|e| e.at)])
        .flatten();
    attempts
        .chain(finishes)
        .chain(waits)
        .chain(batches)
        .chain(gates)
        .max()
        .unwrap_or_default()
}

/// The run's totals.
pub fn totals(
    sources: &Sources,
    status: RunStatus,
    processes: &[Process],
    steps: &[StepFacts],
    waits: &[PersonWait],
) -> Totals {
    let timeline = &sources.timeline;
    let start = timeline.started_at();
    let last = processes.iter().map(|p| p.last_seen_at).max();
    let elapsed_ms = match (start, last) {
        (Some(s), Some(l)) => millis_between(s, l),
        _ => 0,
    };
    let recovered = steps
        .iter()
        .filter(|s| s.phase == "main")
        .filter_map(|s| s.finished_at)
        .max();
    let time_to_recovery_ms = match (status, start, recovered) {
        (RunStatus::Succeeded, Some(s), Some(r)) => Some(millis_between(s, r)),
        _ => None,
    };
    let gates: u64 = timeline
        .chronicle
        .gates
        .iter()
        .filter_map(|g| g.ended.as_ref().map(|e| millis_between(g.started_at, e.at)))
        .sum();
    let polling_ms = steps
        .iter()
        .filter(|s| s.polls)
        .map(|s| s.work_ms)
        .sum::<u64>()
        + gates;
    let delays_ms = steps
        .iter()
        .flat_map(|s| &s.waits)
        .map(|w| w.duration_ms)
        .sum();
    Totals {
        time_to_recovery_ms,
        elapsed_ms,
        waiting_for_people_ms: waits.iter().map(|w| w.duration_ms).sum(),
        polling_ms,
        delays_ms,
        stopped_ms: stopped(processes, waits, sources.now),
    }
}

/// Time between processes (one's last moment, the next one's start) when no person was being
/// waited for.
fn stopped(processes: &[Process], waits: &[PersonWait], now: Timestamp) -> u64 {
    processes
        .windows(2)
        .map(|pair| {
            let (gap_start, gap_end) = (pair[0].last_seen_at, pair[1].started_at);
            let gap = millis_between(gap_start, gap_end);
            let covered: u64 = waits
                .iter()
                .map(|w| {
                    let from = w.from.max(gap_start);
                    let until = w.until.unwrap_or(now).min(gap_end);
                    millis_between(from, until)
                })
                .sum();
            gap.saturating_sub(covered)
        })
        .sum()
}
