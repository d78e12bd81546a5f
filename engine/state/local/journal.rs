//! A run folder's journal file: one JSON record per line, each batch made durable with one
//! `fdatasync` (group commit). A torn last line (a crash mid-write) is ignored on load and cut
//! off before the next append; any other damage is an error naming the file and line.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::state::journal::{FORMAT_VERSION, JournalError, Record};

/// Appends records durably.
#[derive(Debug)]
pub struct JournalFile {
    file: File,
    path: PathBuf,
}

impl JournalFile {
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

    /// Makes everything written so far durable, and makes sure it is still the run's journal:
    /// a file deleted while open takes writes and syncs without an error, and keeps them nowhere.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.sync_data().map_err(io)?;
        if std::os::unix::fs::MetadataExt::nlink(&self.file.metadata().map_err(io)?) == 0 {
            return Err(JournalError::Deleted {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Writes records without waiting for the disk ([`JournalFile::sync`] does).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::StepStatus;
    use crate::plan::NodeId;
    use serde_json::Map;

    fn finished(id: &str) -> Record {
        Record::StepFinished {
            id: NodeId::step(id),
            status: StepStatus::Succeeded,
            attempts: 1,
            outputs: Map::new(),
            items: Vec::new(),
            reason: None,
            log_lost: None,
            duration_ms: 3,
            at: crate::state::journal::now(),
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut w = JournalFile::open(&path).unwrap();
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
        JournalFile::open(&path)
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
        JournalFile::open(&path)
            .unwrap()
            .append(&[finished("c")])
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&whole.as_bytes()[..20])
            .unwrap();
        JournalFile::open(&path)
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
