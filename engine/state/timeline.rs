//! A run's journal read as a timeline: the processes that drove it (the one that started it,
//! then one per resume), and for each step every attempt in order, counted across processes,
//! with the process it ran in, its own start and end, and its process groups; then each step's
//! final state and the time it waited for people, the approvals, the steps waiting for one, and
//! the params a resume changed. `show`, `runs`, resume and reports
//! read this one fold of the journal.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::chronicle::Chronicle;
use super::journal::Record;
use super::recorder::{end_line, start_line};
use crate::exec::approvals::{Given, Via, Waiting};
use crate::exec::{RunStatus, StepStatus};
use crate::plan::NodeId;

/// A run as its journal tells it.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// What the run is.
    pub run: RunInfo,
    /// The processes that drove it, in order: the first started it, each later one resumed it.
    pub segments: Vec<Segment>,
    /// Every step of the run, started or not, in plan order (the order the runbook declares its
    /// steps; a fan-out's items after it). For a run of an older build, which recorded no plan
    /// order: in the order the journal first names them, then the steps never started, by id.
    pub steps: Vec<StepHistory>,
    /// Approvals and rejections of manual steps, in order.
    pub approvals: Vec<Approval>,
    /// Manual steps waiting for approval (paused in the last process, not decided since).
    pub paused: Vec<NodeId>,
    /// New param values given by resumes (`--set`), in order.
    pub param_changes: Vec<ParamChange>,
    /// Batches, gates, waits, versions and notifications.
    pub chronicle: Chronicle,
    index: HashMap<NodeId, usize>,
}

/// Params given new values by a resume.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamChange {
    /// The new values, by param.
    pub params: Map<String, Value>,
    /// Who gave them.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// What a run is: as recorded when it started, and when a resume adopted a changed runbook.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The runbook file as the user named it.
    pub source: String,
    /// When the run was created.
    pub created: Option<Timestamp>,
    /// The hash of the runbook files the run follows.
    pub hash: String,
    /// The hash of each compiled step the run follows, by node id.
    pub step_hashes: Map<String, Value>,
    /// The version of those hashes' canonical form (0: older than versioned fingerprints).
    pub fingerprint: u32,
    /// Every node's id in plan order (empty for runs of older builds).
    pub order: Vec<String>,
}

/// How a process came to drive the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// It started the run.
    Started,
    /// It resumed the run.
    Resumed,
}

/// One process's part of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Started or resumed.
    pub kind: SegmentKind,
    /// The process.
    pub pid: u32,
    /// Who ran it.
    pub user: String,
    /// The machine it ran on (not recorded by older builds).
    pub host: Option<String>,
    /// When it took the run over.
    pub started_at: Timestamp,
    /// How its part ended, when it recorded that (a process that died did not).
    pub end: Option<SegmentEnd>,
}

/// The recorded end of a process's part of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEnd {
    /// The run's status then.
    pub status: RunStatus,
    /// When.
    pub at: Timestamp,
}

/// Everything the journal says about one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepHistory {
    /// Full id.
    pub id: NodeId,
    /// Last recorded status (`running` while an attempt is open, `pending` while paused).
    pub status: StepStatus,
    /// Every attempt, in order, across processes.
    pub attempts: Vec<Attempt>,
    /// Attempts the step's last finish reports. Steps that run nothing of their own (a fan-out
    /// expanded at run time) record attempts without starting any.
    pub reported_attempts: u32,
    /// Outputs of its last finish.
    pub outputs: Map<String, Value>,
    /// Items of a fan-out expanded at run time.
    pub items: Vec<Value>,
    /// Why it failed or was skipped, or how it succeeded without running.
    pub reason: Option<String>,
    /// Why lines of its log were lost, when they were (its last finish says).
    pub log_lost: Option<String>,
    /// First start.
    pub started_at: Option<Timestamp>,
    /// Last finish.
    pub finished_at: Option<Timestamp>,
    /// How long its last finish says it ran.
    pub duration: Option<Duration>,
    /// Started and not finished: it was running when its process stopped or died (or still
    /// runs, when a live process drives the run).
    pub in_flight: bool,
    /// How long it waited for people (confirmation prompts, decisions): not in `duration`.
    pub waited: Duration,
}

impl StepHistory {
    fn new(id: NodeId) -> Self {
        Self {
            id,
            status: StepStatus::Pending,
            attempts: Vec::new(),
            reported_attempts: 0,
            outputs: Map::new(),
            items: Vec::new(),
            reason: None,
            log_lost: None,
            started_at: None,
            finished_at: None,
            duration: None,
            in_flight: false,
            waited: Duration::ZERO,
        }
    }

    /// Attempts made, counted across every process of the run.
    pub fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len())
            .unwrap_or(u32::MAX)
            .max(self.reported_attempts)
    }

    /// The lines the journal stands for when the step has no log: a first attempt that printed
    /// nothing leaves no log file (see [`crate::state::recorder`]), only its start and end.
    pub fn journal_log(&self) -> Option<String> {
        if self.attempts.is_empty() {
            return None;
        }
        let mut text = String::new();
        for attempt in &self.attempts {
            text.push_str(&start_line(
                attempt.started_at,
                attempt.number,
                attempt.description.as_deref().unwrap_or_default(),
            ));
            text.push('\n');
        }
        if let (false, Some(at)) = (self.in_flight, self.finished_at) {
            text.push_str(&end_line(at, self.status, self.reason.as_deref()));
            text.push('\n');
        }
        Some(text)
    }

    /// The process groups of the attempt in flight (a resume waits until they have ended).
    pub fn groups(&self) -> &[i32] {
        match self.attempts.last() {
            Some(attempt) if self.in_flight => &attempt.groups,
            _ => &[],
        }
    }
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based, counted across every process of the run.
    pub number: u32,
    /// Index in [`Timeline::segments`] of the process it ran in.
    pub segment: usize,
    /// When it began.
    pub started_at: Timestamp,
    /// When it ended, when that is known.
    pub ended_at: Option<Timestamp>,
    /// How it ended.
    pub end: AttemptEnd,
    /// The process groups its commands ran in.
    pub groups: Vec<i32>,
    /// What it ran, as its start was journaled (a journal of an older build has none).
    pub description: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// It has not ended: its process still drives the run (or died without a trace yet).
    Running,
    /// It was the step's last attempt: the step finished with this status.
    Finished(StepStatus),
    /// It failed and the step tried again.
    Retried,
    /// A manual step paused the run, waiting for approval.
    Paused,
    /// Its process stopped the run (Ctrl-C) before it ended.
    Interrupted,
    /// Its process died before it ended.
    Died,
}

impl AttemptEnd {
    /// The spelling used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished(status) => status.as_str(),
            Self::Retried => "retried",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
            Self::Died => "died",
        }
    }
}

/// An approval or rejection of a manual step.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The step.
    pub id: NodeId,
    /// Approved or rejected.
    pub approved: bool,
    /// Who.
    pub by: String,
    /// The machine it was decided on (not recorded by older builds).
    pub host: Option<String>,
    /// When.
    pub at: Timestamp,
    /// Why (rejections).
    pub reason: Option<String>,
    /// How it was taken (not recorded by older builds).
    pub how: Option<Via>,
    /// The values supplied with it.
    pub inputs: Map<String, Value>,
}

impl Timeline {
    /// Folds a journal's records, in order.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        let mut fold = Fold::default();
        for record in records {
            fold.apply(record);
        }
        fold.finish()
    }

    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&StepHistory> {
        self.index.get(id).map(|&i| &self.steps[i])
    }

    /// How many attempts a step made before now, across every process (0 for a step that
    /// never started): the number the next attempt follows.
    pub fn attempts_before(&self, id: &NodeId) -> u32 {
        self.step(id).map_or(0, StepHistory::attempt_count)
    }

    /// The manual steps that wait for a decision since an earlier process (paused, not decided
    /// since): when each wait began (the start of its last attempt), and its approvals so far.
    pub fn waiting(&self) -> HashMap<NodeId, Waiting> {
        let mut waiting = HashMap::new();
        for step in &self.steps {
            let Some(last) = step.attempts.last() else {
                continue;
            };
            if step.status != StepStatus::Pending || last.end != AttemptEnd::Paused {
                continue;
            }
            let since = last.started_at;
            let approvals = self
                .approvals
                .iter()
                .filter(|a| a.id == step.id && a.approved && a.at >= since)
                .map(|a| Given {
                    by: a.by.clone(),
                    via: a.how,
                    inputs: a.inputs.clone(),
                })
                .collect();
            waiting.insert(step.id.clone(), Waiting { since, approvals });
        }
        waiting
    }

    /// How the last process's part of the run ended, when it recorded that.
    pub fn recorded_end(&self) -> Option<SegmentEnd> {
        self.segments.last().and_then(|s| s.end)
    }

    /// The run's status: as its last process recorded it; otherwise `running` while a live
    /// process drives it, and `interrupted` once that process is gone.
    pub fn status(&self, driven: bool) -> RunStatus {
        match self.recorded_end() {
            Some(end) => end.status,
            None if driven => RunStatus::Running,
            None => RunStatus::Interrupted,
        }
    }

    /// When the run was started.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.segments
            .first()
            .map(|s| s.started_at)
            .or(self.run.created)
    }

    /// When the run last ended (the latest recorded end of any of its processes).
    pub fn finished_at(&self) -> Option<Timestamp> {
        self.segments.iter().rev().find_map(|s| s.end.map(|e| e.at))
    }

    /// How long the run has taken, from its start to its latest recorded end.
    pub fn duration(&self) -> Option<Duration> {
        let span = self.finished_at()?.duration_since(self.started_at()?);
        Duration::try_from(span).ok()
    }

    /// The run in one line (`runbook runs`); `driven`: a live process drives it.
    pub fn summary(&self, driven: bool) -> RunSummary {
        RunSummary {
            run_id: self.run.run_id.clone(),
            runbook: self.run.runbook.clone(),
            status: self.status(driven),
            started_at: self.started_at(),
            finished_at: self.finished_at(),
        }
    }
}

/// A run in one line: what `runbook runs` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// running, succeeded, failed, paused or interrupted.
    pub status: RunStatus,
    /// When it was started.
    pub started_at: Option<Timestamp>,
    /// When it last ended.
    pub finished_at: Option<Timestamp>,
}

impl RunSummary {
    /// How long the run has taken, from its start to its latest recorded end.
    pub fn duration(&self) -> Option<Duration> {
        let span = self.finished_at?.duration_since(self.started_at?);
        Duration::try_from(span).ok()
    }
}

/// The fold of a journal into a [`Timeline`].
#[derive(Default)]
struct Fold {
    timeline: Timeline,
    /// Steps with an attempt that has not ended.
    open: BTreeSet<usize>,
}

impl Fold {
    fn apply(&mut self, record: Record) {
        let segment = self.timeline.segments.len().saturating_sub(1);
        let Some(record) = self.timeline.chronicle.apply(record, segment) else {
            return;
        };
        match record {
            Record::RunStarted {
                run_id,
                runbook,
                source,
                hash,
                steps,
                order,
                fingerprint,
                at,
                pid,
                user,
                host,
                ..
            } => {
                self.timeline.run = RunInfo {
                    run_id,
                    runbook,
                    source,
                    created: Some(at),
                    hash,
                    step_hashes: steps,
                    fingerprint,
                    order,
                };
                self.begin(SegmentKind::Started, at, pid, user, host);
            }
            Record::Resumed {
                at,
                pid,
                user,
                host,
            } => self.begin(SegmentKind::Resumed, at, pid, user, host),
            Record::RunbookChanged {
                hash,
                steps,
                order,
                fingerprint,
                ..
            } => {
                let run = &mut self.timeline.run;
                run.hash = hash;
                run.step_hashes = steps;
                run.fingerprint = fingerprint;
                if !order.is_empty() {
                    run.order = order;
                }
            }
            Record::ParamsChanged { params, by, at } => {
                self.timeline
                    .param_changes
                    .push(ParamChange { params, by, at });
            }
            Record::StepStarted {
                id,
                at,
                description,
                ..
            } => self.started(&id, at, description),
            Record::ProcessStarted { id, pgid, .. } => {
                let i = self.index(&id);
                if let Some(attempt) = self.timeline.steps[i].attempts.last_mut() {
                    attempt.groups.push(pgid);
                }
            }
            finished @ Record::StepFinished { .. } => self.step_finished(finished),
            Record::Paused { id, at } => {
                let i = self.index(&id);
                self.close(i, AttemptEnd::Paused, at);
                let step = &mut self.timeline.steps[i];
                step.status = StepStatus::Pending;
                step.in_flight = false;
                self.timeline.paused.push(id);
            }
            approval @ Record::Approval { .. } => self.approval(approval),
            Record::Waited { id, waited_ms, .. } => {
                let i = self.index(&id);
                self.timeline.steps[i].waited += Duration::from_millis(waited_ms);
            }
            Record::RunFinished { status, at } => self.ended(status, at),
            // Read by the chronicle above.
            Record::Retrying { .. }
            | Record::Delayed { .. }
            | Record::BatchStarted { .. }
            | Record::GateStarted { .. }
            | Record::GateEnded { .. }
            | Record::Version { .. }
            | Record::Notified { .. } => {}
        }
    }

    /// A step finished: its attempt ends and it takes its status, outputs and items.
    fn step_finished(&mut self, record: Record) {
        let Record::StepFinished {
            id,
            status,
            attempts,
            outputs,
            items,
            reason,
            log_lost,
            duration_ms,
            at,
        } = record
        else {
            return;
        };
        let i = self.index(&id);
        self.close(i, AttemptEnd::Finished(status), at);
        self.timeline.paused.retain(|p| p != &id);
        let step = &mut self.timeline.steps[i];
        step.status = status;
        step.in_flight = false;
        step.reported_attempts = step.reported_attempts.max(attempts);
        step.outputs = outputs;
        step.items = items;
        step.reason = reason;
        step.log_lost = log_lost;
        step.finished_at = Some(at);
        step.duration = Some(Duration::from_millis(duration_ms));
    }

    /// A decision on a manual step (an approval may be one of several it needs).
    fn approval(&mut self, record: Record) {
        let Record::Approval {
            id,
            approved,
            by,
            host,
            reason,
            how,
            inputs,
            at,
        } = record
        else {
            return;
        };
        // A rejection ends the wait; an approval may be one of several it needs.
        if !approved {
            self.timeline.paused.retain(|p| p != &id);
        }
        self.timeline.approvals.push(Approval {
            id,
            approved,
            by,
            host,
            at,
            reason,
            how,
            inputs,
        });
    }

    /// The process that drove the run ended its part. Attempts still open were stopped by it:
    /// they stay in flight, and a resume applies the in-flight rules to them.
    fn ended(&mut self, status: RunStatus, at: Timestamp) {
        for i in std::mem::take(&mut self.open) {
            if let Some(attempt) = self.timeline.steps[i].attempts.last_mut() {
                attempt.end = AttemptEnd::Interrupted;
                attempt.ended_at = Some(at);
            }
        }
        if let Some(segment) = self.timeline.segments.last_mut() {
            segment.end = Some(SegmentEnd { status, at });
        }
    }

    /// A process took the run over; attempts the previous one left open died with it.
    fn begin(
        &mut self,
        kind: SegmentKind,
        at: Timestamp,
        pid: u32,
        user: String,
        host: Option<String>,
    ) {
        for i in std::mem::take(&mut self.open) {
            if let Some(attempt) = self.timeline.steps[i].attempts.last_mut() {
                attempt.end = AttemptEnd::Died;
            }
        }
        self.timeline.paused.clear();
        self.timeline.segments.push(Segment {
            kind,
            pid,
            user,
            host,
            started_at: at,
            end: None,
        });
    }

    fn started(&mut self, id: &NodeId, at: Timestamp, description: Option<String>) {
        let i = self.index(id);
        // The attempt before it, in the same process, failed and was retried.
        self.close(i, AttemptEnd::Retried, at);
        let segment = self.timeline.segments.len().saturating_sub(1);
        let step = &mut self.timeline.steps[i];
        let number = u32::try_from(step.attempts.len() + 1).unwrap_or(u32::MAX);
        step.attempts.push(Attempt {
            number,
            segment,
            started_at: at,
            ended_at: None,
            end: AttemptEnd::Running,
            groups: Vec::new(),
            description,
        });
        step.status = StepStatus::Running;
        step.in_flight = true;
        step.started_at.get_or_insert(at);
        self.open.insert(i);
    }

    /// Ends the open attempt of step `i`, if it has one.
    fn close(&mut self, i: usize, end: AttemptEnd, at: Timestamp) {
        if !self.open.remove(&i) {
            return;
        }
        if let Some(attempt) = self.timeline.steps[i].attempts.last_mut() {
            attempt.end = end;
            // When a retried attempt failed is not journaled; the next one's start bounds it.
            attempt.ended_at = (end != AttemptEnd::Retried).then_some(at);
        }
    }

    fn index(&mut self, id: &NodeId) -> usize {
        if let Some(&i) = self.timeline.index.get(id) {
            return i;
        }
        let timeline = &mut self.timeline;
        timeline.steps.push(StepHistory::new(id.clone()));
        timeline.index.insert(id.clone(), timeline.steps.len() - 1);
        timeline.steps.len() - 1
    }

    fn finish(mut self) -> Timeline {
        if self.timeline.run.order.is_empty() {
            // A run of an older build records no plan order: steps that never started are
            // pending, in the order of their ids.
            let never: Vec<NodeId> = self
                .timeline
                .run
                .step_hashes
                .keys()
                .filter(|id| !self.timeline.index.contains_key(id.as_str()))
                .filter_map(|id| NodeId::parse(id).ok())
                .collect();
            for id in never {
                self.index(&id);
            }
            return self.timeline;
        }
        let order = std::mem::take(&mut self.timeline.run.order);
        for id in order.iter().filter_map(|id| NodeId::parse(id).ok()) {
            self.index(&id);
        }
        self.timeline.run.order = order;
        self.in_plan_order();
        self.timeline
    }

    /// Lists the steps in plan order. A step the plan did not have when the run started (an
    /// item of a fan-out expanded at run time, a step inside one) comes after the nearest step
    /// around it that it had, by item index, then in the order the journal names them.
    fn in_plan_order(&mut self) {
        let timeline = &mut self.timeline;
        let position: HashMap<&str, usize> = timeline
            .run
            .order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        // A fan-out or group the plan has only as its items or steps (a `for_each` over a list
        // known when the run started) goes right before the first of them.
        let mut containers: HashMap<NodeId, usize> = HashMap::new();
        for (p, id) in timeline.run.order.iter().enumerate() {
            let Ok(mut at) = NodeId::parse(id) else {
                continue;
            };
            while let Some(up) = at.fan_out().or_else(|| at.group()) {
                if !position.contains_key(up.as_str()) {
                    containers.entry(up.clone()).or_insert(p);
                }
                at = up;
            }
        }
        let key = |seen: usize, id: &NodeId| -> (usize, usize, usize) {
            if let Some(&p) = position.get(id.as_str()) {
                return (p, 1, 0);
            }
            if let Some(&p) = containers.get(id) {
                return (p, 0, 0);
            }
            let mut at = id.clone();
            loop {
                let Some(up) = at.fan_out().or_else(|| at.group()) else {
                    return (usize::MAX, seen, 0);
                };
                if let Some(&p) = position.get(up.as_str()) {
                    let item = match at.item_key() {
                        Some(crate::plan::ItemKey::Index(i)) => i,
                        _ => usize::MAX - 2,
                    };
                    return (p, 2 + item.min(usize::MAX - 2), seen);
                }
                at = up;
            }
        };
        let mut keyed: Vec<((usize, usize, usize), StepHistory)> =
            std::mem::take(&mut timeline.steps)
                .into_iter()
                .enumerate()
                .map(|(seen, step)| (key(seen, &step.id), step))
                .collect();
        keyed.sort_by_key(|(k, _)| *k);
        timeline.steps = keyed.into_iter().map(|(_, step)| step).collect();
        timeline.index = timeline
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Timestamp {
        format!("2026-11-21T03:00:{second:02}Z")
            .parse()
            .expect("a valid time")
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).expect("a valid id")
    }

    fn started(second: u32, pid: u32) -> Record {
        let mut steps = Map::new();
        for s in ["a", "b", "c"] {
            steps.insert(s.to_owned(), Value::from("h"));
        }
        Record::RunStarted {
            v: 1,
            run_id: "r1".to_owned(),
            runbook: "book".to_owned(),
            source: "book.yaml".to_owned(),
            hash: "files".to_owned(),
            steps,
            order: Vec::new(),
            fingerprint: 1,
            at: at(second),
            pid,
            user: "alice".to_owned(),
            host: Some("db1".to_owned()),
        }
    }

    fn resumed(second: u32, pid: u32) -> Record {
        Record::Resumed {
            at: at(second),
            pid,
            user: "bob".to_owned(),
            host: None,
        }
    }

    fn start(step: &str, attempt: u32, second: u32) -> Record {
        Record::StepStarted {
            id: id(step),
            attempt,
            description: None,
            at: at(second),
        }
    }

    fn finish(step: &str, status: StepStatus, attempts: u32, second: u32) -> Record {
        Record::StepFinished {
            id: id(step),
            status,
            attempts,
            outputs: Map::new(),
            items: Vec::new(),
            reason: None,
            log_lost: None,
            duration_ms: 1500,
            at: at(second),
        }
    }

    fn ended(status: RunStatus, second: u32) -> Record {
        Record::RunFinished {
            status,
            at: at(second),
        }
    }

    #[test]
    fn attempts_are_counted_across_the_processes_that_ran_them() {
        let timeline = Timeline::from_records([
            started(0, 10),
            start("a", 1, 1),
            finish("a", StepStatus::Succeeded, 1, 2),
            start("b", 1, 3),
            Record::ProcessStarted {
                id: id("b"),
                pgid: 77,
                at: at(3),
            },
            // The process died here (kill -9): no end recorded.
            resumed(10, 11),
            start("b", 1, 11),
            start("b", 2, 12),
            finish("b", StepStatus::Succeeded, 2, 13),
            ended(RunStatus::Succeeded, 14),
        ]);
        assert_eq!(timeline.segments.len(), 2);
        assert_eq!(timeline.segments[0].end, None, "the first process died");
        assert_eq!(timeline.segments[0].host.as_deref(), Some("db1"));
        assert_eq!(timeline.segments[1].kind, SegmentKind::Resumed);
        assert_eq!(timeline.status(false), RunStatus::Succeeded);

        let b = timeline.step("b").expect("b is known");
        assert_eq!(
            b.attempt_count(),
            3,
            "one attempt before the crash, two after"
        );
        assert_eq!(timeline.attempts_before(&id("b")), 3);
        let ends: Vec<(u32, usize, AttemptEnd)> = b
            .attempts
            .iter()
            .map(|a| (a.number, a.segment, a.end))
            .collect();
        assert_eq!(
            ends,
            [
                (1, 0, AttemptEnd::Died),
                (2, 1, AttemptEnd::Retried),
                (3, 1, AttemptEnd::Finished(StepStatus::Succeeded)),
            ]
        );
        assert_eq!(b.attempts[0].groups, [77]);
        assert_eq!(b.started_at, Some(at(3)), "the first start");
        assert_eq!(b.finished_at, Some(at(13)), "the last finish");
        assert_eq!(b.attempts[2].ended_at, Some(at(13)));
        assert_eq!(b.duration, Some(Duration::from_millis(1500)));
        assert!(!b.in_flight && b.groups().is_empty());

        let c = timeline.step("c").expect("never started, but in the plan");
        assert_eq!((c.status, c.attempt_count()), (StepStatus::Pending, 0));
        let order: Vec<&str> = timeline.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(timeline.duration(), Some(Duration::from_secs(14)));
    }

    #[test]
    fn a_step_in_flight_keeps_its_groups_and_the_run_is_running_only_while_driven() {
        let timeline = Timeline::from_records([
            started(0, 10),
            start("a", 1, 1),
            Record::ProcessStarted {
                id: id("a"),
                pgid: 42,
                at: at(1),
            },
        ]);
        let a = timeline.step("a").expect("a is known");
        assert!(a.in_flight);
        assert_eq!(a.status, StepStatus::Running);
        assert_eq!(a.groups(), [42]);
        assert_eq!(a.attempts[0].end, AttemptEnd::Running);
        assert_eq!(timeline.status(true), RunStatus::Running);
        assert_eq!(timeline.status(false), RunStatus::Interrupted);
        assert_eq!(timeline.finished_at(), None);
    }

    #[test]
    fn an_interrupt_leaves_the_step_in_flight_and_ends_its_attempt() {
        let timeline = Timeline::from_records([
            started(0, 10),
            start("a", 1, 1),
            ended(RunStatus::Interrupted, 5),
        ]);
        let a = timeline.step("a").expect("a is known");
        assert!(a.in_flight, "a resume applies the in-flight rules to it");
        assert_eq!(a.attempts[0].end, AttemptEnd::Interrupted);
        assert_eq!(a.attempts[0].ended_at, Some(at(5)));
        assert_eq!(timeline.status(true), RunStatus::Interrupted);
    }

    #[test]
    fn a_paused_step_waits_until_it_is_decided_and_a_resume_forgets_old_pauses() {
        let paused = [
            started(0, 10),
            start("a", 1, 1),
            Record::Paused {
                id: id("a"),
                at: at(2),
            },
            ended(RunStatus::Paused, 3),
        ];
        let timeline = Timeline::from_records(paused.clone());
        assert_eq!(timeline.paused, [id("a")]);
        assert_eq!(
            timeline.step("a").map(|a| a.status),
            Some(StepStatus::Pending)
        );
        assert_eq!(timeline.status(false), RunStatus::Paused);

        let mut approved = paused.to_vec();
        approved.extend([
            resumed(10, 11),
            Record::Approval {
                id: id("a"),
                approved: true,
                by: "carol".to_owned(),
                host: Some("laptop".to_owned()),
                reason: None,
                how: None,
                inputs: Map::new(),
                at: at(10),
            },
            finish("a", StepStatus::Succeeded, 1, 10),
        ]);
        let timeline = Timeline::from_records(approved);
        assert!(timeline.paused.is_empty());
        assert_eq!(timeline.approvals.len(), 1);
        assert_eq!(timeline.approvals[0].by, "carol");
        let a = timeline.step("a").expect("a is known");
        assert_eq!(a.status, StepStatus::Succeeded);
        assert_eq!(a.attempt_count(), 1, "an approval is no second attempt");
        assert_eq!(a.attempts[0].end, AttemptEnd::Paused);
        assert_eq!(
            timeline.status(false),
            RunStatus::Interrupted,
            "not ended yet"
        );
    }

    #[test]
    fn steps_are_listed_in_plan_order_with_items_expanded_at_run_time_after_their_fan_out() {
        let Record::RunStarted { mut order, .. } = started(0, 10) else {
            unreachable!("started() is a run_started record");
        };
        order.extend(["zeta", "fan", "alpha", "finally_note"].map(str::to_owned));
        let mut first = started(0, 10);
        if let Record::RunStarted { order: o, .. } = &mut first {
            o.clone_from(&order);
        }
        let timeline = Timeline::from_records([
            first,
            start("zeta", 1, 1),
            finish("zeta", StepStatus::Succeeded, 1, 2),
            start("fan[10]", 1, 3),
            start("fan[2]", 1, 3),
            start("fan[2].inner", 1, 3),
            Record::Waited {
                id: id("fan[2]"),
                waited_ms: 700,
                at: at(4),
            },
        ]);
        let listed: Vec<&str> = timeline.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            listed,
            [
                "zeta",
                "fan",
                "fan[2]",
                "fan[2].inner",
                "fan[10]",
                "alpha",
                "finally_note"
            ],
            "declared order, never-started steps in their place"
        );
        assert_eq!(
            timeline.step("fan[2]").map(|s| s.waited),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            timeline.step("alpha").map(|s| s.status),
            Some(StepStatus::Pending)
        );
    }

    #[test]
    fn a_changed_runbook_replaces_the_hashes_the_run_follows() {
        let mut steps = Map::new();
        steps.insert("d".to_owned(), Value::from("new"));
        let timeline = Timeline::from_records([
            started(0, 10),
            resumed(5, 11),
            Record::RunbookChanged {
                hash: "files-2".to_owned(),
                steps,
                order: Vec::new(),
                fingerprint: 1,
                by: "bob".to_owned(),
                at: at(5),
            },
        ]);
        assert_eq!(timeline.run.hash, "files-2");
        assert_eq!(timeline.run.runbook, "book");
        assert!(timeline.step("d").is_some(), "a new step is pending");
        assert!(
            timeline.step("a").is_none(),
            "a step of the old version never ran"
        );
    }
}
