//! Where the process that drives a run kept in `PostgreSQL` writes it: records and log lines go
//! to the run's session without waiting; a sync waits for the one commit that makes everything
//! so far durable.

use std::collections::HashMap;
use std::sync::Arc;

use super::session::{Attached, Command};
use crate::plan::NodeId;
use crate::state::journal::Record;
use crate::state::store::{RunJournal, StoreError};

/// A run's journal and step logs in `PostgreSQL`.
pub struct PgJournal {
    session: Arc<Attached>,
    /// Lines logged since the last flush, by step.
    logs: HashMap<NodeId, Vec<u8>>,
}

impl PgJournal {
    /// The journal of the run whose session this is.
    pub fn new(session: Arc<Attached>) -> Self {
        Self {
            session,
            logs: HashMap::new(),
        }
    }
}

impl RunJournal for PgJournal {
    fn write(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        Ok(self.session.send(Command::Records(records.to_vec()))?)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(self.session.sync()?)
    }

    fn log_line(&mut self, step: &NodeId, line: &str) -> Result<(), StoreError> {
        let log = self.logs.entry(step.clone()).or_default();
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
        Ok(())
    }

    fn flush_logs(&mut self) -> Result<(), StoreError> {
        if self.logs.is_empty() {
            return Ok(());
        }
        let chunks = self
            .logs
            .drain()
            .map(|(step, bytes)| (step.as_str().to_owned(), bytes))
            .collect();
        Ok(self.session.send(Command::Logs(chunks))?)
    }
}

impl Drop for PgJournal {
    fn drop(&mut self) {
        // Lines logged and never flushed still reach the log (the session commits them as it
        // ends).
        let _ = self.flush_logs();
    }
}
