//! The append-only journal of a run: one JSON record per line, each batch made durable with one
//! `fdatasync` (group commit). A torn last line (a crash mid-write) is ignored on load; any
//! other damage is an error naming the file and line.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
        /// The version of the step hashes' canonical form (0: before it was versioned).
        #[serde(default)]
        fingerprint: u32,
        /// Who allowed it.
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

/// Appends records durably.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
}

impl JournalWriter {
    /// Opens (creating if needed) a journal for appending. A torn last line (the previous
    /// process died mid-write) is cut off first, as [`load`] ignores it: appending after it
    /// would glue the next record to it and damage a line in the middle of the journal.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        repair_tail(&mut file).map_err(io)?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Writes records and makes them durable with one `fdatasync`.
    pub fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.write(records)?;
        self.sync()
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|source| JournalError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes records without waiting for the disk ([`JournalWriter::sync`] does).
    pub fn write(&mut self, records: &[Record]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for record in records {
            // A record is plain data: serializing it cannot fail.
            serde_json::to_writer(&mut buf, record).unwrap_or_default();
            buf.push(b'\n');
        }
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buf).map_err(io)
    }
}

/// Makes the journal end with a complete line: a last line without its newline is completed
/// when it is a whole record (only the newline was lost; [`load`] accepts it), else cut off
/// (it never became durable). Reads only the tail: a torn line is at most one record long.
fn repair_tail(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last_byte = [0];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last_byte)?;
    if last_byte[0] == b'\n' {
        return Ok(());
    }
    // Where the torn line begins: just after the newline before it.
    let mut end = len;
    let cut = loop {
        let from = end.saturating_sub(8192);
        let mut chunk = vec![0; usize::try_from(end - from).unwrap_or(0)];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break from + i as u64 + 1;
        }
        if from == 0 {
            break 0;
        }
        end = from;
    };
    let mut last = vec![0; usize::try_from(len - cut).unwrap_or(0)];
    file.seek(SeekFrom::Start(cut))?;
    file.read_exact(&mut last)?;
    if serde_json::from_slice::<Record>(&last).is_ok() {
        file.write_all(b"\n")?;
    } else {
        file.set_len(cut)?;
    }
    file.sync_data()
}

/// Reads every record; a torn last line is dropped, anything else damaged is an error.
pub fn load(path: &Path) -> Result<Vec<Record>, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })?;
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let mut records = Vec::with_capacity(lines.len());
    let count = lines.len();
    for (index, raw) in lines.iter().enumerate() {
        let complete = raw.ends_with(b"\n");
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(raw) {
            Ok(record) => records.push(record),
            // The process died while writing its last line: that record never became durable.
            Err(_) if index + 1 == count && !complete => break,
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_owned(),
                    line: index + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    if let Some(Record::RunStarted { v, .. }) = records.first()
        && *v != FORMAT_VERSION
    {
        return Err(JournalError::Version {
            path: path.to_owned(),
            found: *v,
        });
    }
    Ok(records)
}

/// The current time, for records written outside the event stream.
pub fn now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(id: &str) -> Record {
        Record::StepFinished {
            id: NodeId::step(id),
            status: StepStatus::Succeeded,
            attempts: 1,
            outputs: Map::new(),
            items: Vec::new(),
            reason: None,
            duration_ms: 3,
            at: now(),
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut w = JournalWriter::open(&path).unwrap();
        w.append(&[finished("a"), finished("b")]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"type\":\"step_fin")
            .unwrap();
        let records = load(&path).unwrap();
        let ids: Vec<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::StepFinished { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn appending_after_a_torn_tail_cuts_it_off_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        JournalWriter::open(&path)
            .unwrap()
            .append(&[finished("a")])
            .unwrap();
        let whole = serde_json::to_string(&finished("b")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(whole.as_bytes())
            .unwrap();
        // Only the newline was lost: the record is kept and completed.
        JournalWriter::open(&path)
            .unwrap()
            .append(&[finished("c")])
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&whole.as_bytes()[..20])
            .unwrap();
        JournalWriter::open(&path)
            .unwrap()
            .append(&[finished("d")])
            .unwrap();
        let ids: Vec<crate::plan::NodeId> = load(&path)
            .unwrap()
            .into_iter()
            .filter_map(|r| match r {
                Record::StepFinished { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
    }

    #[test]
    fn damage_before_the_last_line_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let at = "2026-11-21T03:00:00Z";
        std::fs::write(
            &path,
            format!(
                "{{\"type\":\"paused\",\"id\":\"a\",\"at\":\"{at}\"}}\nnot json\n{{\"type\":\"paused\",\"id\":\"b\",\"at\":\"{at}\"}}\n"
            ),
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl:2:"), "{err}");
    }
}
