//! What the executor tells the world. The executor never prints: it sends these, and the
//! reporter (and, later, the journal) consume the same stream.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::approvals::Via;
use super::secrets::Masker;
use crate::plan::NodeId;

/// A step's status (SPEC §5 spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Started, not finished.
    Running,
    /// Done (or already in place, per its `check`).
    Succeeded,
    /// Failed.
    Failed,
    /// Its `when` was false (or its call was skipped).
    Skipped,
}

impl StepStatus {
    /// The spelling used in templates, reports and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// A run's status (SPEC §5 spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// In progress.
    Running,
    /// Every step succeeded or was skipped (or failed with `allow_failure`).
    Succeeded,
    /// A step failed.
    Failed,
    /// Waiting for a manual step's approval.
    Paused,
    /// Stopped by a signal.
    Interrupted,
}

impl RunStatus {
    /// The spelling used in templates, reports and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Marks shown next to a step in a rehearsal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Marks {
    /// Would ask for confirmation.
    pub destructive: bool,
    /// Would wait for a person.
    pub manual: bool,
    /// Ran for real during the rehearsal (read-only).
    pub safe: bool,
}

/// One thing that happened. [`Runtime`](super::runtime::Runtime) masks every text in it as it
/// leaves the executor, so no consumer ever sees a secret.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run began.
    RunStarted {
        /// The run's id.
        run_id: String,
        /// The runbook's name.
        runbook: String,
        /// How many nodes the plan has.
        steps: usize,
        /// Whether this is a rehearsal.
        dry_run: bool,
    },
    /// An attempt of a step began.
    StepStarted {
        /// Full step id.
        id: NodeId,
        /// Human title.
        name: Option<String>,
        /// 1-based attempt number.
        attempt: u32,
        /// The rendered command or request.
        description: String,
        /// Whether the step polls (`until`).
        polling: bool,
    },
    /// A step's command started in its own process group (a resume checks that the group has
    /// ended before it runs the step again).
    ProcessStarted {
        /// Full step id.
        id: NodeId,
        /// The process group.
        pgid: i32,
    },
    /// A line a step printed.
    Output {
        /// Full step id.
        id: NodeId,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline.
        line: String,
    },
    /// An attempt failed and the step will try again.
    Retrying {
        /// Full step id.
        id: NodeId,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// A poll's condition did not hold yet.
    Polling {
        /// Full step id.
        id: NodeId,
        /// The attempt that just ended.
        attempt: u32,
        /// What was seen.
        detail: String,
    },
    /// A rehearsal shows what a step would do.
    Rehearsed {
        /// Full step id.
        id: NodeId,
        /// Human title.
        name: Option<String>,
        /// The fully rendered command or request.
        description: String,
        /// Markers.
        marks: Marks,
        /// Notes (`when` depends on run-time values, the step's check, …).
        notes: Vec<String>,
    },
    /// A step reached a final status.
    StepFinished {
        /// Full step id.
        id: NodeId,
        /// Its status.
        status: StepStatus,
        /// How many attempts it took.
        attempts: u32,
        /// How long it ran.
        duration: Duration,
        /// Its outputs.
        outputs: Map<String, Value>,
        /// Items of a fan-out expanded at run time: `{item, status, outputs}`.
        items: Vec<Value>,
        /// Why it failed or was skipped.
        reason: Option<String>,
    },
    /// A step settled by an earlier process of this run (resume): not run again.
    Restored {
        /// Full step id.
        id: NodeId,
        /// Its recorded status.
        status: StepStatus,
        /// Why it is not run.
        reason: String,
    },
    /// A step stopped by an interrupt: neither succeeded nor failed; a resume decides.
    StepInterrupted {
        /// Full step id.
        id: NodeId,
        /// How long it ran.
        duration: Duration,
    },
    /// A batch of a fan-out begins.
    BatchStarted {
        /// The fanned-out step.
        id: NodeId,
        /// 1-based.
        batch: usize,
        /// How many batches there are.
        of: usize,
        /// The items of the batch (their keys: hosts, or positions).
        items: Vec<String>,
    },
    /// The gate after a batch is being checked (or, in a rehearsal, shown).
    GateStarted {
        /// The fanned-out step.
        id: NodeId,
        /// The batch just ended (1-based).
        batch: usize,
        /// The probe and its condition.
        description: String,
    },
    /// The gate after a batch held, or did not.
    GateEnded {
        /// The fanned-out step.
        id: NodeId,
        /// The batch (1-based).
        batch: usize,
        /// Whether it held.
        held: bool,
        /// How (polls, or why not).
        detail: String,
    },
    /// A step waits before its first attempt (`delay`).
    Delaying {
        /// Full step id.
        id: NodeId,
        /// How long.
        delay: Duration,
    },
    /// A manual step is waiting for approval (the run is pausing).
    Paused {
        /// Full step id.
        id: NodeId,
        /// The rendered instructions.
        instructions: String,
        /// What it still waits for (approvals, inputs), and until when.
        waits_for: String,
        /// The inputs nobody has supplied yet.
        missing: Vec<String>,
    },
    /// A person approved or rejected a manual step.
    Decided {
        /// Full step id.
        id: NodeId,
        /// Approved (true) or rejected.
        approved: bool,
        /// Who (`--as`, else `user@host`).
        by: String,
        /// The machine they decided on.
        host: Option<String>,
        /// How: at the prompt, `--approve`/`--reject`, `--approve-all`.
        via: Via,
        /// Why (rejections).
        reason: Option<String>,
        /// The values they supplied (the step's inputs).
        inputs: Map<String, Value>,
    },
    /// A step waited for a person (a confirmation prompt, a manual step's decision): time not
    /// counted in its duration.
    Waited {
        /// Full step id.
        id: NodeId,
        /// How long.
        waited: Duration,
    },
    /// A notification (`notify:`) was sent, or could not be.
    Notified {
        /// The run status it told of.
        on: RunStatus,
        /// Where it went.
        url: String,
        /// The response's HTTP status, when there was one.
        status: Option<u16>,
        /// Why it failed; none when it was delivered.
        error: Option<String>,
    },
    /// The run ended.
    RunFinished {
        /// Its status.
        status: RunStatus,
        /// How long it took.
        duration: Duration,
    },
}

impl Event {
    /// The event with every secret value in its texts, outputs and items replaced by `***`.
    #[must_use]
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per event, each the same event with its texts masked: it reads best whole"
    )]
    pub fn masked(self, masker: &Masker) -> Self {
        let text = |s: String| masker.mask(&s);
        let map = |m: Map<String, Value>| match masker.mask_value(&Value::Object(m)) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        match self {
            Self::StepStarted {
                id,
                name,
                attempt,
                description,
                polling,
            } => Self::StepStarted {
                id,
                name,
                attempt,
                description: text(description),
                polling,
            },
            Self::Output { id, stream, line } => Self::Output {
                id,
                stream,
                line: text(line),
            },
            Self::Retrying {
                id,
                attempt,
                error,
                delay,
            } => Self::Retrying {
                id,
                attempt,
                error: text(error),
                delay,
            },
            Self::Polling {
                id,
                attempt,
                detail,
            } => Self::Polling {
                id,
                attempt,
                detail: text(detail),
            },
            Self::Rehearsed {
                id,
                name,
                description,
                marks,
                notes,
            } => Self::Rehearsed {
                id,
                name,
                description: text(description),
                marks,
                notes: notes.into_iter().map(text).collect(),
            },
            Self::StepFinished {
                id,
                status,
                attempts,
                duration,
                outputs,
                items,
                reason,
            } => Self::StepFinished {
                id,
                status,
                attempts,
                duration,
                outputs: map(outputs),
                items: items.iter().map(|i| masker.mask_value(i)).collect(),
                reason: reason.map(text),
            },
            Self::Restored { id, status, reason } => Self::Restored {
                id,
                status,
                reason: text(reason),
            },
            Self::Paused {
                id,
                instructions,
                waits_for,
                missing,
            } => Self::Paused {
                id,
                instructions: text(instructions),
                waits_for: text(waits_for),
                missing,
            },
            Self::Decided {
                id,
                approved,
                by,
                host,
                via,
                reason,
                inputs,
            } => Self::Decided {
                id,
                approved,
                by,
                host,
                via,
                reason: reason.map(text),
                inputs: map(inputs),
            },
            Self::GateStarted {
                id,
                batch,
                description,
            } => Self::GateStarted {
                id,
                batch,
                description: text(description),
            },
            Self::GateEnded {
                id,
                batch,
                held,
                detail,
            } => Self::GateEnded {
                id,
                batch,
                held,
                detail: text(detail),
            },
            Self::Notified {
                on,
                url,
                status,
                error,
            } => Self::Notified {
                on,
                url: text(url),
                status,
                error: error.map(text),
            },
            other @ (Self::RunStarted { .. }
            | Self::BatchStarted { .. }
            | Self::Delaying { .. }
            | Self::ProcessStarted { .. }
            | Self::StepInterrupted { .. }
            | Self::Waited { .. }
            | Self::RunFinished { .. }) => other,
        }
    }
}

/// A destructive step's confirmation, which only a person can give: the reporter owns the
/// terminal and asks it, and the person types the step's id (or `yes`), never just a key.
#[derive(Debug)]
pub struct Question {
    /// Full step id.
    pub id: NodeId,
    /// What to show.
    pub prompt: String,
    /// Where the answer goes (true: go ahead).
    pub reply: oneshot::Sender<bool>,
}

/// A manual step's question: approve or reject, then the values it needs. Only a person can
/// answer; the reporter owns the terminal and asks it.
#[derive(Debug)]
pub struct PersonQuestion {
    /// Full step id.
    pub id: NodeId,
    /// The instructions, and what the step waits for.
    pub prompt: String,
    /// The values to ask for after an approval, in order.
    pub inputs: Vec<AskedInput>,
    /// When no answer becomes no decision (the step's `timeout`).
    pub deadline: Option<jiff::Timestamp>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Answer>,
}

/// A value a person is asked for.
#[derive(Debug, Clone)]
pub struct AskedInput {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: crate::spec::ParamType,
    /// What it is.
    pub description: Option<String>,
    /// The only values it takes (empty: any of its type).
    pub allowed: Vec<Value>,
}

/// A person's answer to a manual step's question.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Approved, with the values asked for.
    Approved(Map<String, Value>),
    /// Rejected.
    Rejected,
    /// Nobody answered (the deadline passed, or the terminal closed).
    Unanswered,
}

/// An event and the moment it happened (taken as it left the executor, not when a consumer
/// got to it).
#[derive(Debug, Clone)]
pub struct Stamped {
    /// When it happened.
    pub at: jiff::Timestamp,
    /// What happened.
    pub event: Event,
}

impl Stamped {
    /// An event that happens now.
    pub fn now(event: Event) -> Self {
        Self {
            at: jiff::Timestamp::now(),
            event,
        }
    }
}

/// What the executor sends to its consumers.
#[derive(Debug)]
pub enum Message {
    /// Something happened.
    Event(Stamped),
    /// Something happened that must be durable before the executor goes on: the sender waits
    /// for the acknowledgement (sent once the journal is synced, or at once without one).
    Checkpoint(Stamped, oneshot::Sender<()>),
    /// A person must answer.
    Ask(Question),
    /// A person must decide a manual step.
    AskPerson(PersonQuestion),
}
