//! The journal's records: what a run's journal says, one record per event that must survive
//! the process (a step's start before its side effect, its end, a pause, an approval), in a
//! versioned format with stable spellings. Stores keep them in order and durably.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::exec::approvals::Via;
use crate::exec::{RunStatus, StepStatus};
use crate::plan::NodeId;

/// The journal format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The run was created (always the first record).
    RunStarted {
        /// Journal format version.
        v: u32,
        /// The run's id.
        run_id: String,
        /// The runbook's name.
        runbook: String,
        /// The runbook file as the user named it.
        source: String,
        /// Hash of every runbook file as it ran.
        hash: String,
        /// Hash of each compiled step, by node id.
        steps: Map<String, Value>,
        /// Every node's id in plan order: the order the runbook declares its steps (a call's
        /// steps after it, items by index, `finally` last), which `show` lists them in. Not
        /// recorded by older builds.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        order: Vec<String>,
        /// The version of the step hashes' canonical form (0: written before it was versioned;
        /// such hashes cannot be compared with this build's).
        #[serde(default)]
        fingerprint: u32,
        /// When (RFC 3339).
        at: Timestamp,
        /// The process that drives it.
        pid: u32,
        /// Who started it.
        user: String,
        /// The machine it runs on (not recorded by older builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A later process took the run over (`resume`).
    Resumed {
        /// When.
        at: Timestamp,
        /// The process that drives it now.
        pid: u32,
        /// Who resumed it.
        user: String,
        /// The machine it runs on now (not recorded by older builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A resume went on with a changed runbook (`--allow-changed`): the run follows it now.
    RunbookChanged {
        /// Hash of the runbook files now.
        hash: String,
        /// Hash of each compiled step now, by node id.
        steps: Map<String, Value>,
        /// Every node's id now, in plan order (not recorded by older builds).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        order: Vec<String>,
        /// The version of the step hashes' canonical form (0: before it was versioned).
        #[serde(default)]
        fingerprint: u32,
        /// Who allowed it.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A resume gave params new values (`--set`): steps that run from now on read them; no step
    /// that had read a param yet was finished.
    ParamsChanged {
        /// The new values, by param.
        params: Map<String, Value>,
        /// Who gave them.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A step's attempt is about to cause its side effect.
    StepStarted {
        /// Full step id.
        id: NodeId,
        /// 1-based attempt.
        attempt: u32,
        /// What it runs, as its log's first line shows it (the command, secrets masked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// A step's command started in its own process group.
    ProcessStarted {
        /// Full step id.
        id: NodeId,
        /// The process group.
        pgid: i32,
        /// When.
        at: Timestamp,
    },
    /// A step reached a final status.
    StepFinished {
        /// Full step id.
        id: NodeId,
        /// Its status.
        status: StepStatus,
        /// Attempts made.
        attempts: u32,
        /// Its outputs (masked).
        outputs: Map<String, Value>,
        /// Items of a fan-out expanded at run time.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<Value>,
        /// Why it failed or was skipped, or how it succeeded without running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Why lines of its log were lost (a full disk), when they were: its log is incomplete.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_lost: Option<String>,
        /// How long it ran, in milliseconds.
        duration_ms: u64,
        /// When.
        at: Timestamp,
    },
    /// A manual step is waiting for approval.
    Paused {
        /// Full step id.
        id: NodeId,
        /// When.
        at: Timestamp,
    },
    /// A person approved or rejected a manual step.
    Approval {
        /// Full step id.
        id: NodeId,
        /// Approved (true) or rejected.
        approved: bool,
        /// Who.
        by: String,
        /// The machine the decision was taken on (not recorded by older builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// Why (rejections).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// How: at the prompt, `--approve`/`--reject`, `--approve-all` (not recorded by older
        /// builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        how: Option<Via>,
        /// The values supplied with it (the step's inputs).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        inputs: Map<String, Value>,
        /// When.
        at: Timestamp,
    },
    /// A step waited for a person (a confirmation prompt, a manual step's decision): time its
    /// duration does not count.
    Waited {
        /// Full step id.
        id: NodeId,
        /// How long, in milliseconds.
        waited_ms: u64,
        /// When the wait ended.
        at: Timestamp,
    },
    /// An attempt failed and the step will try again after `delay_ms`.
    Retrying {
        /// Full step id.
        id: NodeId,
        /// The attempt that failed.
        attempt: u32,
        /// Why (masked).
        error: String,
        /// The wait before the next attempt, in milliseconds.
        delay_ms: u64,
        /// When the attempt failed.
        at: Timestamp,
    },
    /// A step waits before its first attempt (`delay`).
    Delayed {
        /// Full step id.
        id: NodeId,
        /// How long, in milliseconds.
        delay_ms: u64,
        /// When the wait began.
        at: Timestamp,
    },
    /// A batch of a fan-out began.
    BatchStarted {
        /// The fanned-out step.
        id: NodeId,
        /// 1-based.
        batch: usize,
        /// How many batches there are.
        of: usize,
        /// The items of the batch (their keys: hosts, or positions).
        items: Vec<String>,
        /// When.
        at: Timestamp,
    },
    /// The gate after a batch began to be checked.
    GateStarted {
        /// The fanned-out step.
        id: NodeId,
        /// The batch just ended (1-based).
        batch: usize,
        /// When.
        at: Timestamp,
    },
    /// The gate after a batch held, or did not.
    GateEnded {
        /// The fanned-out step.
        id: NodeId,
        /// The batch (1-based).
        batch: usize,
        /// Whether it held.
        held: bool,
        /// How (polls, or why not; masked).
        detail: String,
        /// When.
        at: Timestamp,
    },
    /// Which version of the runbook a process drives the run with: the sha256 of the root
    /// runbook file and, when the file is in a git repository, the commit checked out.
    Version {
        /// sha256 of the root runbook file's text, in hex.
        sha256: String,
        /// The commit checked out where the file is, when it is in a git repository.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        /// The file differs from that commit (uncommitted changes, or not tracked).
        #[serde(default)]
        modified: bool,
        /// When.
        at: Timestamp,
    },
    /// A notification (`notify:`) was sent, or could not be.
    Notified {
        /// The run's status it told of.
        on: RunStatus,
        /// Where it went (masked).
        url: String,
        /// The response's HTTP status, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Why it failed (masked); none when it was delivered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The run (or this process's part of it) ended.
    RunFinished {
        /// How.
        status: RunStatus,
        /// When.
        at: Timestamp,
    },
}

/// Why a journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("failed to access {path}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal file was deleted (its run folder removed) while this process wrote it: what
    /// it writes lands nowhere.
    #[error(
        "{path} was deleted while the run went on (was its run folder removed?); nothing more can be recorded"
    )]
    Deleted {
        /// The journal.
        path: PathBuf,
    },
    /// A line that is not a record (and not a torn last line).
    #[error("{path}:{line}: damaged journal record: {reason}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Written by another format version.
    #[error(
        "{path}: journal format version {found}, this runbook build reads version {FORMAT_VERSION}"
    )]
    Version {
        /// The journal.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
}

/// The current time, for records written outside the event stream.
pub fn now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_an_older_build_still_read() {
        // Written before fingerprints were versioned and hosts recorded.
        let started = r#"{"type":"run_started","v":1,"run_id":"r","runbook":"b","source":"b.yaml","hash":"h","steps":{"a":"0123456789abcdef"},"at":"2026-11-20T03:00:00.123456789Z","pid":7,"user":"alice"}"#;
        let Record::RunStarted {
            fingerprint,
            host,
            at,
            ..
        } = serde_json::from_str(started).unwrap()
        else {
            panic!("a run_started record");
        };
        assert_eq!((fingerprint, host), (0, None));
        assert_eq!(at.to_string(), "2026-11-20T03:00:00.123456789Z");
        let approval = r#"{"type":"approval","id":"gate","approved":true,"by":"bob","at":"2026-11-20T03:01:00Z"}"#;
        assert!(matches!(
            serde_json::from_str(approval).unwrap(),
            Record::Approval { host: None, .. }
        ));
    }

    #[test]
    fn times_are_written_as_rfc_3339_text() {
        let record = Record::Paused {
            id: NodeId::step("gate"),
            at: "2026-11-21T03:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"type":"paused","id":"gate","at":"2026-11-21T03:00:00Z"}"#
        );
    }
}
