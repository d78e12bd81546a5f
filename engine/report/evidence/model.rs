//! The evidence of one run, as one document: what ran (the runbook, its version, its params),
//! who ran it and from where, every step with its attempts, waits, batches and outputs, the
//! approvals, the failures with their last log lines, and the totals an audit asks for. The
//! HTML, Markdown and JSON reports render this one model; `schemas/report.schema.json` is
//! generated from these types.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// The version of the report's JSON shape.
pub const FORMAT_VERSION: u32 = 1;

/// The evidence of one run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Evidence {
    /// The version of this document's shape.
    pub format: u32,
    /// When the report was made.
    #[schemars(with = "String")]
    pub generated_at: Timestamp,
    /// The run.
    pub run: RunFacts,
    /// The runbook it followed.
    pub runbook: RunbookFacts,
    /// The processes that drove the run: the first started it, each later one resumed it.
    pub processes: Vec<Process>,
    /// The run's params (secrets are declared by name only, their values masked).
    pub params: Vec<Param>,
    /// Every step, in the order of the plan (items of a fan-out after their step).
    pub steps: Vec<StepFacts>,
    /// Approvals and rejections of manual steps, in order.
    pub approvals: Vec<Approval>,
    /// Time spent waiting for a person at manual steps.
    pub waits_for_people: Vec<PersonWait>,
    /// Steps that failed (or had an attempt fail), with what their logs said last.
    pub failures: Vec<Failure>,
    /// Notifications sent about the run.
    pub notifications: Vec<Notification>,
    /// The sums an audit asks for.
    pub totals: Totals,
    /// What the report could not tell, and why (a runbook copy that no longer compiles, …).
    pub notes: Vec<String>,
}

impl Evidence {
    /// The wait for a person that this decision ended, if it ended one.
    pub fn waited_for(&self, decision: &Approval) -> Option<&PersonWait> {
        self.waits_for_people
            .iter()
            .find(|w| w.step == decision.step && w.until == Some(decision.at))
    }
}

/// The run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunFacts {
    /// The run's id.
    pub id: String,
    /// `running`, `succeeded`, `failed`, `paused` or `interrupted`.
    pub status: String,
    /// When it was started.
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    /// When it last ended (none while it runs, or when its last process died).
    #[schemars(with = "Option<String>")]
    pub ended_at: Option<Timestamp>,
    /// The steps waiting for a person now.
    pub waiting_for: Vec<String>,
    /// What to type to continue it, when it can be continued.
    pub resume_command: Option<String>,
}

/// The runbook a run followed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunbookFacts {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The file as the user named it.
    pub source: String,
    /// sha256 of the file's text as the run read it (the run keeps a copy).
    pub sha256: String,
    /// The git commit checked out where the file was, when it was in a repository.
    pub commit: Option<String>,
    /// The file differed from that commit (uncommitted changes, or not tracked).
    pub modified: bool,
    /// A resume went on with a changed runbook.
    pub changed_during_run: bool,
}

/// One process that drove the run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Process {
    /// 1-based, in order.
    pub number: usize,
    /// `started` or `resumed`.
    pub kind: String,
    /// Who ran it.
    pub user: String,
    /// The machine it ran on.
    pub host: Option<String>,
    /// Its pid.
    pub pid: u32,
    /// When it took the run over.
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    /// When it recorded its end (none: it still runs, or died).
    #[schemars(with = "Option<String>")]
    pub ended_at: Option<Timestamp>,
    /// The last moment the journal knows of it (its end, or its last record).
    #[schemars(with = "String")]
    pub last_seen_at: Timestamp,
    /// How its part ended: a run status, `running`, or `died` (no end recorded).
    pub outcome: String,
}

/// A param of the run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its value (`***` for a secret).
    pub value: Value,
    /// A declared secret: its value is never stored nor shown.
    pub secret: bool,
}

/// Everything known about one step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepFacts {
    /// Full id.
    pub id: String,
    /// Its human title.
    pub name: Option<String>,
    /// Its kind (`run`, `http`, `manual`, …; `item` for an item of a fan-out known at run time).
    pub kind: String,
    /// `main` or `finally`.
    pub phase: String,
    /// `pending`, `running`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    /// Why it failed or was skipped, or how it succeeded without running.
    pub reason: Option<String>,
    /// Whether it polls (`until`).
    pub polls: bool,
    /// Attempts made, across every process.
    pub attempt_count: u32,
    /// First start.
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    /// Last finish.
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<Timestamp>,
    /// How long it took: its attempts, without waiting for a person (milliseconds).
    pub work_ms: u64,
    /// How long a person was waited for at it (manual steps; milliseconds).
    pub waiting_ms: u64,
    /// Its outputs (masked when the run stored them).
    pub outputs: Map<String, Value>,
    /// Items of a fan-out expanded at run time.
    pub items: Vec<Value>,
    /// Every attempt.
    pub attempts: Vec<AttemptFacts>,
    /// Waits before an attempt: `delay` before the first, backoff before a retry.
    pub waits: Vec<StepWait>,
    /// The batches of a fan-out, with the gate checked after each.
    pub batches: Vec<BatchFacts>,
}

/// One attempt of a step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttemptFacts {
    /// 1-based, across processes.
    pub number: u32,
    /// The process it ran in (1-based).
    pub process: usize,
    /// When it began.
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    /// When it ended, when known.
    #[schemars(with = "Option<String>")]
    pub ended_at: Option<Timestamp>,
    /// `succeeded`, `failed`, `skipped`, `retried`, `paused`, `interrupted`, `died`, `running`.
    pub outcome: String,
    /// Why it failed, when it was retried.
    pub error: Option<String>,
}

/// A wait before an attempt.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepWait {
    /// `delay` or `backoff`.
    pub kind: String,
    /// When it began.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// How long (milliseconds).
    pub duration_ms: u64,
}

/// A batch of a fan-out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchFacts {
    /// 1-based.
    pub number: usize,
    /// How many batches there were.
    pub of: usize,
    /// Its items.
    pub items: Vec<String>,
    /// When it began.
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    /// The gate checked after it.
    pub gate: Option<GateFacts>,
}

/// A gate check after a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GateFacts {
    /// When the check began.
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    /// When it ended.
    #[schemars(with = "Option<String>")]
    pub ended_at: Option<Timestamp>,
    /// Whether it held (none: its process stopped first).
    pub held: Option<bool>,
    /// How.
    pub detail: Option<String>,
}

/// A decision on a manual step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Approval {
    /// The step.
    pub step: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// Who.
    pub by: String,
    /// The machine it was decided on.
    pub host: Option<String>,
    /// When.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// How: `runbook resume --approve`, `runbook resume --reject`, `at the prompt`, `--yes`.
    pub how: String,
    /// Why (rejections).
    pub reason: Option<String>,
}

/// Time a manual step waited for a person.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PersonWait {
    /// The step.
    pub step: String,
    /// When it began to wait.
    #[schemars(with = "String")]
    pub from: Timestamp,
    /// When a person decided (none: still waiting).
    #[schemars(with = "Option<String>")]
    pub until: Option<Timestamp>,
    /// How long (milliseconds; until the report was made when still waiting).
    pub duration_ms: u64,
}

/// A step that failed, or had an attempt fail.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Failure {
    /// The step.
    pub step: String,
    /// Its status now (`succeeded` when a later attempt or a resume got it through).
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The last lines its log holds for the attempt that failed last.
    pub log_tail: Vec<String>,
}

/// A notification sent about the run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Notification {
    /// The status it told of.
    pub on: String,
    /// Where it went (masked).
    pub url: String,
    /// When.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// Delivered (a 2xx answer).
    pub delivered: bool,
    /// The answer's HTTP status, or why there was none.
    pub detail: String,
}

/// The sums an audit asks for (milliseconds).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Totals {
    /// From the start to the end of the last step of the procedure (not counting `finally`),
    /// when the run succeeded: how long recovery took, people's waits included.
    pub time_to_recovery_ms: Option<u64>,
    /// From the start to the latest moment the journal knows.
    pub elapsed_ms: u64,
    /// Waiting for a person at manual steps.
    pub waiting_for_people_ms: u64,
    /// In steps that poll (`until`) and in gates between batches.
    pub polling_ms: u64,
    /// Waiting before attempts (`delay`, retry backoff).
    pub delays_ms: u64,
    /// Between processes while nobody drove the run and no person was waited for (a failure or
    /// an interrupt, until the resume).
    pub stopped_ms: u64,
}
