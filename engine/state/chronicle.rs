//! What a run's journal tells besides its steps' attempts: the batches of its fan-outs and the
//! gates checked between them, the waits before a first attempt (`delay`) and between attempts
//! (retry backoff), the runbook's version each process drove the run with, and the notifications
//! sent. Reports read it; resume does not need it.

use std::time::Duration;

use jiff::Timestamp;

use super::journal::Record;
use crate::exec::RunStatus;
use crate::plan::NodeId;

/// The run's fan-out batches, gates, waits, versions and notifications, in journal order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chronicle {
    /// Every batch of every fan-out, in the order they began.
    pub batches: Vec<Batch>,
    /// Every gate check, in the order they began.
    pub gates: Vec<GateCheck>,
    /// Every wait before an attempt: `delay` before the first, backoff before a retry.
    pub waits: Vec<Wait>,
    /// The runbook's version, as each process that drove the run recorded it.
    pub versions: Vec<Version>,
    /// Notifications sent (or not).
    pub notifications: Vec<Notification>,
}

/// One batch of a fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The fanned-out step.
    pub id: NodeId,
    /// 1-based.
    pub batch: usize,
    /// How many batches there are.
    pub of: usize,
    /// Its items' keys.
    pub items: Vec<String>,
    /// When it began.
    pub started_at: Timestamp,
    /// Index of the process it ran in.
    pub segment: usize,
}

/// The gate checked after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateCheck {
    /// The fanned-out step.
    pub id: NodeId,
    /// The batch it follows.
    pub batch: usize,
    /// When the check began.
    pub started_at: Timestamp,
    /// When it ended, and whether it held (unknown when its process stopped first).
    pub ended: Option<GateEnd>,
    /// Index of the process it ran in.
    pub segment: usize,
}

/// How a gate check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateEnd {
    /// When.
    pub at: Timestamp,
    /// Whether it held.
    pub held: bool,
    /// How (polls, or why not).
    pub detail: String,
}

/// Why a step waited before an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitKind {
    /// `delay:` before its first attempt.
    Delay,
    /// Backoff after attempt `failed` failed, before the next.
    Backoff {
        /// The attempt that failed.
        failed: u32,
        /// Why it failed.
        error: String,
    },
}

/// A step's wait before an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// The step.
    pub id: NodeId,
    /// Delay or backoff.
    pub kind: WaitKind,
    /// When it began.
    pub at: Timestamp,
    /// How long it was to last.
    pub duration: Duration,
    /// Index of the process it happened in.
    pub segment: usize,
}

/// The runbook's version one process drove the run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// sha256 of the root runbook file's text.
    pub sha256: String,
    /// The git commit checked out where the file is.
    pub commit: Option<String>,
    /// The file differs from that commit.
    pub modified: bool,
    /// Index of the process.
    pub segment: usize,
}

/// A notification sent when the run paused, failed or succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The status it told of.
    pub on: RunStatus,
    /// Where it went (masked).
    pub url: String,
    /// The response's HTTP status.
    pub status: Option<u16>,
    /// Why it failed; none when delivered.
    pub error: Option<String>,
    /// When.
    pub at: Timestamp,
}

impl Chronicle {
    /// Takes in a record the step fold does not read; `segment` is the index of the process
    /// that wrote it. Returns the record back when it is not one of these.
    pub(super) fn apply(&mut self, record: Record, segment: usize) -> Option<Record> {
        match record {
            Record::Retrying {
                id,
                attempt,
                error,
                delay_ms,
                at,
            } => self.waits.push(Wait {
                id,
                kind: WaitKind::Backoff {
                    failed: attempt,
                    error,
                },
                at,
                duration: Duration::from_millis(delay_ms),
                segment,
            }),
            Record::Delayed { id, delay_ms, at } => self.waits.push(Wait {
                id,
                kind: WaitKind::Delay,
                at,
                duration: Duration::from_millis(delay_ms),
                segment,
            }),
            Record::BatchStarted {
                id,
                batch,
                of,
                items,
                at,
            } => self.batches.push(Batch {
                id,
                batch,
                of,
                items,
                started_at: at,
                segment,
            }),
            Record::GateStarted { id, batch, at } => self.gates.push(GateCheck {
                id,
                batch,
                started_at: at,
                ended: None,
                segment,
            }),
            Record::GateEnded {
                id,
                batch,
                held,
                detail,
                at,
            } => {
                if let Some(gate) = self
                    .gates
                    .iter_mut()
                    .rev()
                    .find(|g| g.id == id && g.batch == batch && g.ended.is_none())
                {
                    gate.ended = Some(GateEnd { at, held, detail });
                }
            }
            Record::Version {
                sha256,
                commit,
                modified,
                ..
            } => self.versions.push(Version {
                sha256,
                commit,
                modified,
                segment,
            }),
            Record::Notified {
                on,
                url,
                status,
                error,
                at,
            } => self.notifications.push(Notification {
                on,
                url,
                status,
                error,
                at,
            }),
            other => return Some(other),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::state::Timeline;

    fn at(second: u32) -> Timestamp {
        format!("2026-11-21T03:00:{second:02}Z")
            .parse()
            .expect("a valid time")
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).expect("a valid id")
    }

    fn started() -> Record {
        Record::RunStarted {
            v: 1,
            run_id: "r1".to_owned(),
            runbook: "book".to_owned(),
            source: "book.yaml".to_owned(),
            hash: "files".to_owned(),
            steps: Map::new(),
            order: Vec::new(),
            fingerprint: 1,
            at: at(0),
            pid: 10,
            user: "alice".to_owned(),
            host: None,
        }
    }

    #[test]
    fn batches_gates_waits_and_versions_are_read_with_their_process() {
        let timeline = Timeline::from_records([
            started(),
            Record::Version {
                sha256: "ab".to_owned(),
                commit: Some("c0ffee".to_owned()),
                modified: false,
                at: at(0),
            },
            Record::Delayed {
                id: id("a"),
                delay_ms: 2000,
                at: at(1),
            },
            Record::StepStarted {
                id: id("a"),
                attempt: 1,
                description: None,
                at: at(3),
            },
            Record::Retrying {
                id: id("a"),
                attempt: 1,
                error: "exit 1".to_owned(),
                delay_ms: 1000,
                at: at(4),
            },
            Record::BatchStarted {
                id: id("fan"),
                batch: 1,
                of: 2,
                items: vec!["0".to_owned()],
                at: at(5),
            },
            Record::GateStarted {
                id: id("fan"),
                batch: 1,
                at: at(6),
            },
            Record::GateEnded {
                id: id("fan"),
                batch: 1,
                held: true,
                detail: "held after 2 polls".to_owned(),
                at: at(8),
            },
            Record::Resumed {
                at: at(20),
                pid: 11,
                user: "bob".to_owned(),
                host: None,
            },
            Record::GateStarted {
                id: id("fan"),
                batch: 2,
                at: at(21),
            },
            Record::Notified {
                on: RunStatus::Failed,
                url: "http://hook/***".to_owned(),
                status: None,
                error: Some("connection refused".to_owned()),
                at: at(22),
            },
        ]);
        let c = &timeline.chronicle;
        assert_eq!(c.versions.len(), 1);
        assert_eq!(c.versions[0].commit.as_deref(), Some("c0ffee"));
        assert_eq!(
            c.waits
                .iter()
                .map(|w| (w.id.as_str(), w.duration.as_secs(), &w.kind))
                .collect::<Vec<_>>(),
            [
                ("a", 2, &WaitKind::Delay),
                (
                    "a",
                    1,
                    &WaitKind::Backoff {
                        failed: 1,
                        error: "exit 1".to_owned()
                    }
                ),
            ]
        );
        assert_eq!(c.batches.len(), 1);
        assert_eq!(c.batches[0].items, ["0"]);
        assert_eq!(c.gates.len(), 2);
        let first = c.gates[0].ended.as_ref().expect("the first gate ended");
        assert!(first.held);
        assert_eq!(first.at, at(8));
        assert_eq!(c.gates[1].segment, 1, "checked by the resuming process");
        assert_eq!(c.gates[1].ended, None, "its process stopped first");
        assert_eq!(
            c.notifications[0].error.as_deref(),
            Some("connection refused")
        );
        let a = timeline.step("a").expect("a is known");
        assert_eq!(a.attempts.len(), 1, "a retry's record is no new attempt");
    }

    #[test]
    fn the_new_records_round_trip_and_old_journals_lack_them() {
        let record = Record::Version {
            sha256: "ab".to_owned(),
            commit: None,
            modified: true,
            at: at(1),
        };
        let text = serde_json::to_string(&record).expect("serializes");
        assert_eq!(
            text,
            r#"{"type":"version","sha256":"ab","modified":true,"at":"2026-11-21T03:00:01Z"}"#
        );
        assert_eq!(
            serde_json::from_str::<Record>(&text).expect("reads back"),
            record
        );
        let timeline = Timeline::from_records([started()]);
        assert_eq!(timeline.chronicle, Chronicle::default());
    }
}
