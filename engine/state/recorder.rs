//! The recorder: the stage between the executor and the reporter. It turns the executor's
//! events into journal records and step logs, makes each batch durable with one sync (group
//! commit), acknowledges checkpoints, then forwards every message to the reporter, so what is
//! shown and what is stored cannot disagree.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::journal::{JournalError, JournalWriter, Record};
use super::run_dir::RunDir;
use crate::exec::event::{Event, Message, Stream};
use jiff::Timestamp;

/// How long a written record may wait for a checkpoint to share its sync.
const LAZY_SYNC: std::time::Duration = std::time::Duration::from_millis(20);

/// Writes a run's journal and logs from its event stream.
pub struct Recorder {
    dir: RunDir,
    journal: JournalWriter,
    logs: HashMap<String, BufWriter<File>>,
}

impl Recorder {
    /// A recorder appending to a run folder's journal.
    pub fn open(dir: RunDir) -> Result<Self, JournalError> {
        let journal = JournalWriter::open(&dir.journal())?;
        Ok(Self {
            dir,
            journal,
            logs: HashMap::new(),
        })
    }

    /// Appends records outside the event stream (approvals), durably; an approval is noted in
    /// its step's log too.
    pub fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.journal.append(records)?;
        for record in records {
            if let Record::Approval {
                id,
                approved,
                by,
                reason,
                at,
                ..
            } = record
            {
                let line = format!(
                    "--- {at} {} by {by}{}",
                    if *approved { "approved" } else { "rejected" },
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                self.write_line(id, &line);
                if let Some(log) = self.logs.get_mut(id.as_str()) {
                    let _ = log.flush();
                }
            }
        }
        Ok(())
    }

    /// Consumes messages until the executor is done; a journal that cannot be written stops the
    /// run (no checkpoint is acknowledged that is not on disk).
    pub async fn run(
        mut self,
        mut rx: UnboundedReceiver<Message>,
        forward: UnboundedSender<Message>,
        cancel: CancellationToken,
    ) -> Result<(), JournalError> {
        let mut failure = None;
        // Records written but not yet synced. A checkpoint syncs them with itself; otherwise
        // they are synced once the stream has been quiet for `LAZY_SYNC`.
        let mut dirty = false;
        loop {
            let first = if dirty {
                let Ok(message) = tokio::time::timeout(LAZY_SYNC, rx.recv()).await else {
                    self.sync(&mut failure, &cancel);
                    dirty = false;
                    continue;
                };
                message
            } else {
                rx.recv().await
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let mut records = Vec::new();
            let mut checkpoint = false;
            for message in &batch {
                if let Message::Event(e) | Message::Checkpoint(e, _) = message {
                    self.log(&e.event, e.at);
                    if let Some(r) = to_record(&e.event, e.at) {
                        records.push(r);
                    }
                }
                checkpoint |= matches!(message, Message::Checkpoint(..));
            }
            for log in self.logs.values_mut() {
                let _ = log.flush();
            }
            if failure.is_none()
                && let Err(e) = self.journal.write(&records)
            {
                cancel.cancel();
                failure = Some(e);
            }
            dirty |= !records.is_empty();
            if checkpoint && dirty {
                self.sync(&mut failure, &cancel);
                dirty = false;
            }
            for message in batch {
                let message = match message {
                    Message::Checkpoint(event, ack) => {
                        if failure.is_none() {
                            let _ = ack.send(());
                        }
                        Message::Event(event)
                    }
                    other => other,
                };
                let _ = forward.send(message);
            }
        }
        if dirty {
            self.sync(&mut failure, &cancel);
        }
        failure.map_or(Ok(()), Err)
    }

    fn sync(&mut self, failure: &mut Option<JournalError>, cancel: &CancellationToken) {
        if failure.is_none()
            && let Err(e) = self.journal.sync()
        {
            cancel.cancel();
            *failure = Some(e);
        }
    }

    fn log(&mut self, event: &Event, at: Timestamp) {
        let (id, line) = match event {
            Event::Output { id, stream, line } => (
                id,
                if *stream == Stream::Stderr {
                    format!("! {line}")
                } else {
                    line.clone()
                },
            ),
            Event::StepStarted {
                id,
                attempt,
                description,
                ..
            } => (id, format!("--- {at} attempt {attempt}: {description}")),
            Event::Retrying {
                id, attempt, error, ..
            } => (id, format!("--- attempt {attempt} failed: {error}")),
            Event::Polling {
                id,
                attempt,
                detail,
            } => (id, format!("--- poll {attempt}: {detail}")),
            Event::StepFinished {
                id, status, reason, ..
            } => (
                id,
                format!(
                    "--- {at} {}{}",
                    status.as_str(),
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ),
            Event::Paused { id, instructions } => (
                id,
                format!("--- paused, waiting for approval:\n{instructions}"),
            ),
            _ => return,
        };
        self.write_line(id, &line);
    }

    fn write_line(&mut self, id: &str, line: &str) {
        let path = self.dir.log_of(id);
        let writer = self.logs.entry(id.to_owned()).or_insert_with(|| {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|_| {
                    // The logs folder exists from run creation; if it vanished, fall back to /dev/null.
                    File::create("/dev/null").expect("/dev/null can always be opened")
                });
            BufWriter::new(file)
        });
        let _ = writeln!(writer, "{line}");
    }
}

/// The journal record an event that happened at `at` becomes, if any.
fn to_record(event: &Event, at: Timestamp) -> Option<Record> {
    match event {
        Event::StepStarted { id, attempt, .. } => Some(Record::StepStarted {
            id: id.clone(),
            attempt: *attempt,
            at,
        }),
        Event::StepFinished {
            id,
            status,
            attempts,
            duration,
            outputs,
            items,
            reason,
        } => Some(Record::StepFinished {
            id: id.clone(),
            status: *status,
            attempts: *attempts,
            outputs: outputs.clone(),
            items: items.clone(),
            reason: reason.clone(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            at,
        }),
        Event::ProcessStarted { id, pgid } => Some(Record::ProcessStarted {
            id: id.clone(),
            pgid: *pgid,
            at,
        }),
        Event::Paused { id, .. } => Some(Record::Paused { id: id.clone(), at }),
        Event::RunFinished { status, .. } => Some(Record::RunFinished {
            status: *status,
            at,
        }),
        _ => None,
    }
}
