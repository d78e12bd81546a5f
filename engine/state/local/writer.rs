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
    /// Open step logs; `None` for a log that could not be opened (its lines are dropped: the
    /// journal, not the logs, is what a resume relies on).
    logs: HashMap<NodeId, Option<BufWriter<File>>>,
}

impl FolderJournal {
    /// Opens a run folder's journal for appending.
    pub fn open(dir: RunDir) -> Result<Self, StoreError> {
        let journal = JournalFile::open(&dir.journal())?;
        Ok(Self {
            dir,
            journal,
            logs: HashMap::new(),
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
                    return Err(io_error(&path)(e));
                }
            }
        }
        match self.logs.get_mut(step) {
            Some(Some(log)) => writeln!(log, "{line}").map_err(io_error(&self.dir.log_of(step))),
            _ => Ok(()),
        }
    }

    fn flush_logs(&mut self) -> Result<(), StoreError> {
        for (step, writer) in &mut self.logs {
            if let Some(w) = writer {
                w.flush().map_err(io_error(&self.dir.log_of(step)))?;
            }
        }
        Ok(())
    }
}
