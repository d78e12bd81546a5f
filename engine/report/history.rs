//! `runbook runs`, `show` and `logs`: a run's history for people (tables) and machines (JSON),
//! read from its timeline.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use super::estimate::Remaining;
use crate::exec::approvals::Via;
use crate::exec::{RunStatus, StepStatus};
use crate::plan::NodeId;
use crate::spec::duration::Human;
use crate::state::store::{Store, StoreError};
use crate::state::timeline::{RunSummary, SegmentKind, StepHistory, Timeline};

/// One line per run: id, runbook, status, started, duration.
pub fn runs_table(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs yet (runbook run FILE starts one)\n".to_owned();
    }
    let width = runs
        .iter()
        .map(|r| r.run_id.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let book = runs
        .iter()
        .map(|r| r.runbook.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{:width$}  {:book$}  {:11}  {:20}  {:>9}\n",
        "run", "runbook", "status", "started", "duration"
    );
    for r in runs {
        let started = r.started_at.map(short_time).unwrap_or_default();
        let duration = r
            .duration()
            .map_or_else(|| "-".to_owned(), |d| Human(d).to_string());
        let _ = writeln!(
            out,
            "{:width$}  {:book$}  {:11}  {:20}  {:>9}",
            r.run_id,
            r.runbook,
            r.status.as_str(),
            started,
            duration
        );
    }
    out
}

/// The runs as JSON.
pub fn runs_json(runs: &[RunSummary]) -> String {
    let list: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "run_id": r.run_id,
                "runbook": r.runbook,
                "status": r.status,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "duration_ms": r.duration().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

/// What a step left in flight by a run that stopped reads as.
const STOPPED_IN_FLIGHT: &str = "in flight when the run stopped";

/// How a step reads now: nothing runs in a run that stopped, so a step it left in flight is
/// pending again (to be run, or decided, by a resume).
pub(crate) fn shown(step: &StepHistory, run: RunStatus) -> (StepStatus, Option<&str>) {
    if step.in_flight && run != RunStatus::Running {
        (StepStatus::Pending, Some(STOPPED_IN_FLIGHT))
    } else {
        (step.status, step.reason.as_deref())
    }
}

/// A run's steps as a table, with approvals and failures; `status` is the run's status now.
pub fn show_text(run: &Timeline, status: RunStatus) -> String {
    let mut out = format!(
        "run {} of {}: {}\n",
        run.run.run_id,
        run.run.runbook,
        status.as_str()
    );
    if let Some(s) = run.started_at() {
        let _ = writeln!(
            out,
            "started {}{}",
            short_time(s),
            run.finished_at()
                .map(|f| format!(", ended {}", short_time(f)))
                .unwrap_or_default()
        );
    }
    let width = run
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    // Time people took is its own column, when any step waited for one.
    let waits = run.steps.iter().any(|s| !s.waited.is_zero());
    let waited = |s: &StepHistory| match (waits, s.waited.is_zero()) {
        (false, _) => String::new(),
        (true, true) => format!("  {:>8}", "-"),
        (true, false) => format!("  {:>8}", Human(s.waited).to_string()),
    };
    let _ = writeln!(
        out,
        "\n{:width$}  {:9}  {:>8}  {:>8}{}  {:20}  outputs",
        "step",
        "status",
        "attempts",
        "time",
        if waits {
            format!("  {:>8}", "waited")
        } else {
            String::new()
        },
        "finished"
    );
    for s in &run.steps {
        let (step_status, reason) = shown(s, status);
        let outputs = if s.outputs.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&s.outputs).unwrap_or_default()
        };
        let finished = s.finished_at.map(short_time).unwrap_or_default();
        let time = s
            .duration
            .map_or_else(|| "-".to_owned(), |d| Human(d).to_string());
        let row = format!(
            "{:width$}  {:9}  {:>8}  {:>8}{}  {:20}  {outputs}",
            s.id,
            step_status.as_str(),
            s.attempt_count(),
            time,
            waited(s),
            finished
        );
        let _ = writeln!(out, "{}", row.trim_end());
        if let Some(reason) = reason {
            let _ = writeln!(out, "{:width$}  {reason}", "");
        }
        if let Some(lost) = &s.log_lost {
            let _ = writeln!(out, "{:width$}  log incomplete: {lost}", "");
        }
    }
    decisions(&mut out, run);
    let waiting = run.waiting();
    for p in &run.paused {
        let _ = writeln!(
            out,
            "\nwaiting for approval: {p}{}\n  runbook resume {} --approve {p}",
            waiting
                .get(p)
                .map(|w| format!(" (since {})", short_time(w.since)))
                .unwrap_or_default(),
            run.run.run_id
        );
    }
    out
}

/// `show --format json`: SPEC §5's shape, plus each step's own time and the time it waited for
/// people, approvals (who, how, with what inputs), each step's attempts (`history`), the params
/// resumes changed and the processes that drove the run.
#[derive(Serialize)]
struct RunView<'a> {
    run_id: &'a str,
    runbook: &'a str,
    status: RunStatus,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    steps: Vec<StepView<'a>>,
    approvals: Vec<ApprovalView<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params_changed: Vec<ParamsView<'a>>,
    processes: Vec<ProcessView<'a>>,
    /// Of a running run: what is left of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_remaining: Option<RemainingView>,
}

/// What is left of a running run: `ms` is null without a past run to tell from.
#[derive(Serialize)]
struct RemainingView {
    ms: Option<u64>,
    past_runs: usize,
}

/// New param values a resume gave.
#[derive(Serialize)]
struct ParamsView<'a> {
    params: &'a Map<String, Value>,
    by: &'a str,
    at: Timestamp,
}

#[derive(Serialize)]
struct StepView<'a> {
    id: &'a NodeId,
    status: StepStatus,
    /// Counted across every process of the run.
    attempts: u32,
    /// First start.
    started_at: Option<Timestamp>,
    /// Last finish.
    finished_at: Option<Timestamp>,
    /// Its own time (waiting for people not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// Time it waited for people: confirmation prompts, decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    waited_ms: Option<u64>,
    outputs: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    items: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// Why lines of its log were lost (its log is incomplete).
    #[serde(skip_serializing_if = "Option::is_none")]
    log_lost: Option<&'a str>,
    history: Vec<AttemptView>,
}

#[derive(Serialize)]
struct AttemptView {
    attempt: u32,
    /// Index in `processes`.
    process: usize,
    started_at: Timestamp,
    finished_at: Option<Timestamp>,
    outcome: &'static str,
}

#[derive(Serialize)]
struct ApprovalView<'a> {
    id: &'a NodeId,
    approved: bool,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    /// `prompt`, `option` (`--approve`/`--reject`) or `approve_all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    how: Option<Via>,
    at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    inputs: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct ProcessView<'a> {
    /// `started` (the run) or `resumed`.
    kind: &'static str,
    pid: u32,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    started_at: Timestamp,
    finished_at: Option<Timestamp>,
    /// How its part ended (none: it still runs, or died).
    status: Option<RunStatus>,
}

/// The run as JSON; `status` is the run's status now, `remaining` what is left of it (a running
/// run).
pub fn show_json(run: &Timeline, status: RunStatus, remaining: Option<Remaining>) -> String {
    let view = RunView {
        run_id: &run.run.run_id,
        runbook: &run.run.runbook,
        status,
        started_at: run.started_at(),
        finished_at: run.finished_at(),
        steps: run.steps.iter().map(|s| step_view(s, status)).collect(),
        approvals: run
            .approvals
            .iter()
            .map(|a| ApprovalView {
                id: &a.id,
                approved: a.approved,
                by: &a.by,
                host: a.host.as_deref(),
                how: a.how,
                at: a.at,
                reason: a.reason.as_deref(),
                inputs: &a.inputs,
            })
            .collect(),
        params_changed: run
            .param_changes
            .iter()
            .map(|c| ParamsView {
                params: &c.params,
                by: &c.by,
                at: c.at,
            })
            .collect(),
        processes: run
            .segments
            .iter()
            .map(|s| ProcessView {
                kind: match s.kind {
                    SegmentKind::Started => "started",
                    SegmentKind::Resumed => "resumed",
                },
                pid: s.pid,
                user: &s.user,
                host: s.host.as_deref(),
                started_at: s.started_at,
                finished_at: s.end.map(|e| e.at),
                status: s.end.map(|e| e.status),
            })
            .collect(),
        expected_remaining: remaining.map(|r| RemainingView {
            ms: r
                .left
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            past_runs: r.runs,
        }),
    };
    serde_json::to_string_pretty(&view).unwrap_or_default() + "\n"
}

fn step_view(step: &StepHistory, run: RunStatus) -> StepView<'_> {
    let (status, reason) = shown(step, run);
    StepView {
        id: &step.id,
        status,
        attempts: step.attempt_count(),
        started_at: step.started_at,
        finished_at: step.finished_at,
        duration_ms: step.duration.map(millis),
        waited_ms: (!step.waited.is_zero()).then(|| millis(step.waited)),
        outputs: &step.outputs,
        items: &step.items,
        reason,
        log_lost: step.log_lost.as_deref(),
        history: step
            .attempts
            .iter()
            .map(|a| AttemptView {
                attempt: a.number,
                process: a.segment,
                started_at: a.started_at,
                finished_at: a.ended_at,
                outcome: a.end.as_str(),
            })
            .collect(),
    }
}

/// Why `logs` could not show a run's logs.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The step asked for is not one of the run's.
    #[error("run {run_id} has no step `{id}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownStep {
        /// The run.
        run_id: String,
        /// The step as given.
        id: String,
        /// Did you mean.
        hint: Option<String>,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The steps `logs` shows: the one asked for (by id), or every step of the run in plan order.
pub fn log_steps(
    store: &dyn Store,
    run: &Timeline,
    step: Option<&str>,
) -> Result<Vec<NodeId>, LogsError> {
    let Some(asked) = step else {
        // The timeline lists them in plan order.
        return Ok(run.steps.iter().map(|s| s.id.clone()).collect());
    };
    let unknown = || {
        let known: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).collect();
        LogsError::UnknownStep {
            run_id: run.run.run_id.clone(),
            id: asked.to_owned(),
            hint: crate::spec::suggest::did_you_mean(asked, known.iter().copied()),
        }
    };
    let id = NodeId::parse(asked).map_err(|_| unknown())?;
    if run.step(&id).is_none() && store.read_log(&run.run.run_id, &id, 0)?.is_none() {
        return Err(unknown());
    }
    Ok(vec![id])
}

/// What a step's log holds from byte `from` on: its file, or, for a step without one (its first
/// attempt printed nothing), the lines the journal stands for, which are what the file would
/// begin with had it been written.
pub fn read_log(
    store: &dyn Store,
    run: &Timeline,
    id: &NodeId,
    from: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(chunk) = store.read_log(&run.run.run_id, id, from)? {
        return Ok(Some(chunk.bytes));
    }
    Ok(run.step(id).and_then(StepHistory::journal_log).map(|text| {
        let from = usize::try_from(from).map_or(text.len(), |f| f.min(text.len()));
        text.into_bytes().split_off(from)
    }))
}

/// Steps' logs as `logs` prints them, in one format from the first line to the last, also while
/// following a run: one step's lines as they are, or every step's under a `=== ID` line (again
/// each time the output moves on to another step, as `tail -f` does with several files).
#[derive(Debug)]
pub struct LogPrinter {
    /// `=== ID` lines (every step is shown).
    headers: bool,
    /// The step whose lines were printed last.
    current: Option<NodeId>,
    /// How far each step's log was printed.
    offsets: HashMap<NodeId, u64>,
}

impl LogPrinter {
    /// A printer of every step (`headers`) or of one.
    pub fn new(headers: bool) -> Self {
        Self {
            headers,
            current: None,
            offsets: HashMap::new(),
        }
    }

    /// Appends to `out` what the steps' logs gained since the last pass. `whole`: only whole
    /// lines, as the run is still writing them; a step gets its `=== ID` line once it has
    /// something to show. Otherwise (the run has ended) the first pass gives every step its
    /// `=== ID` line, even one that printed nothing.
    pub fn pass(
        &mut self,
        store: &dyn Store,
        run: &Timeline,
        steps: &[NodeId],
        whole: bool,
        out: &mut String,
    ) -> Result<(), StoreError> {
        let first = self.offsets.is_empty() && self.current.is_none();
        for id in steps {
            let from = self.offsets.get(id).copied().unwrap_or(0);
            let chunk = read_log(store, run, id, from)?;
            let bytes = chunk.as_deref().unwrap_or_default();
            let end = if whole {
                bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
            } else {
                bytes.len()
            };
            if end == 0 && (!first || whole) {
                continue;
            }
            if self.headers && self.current.as_ref() != Some(id) {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                let _ = writeln!(out, "=== {id}");
                self.current = Some(id.clone());
            }
            out.push_str(&String::from_utf8_lossy(&bytes[..end]));
            self.offsets.insert(id.clone(), from + end as u64);
        }
        Ok(())
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What people decided (who, how, when, what they supplied) and the params a resume changed.
fn decisions(out: &mut String, run: &Timeline) {
    for a in &run.approvals {
        let verb = if a.approved { "approved" } else { "rejected" };
        let _ = writeln!(
            out,
            "\n{} {verb} by {}{} at {}{}{}",
            a.id,
            a.by,
            a.how
                .map(|how| format!(" {}", how.describe(a.approved)))
                .unwrap_or_default(),
            short_time(a.at),
            a.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            if a.inputs.is_empty() {
                String::new()
            } else {
                format!("\n  supplied {}", Value::Object(a.inputs.clone()))
            }
        );
    }
    for change in &run.param_changes {
        let _ = writeln!(
            out,
            "\nparams changed by {} at {}: {}",
            change.by,
            short_time(change.at),
            Value::Object(change.params.clone())
        );
    }
}

fn short_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}
