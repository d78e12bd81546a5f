//! Where the process that drives a run folder writes it: the journal file, and one log file per
//! step (opened on first use, appended to).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};

use super::journal::JournalFile;
use super::run_dir::{RunDir, io_error};
use crate::plan::NodeId;
use crate::state::journal::Record;
use crate::state::store::{RunJournal, StoreError};

/// A run folder's journal and step logs.
#[derive(Debug)]
pub struct FolderJournal {
    dir: RunDir,
    journal: JournalFile,
    /// The logs of steps that have not ended; `None` for a log that could not be opened (its
    /// lines are dropped: the journal, not the logs, is what a resume relies on). A step's log
    /// is closed when it ends, so that a long run holds as many as run at once.
    logs: HashMap<NodeId, Option<BufWriter<File>>>,
    /// Logs written since they were last flushed.
    unflushed: Vec<NodeId>,
    /// Steps whose log lost lines, and the first reason.
    failures: HashMap<NodeId, String>,
}

impl FolderJournal {
    /// Opens a run folder's journal for appending.
    pub fn open(dir: RunDir) -> Result<Self, StoreError> {
        let journal = JournalFile::open(&dir.journal())?;
        Ok(Self {
            dir,
            journal,
            logs: HashMap::new(),
            unflushed: Vec::new(),
            failures: HashMap::new(),
        })
    }
}

impl RunJournal for FolderJournal {
    fn write(&mut self, records: &[Record]) -> Result<(), StoreError> {
        Ok(self.journal.write(records)?)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(self.journal.sync()?)
    }

    fn log_line(&mut self, step: &NodeId, line: &str) -> Result<(), StoreError> {
        if !self.logs.contains_key(step) {
            let path = self.dir.log_of(step);
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(file) => {
                    self.logs.insert(step.clone(), Some(BufWriter::new(file)));
                }
                Err(e) => {
                    self.logs.insert(step.clone(), None);
                    let err = io_error(&path)(e);
                    self.fail(step, &err);
                    return Err(err);
                }
            }
        }
        let Some(Some(log)) = self.logs.get_mut(step) else {
            return Ok(());
        };
        if log.buffer().is_empty() {
            self.unflushed.push(step.clone());
        }
        let written = writeln!(log, "{line}").map_err(|e| io_error(&self.dir.log_of(step))(e));
        if let Err(err) = &written {
            self.fail(step, err);
        }
        written
    }

    fn flush_logs(&mut self) -> Result<(), StoreError> {
        let mut failure = None;
        for step in std::mem::take(&mut self.unflushed) {
            if let Some(Some(log)) = self.logs.get_mut(&step)
                && let Err(e) = log.flush()
            {
                let err = io_error(&self.dir.log_of(&step))(e);
                self.fail(&step, &err);
                failure.get_or_insert(err);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn end_log(&mut self, step: &NodeId) {
        if let Some(Some(mut log)) = self.logs.remove(step) {
            // Flushed now, so a failure is not lost; a later line opens the file again.
            if let Err(e) = log.flush() {
                let err = io_error(&self.dir.log_of(step))(e);
                self.fail(step, &err);
            }
        }
        self.unflushed.retain(|s| s != step);
    }

    fn log_failure(&mut self, step: &NodeId) -> Option<String> {
        self.failures.remove(step)
    }
}

impl FolderJournal {
    /// Keeps the first reason a step's log lost lines: the path and the OS's reason.
    fn fail(&mut self, step: &NodeId, err: &StoreError) {
        self.failures
            .entry(step.clone())
            .or_insert_with(|| crate::state::store::with_reasons(err));
    }
}
