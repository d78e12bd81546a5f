//! The recorder: the stage between the executor and the reporter. It turns the executor's
//! events into journal records and step logs, makes each batch durable with one sync (group
//! commit), acknowledges checkpoints, then forwards every message to the reporter, so what is
//! shown and what is stored cannot disagree.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::journal::Record;
use super::store::{RunJournal, StoreError};
use crate::exec::StepStatus;
use crate::exec::event::{Event, Message, Stream};
use crate::plan::NodeId;

/// How long a written record may wait for a checkpoint to share its sync.
const LAZY_SYNC: std::time::Duration = std::time::Duration::from_millis(20);

/// Writes a run's journal and logs from its event stream.
pub struct Recorder {
    journal: Box<dyn RunJournal>,
    /// First attempts that have not logged anything yet, with their start's line. A step that
    /// ends without printing anything gets no log at all: its start and end are in the journal
    /// (the start with the command), where `runbook logs` reads them, and creating a file per
    /// step is most of what a short step costs on a busy file system.
    quiet: HashMap<NodeId, String>,
    /// Steps whose log has lines from this process since they last ended.
    open: HashSet<NodeId>,
}

impl Recorder {
    /// A recorder writing to a run's journal (whose lease this process holds).
    pub fn new(journal: Box<dyn RunJournal>) -> Self {
        Self {
            journal,
            quiet: HashMap::new(),
            open: HashSet::new(),
        }
    }

    /// Appends records outside the event stream (a resume's first records), durably.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.journal.append(records)
    }

    /// Consumes messages until the executor is done; a journal that cannot be written stops the
    /// run (no checkpoint is acknowledged that is not on disk).
    pub async fn run(
        mut self,
        mut rx: UnboundedReceiver<Message>,
        forward: UnboundedSender<Message>,
        cancel: CancellationToken,
    ) -> Result<(), StoreError> {
        let mut failure = None;
        // Records written but not yet synced. A checkpoint syncs them with itself; otherwise
        // they are synced once the stream has been quiet for `LAZY_SYNC`.
        let mut dirty = false;
        loop {
            let first = if dirty {
                let Ok(message) = tokio::time::timeout(LAZY_SYNC, rx.recv()).await else {
                    off_the_executor(|| self.sync(&mut failure, &cancel));
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
            // The log lines of the batch up to its last step end are written first: a step's log
            // is closed before its end is journaled, so that the record can say the log lost
            // lines. The rest wait until the checkpoints are acknowledged.
            let early = batch
                .iter()
                .rposition(|m| {
                    matches!(m, Message::Event(e) if matches!(e.event, Event::StepFinished { .. }))
                })
                .map_or(0, |i| i + 1);
            // At most one hand-over of the executor's worker for the batch's early logs, its
            // records and their sync (none when nothing in it can wait for the disk).
            let sync_now = off_the_executor_if(slow(&batch), || {
                self.log_all(&batch[..early]);
                let mut records = Vec::new();
                let mut checkpoint = false;
                for message in &batch {
                    if let Message::Event(e) | Message::Checkpoint(e, _) = message
                        && let Some(mut r) = to_record(&e.event, e.at)
                    {
                        if let Record::StepFinished { id, log_lost, .. } = &mut r {
                            *log_lost = self.journal.log_failure(id);
                        }
                        records.push(r);
                    }
                    checkpoint |= matches!(message, Message::Checkpoint(..));
                }
                dirty |= !records.is_empty();
                let sync_now = checkpoint && dirty;
                if failure.is_none()
                    && let Err(e) = self.journal.write(&records)
                {
                    cancel.cancel();
                    failure = Some(e);
                }
                if sync_now {
                    self.sync(&mut failure, &cancel);
                }
                sync_now
            });
            dirty &= !sync_now;
            // Checkpoints are acknowledged as soon as they are durable: a step waiting to start
            // does not wait for the logs.
            let batch: Vec<Message> = batch
                .into_iter()
                .map(|message| match message {
                    Message::Checkpoint(event, ack) => {
                        if failure.is_none() {
                            let _ = ack.send(());
                        }
                        Message::Event(event)
                    }
                    other => other,
                })
                .collect();
            off_the_executor_if(slow(&batch[early..]), || {
                self.log_all(&batch[early..]);
                self.flush_logs();
            });
            for message in batch {
                let _ = forward.send(message);
            }
        }
        if dirty {
            self.sync(&mut failure, &cancel);
        }
        failure.map_or(Ok(()), Err)
    }

    fn log_all(&mut self, messages: &[Message]) {
        for message in messages {
            if let Message::Event(e) | Message::Checkpoint(e, _) = message {
                self.log(&e.event, e.at);
            }
        }
    }

    fn sync(&mut self, failure: &mut Option<StoreError>, cancel: &CancellationToken) {
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
            } => (id, start_line(at, *attempt, description)),
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
            } => (id, end_line(at, *status, reason.as_deref())),
            Event::StepInterrupted { id, .. } => (
                id,
                format!("--- {at} interrupted: its processes were stopped"),
            ),
            Event::Paused {
                id,
                instructions,
                waits_for,
                ..
            } => (
                id,
                format!("--- paused, waiting for {waits_for}:\n{instructions}"),
            ),
            Event::Decided {
                id,
                approved,
                by,
                via,
                reason,
                inputs,
                ..
            } => (
                id,
                format!(
                    "--- {at} {} by {by} {}{}{}",
                    if *approved { "approved" } else { "rejected" },
                    via.describe(*approved),
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default(),
                    if inputs.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", serde_json::Value::Object(inputs.clone()))
                    }
                ),
            ),
            Event::Waited { id, waited } => (
                id,
                format!(
                    "--- waited {} for a person",
                    crate::spec::duration::Human(*waited)
                ),
            ),
            _ => return,
        };
        let ends = matches!(
            event,
            Event::StepFinished { .. } | Event::StepInterrupted { .. }
        );
        match event {
            Event::StepStarted { attempt: 1, .. } if !self.open.contains(id) => {
                self.quiet.insert(id.clone(), line);
                return;
            }
            // It printed nothing: the journal says all its log would.
            Event::StepFinished { .. } if self.quiet.remove(id).is_some() => return,
            _ => {}
        }
        if let Some(start) = self.quiet.remove(id) {
            self.write_line(id, &start);
        }
        self.write_line(id, &line);
        if ends {
            self.journal.end_log(id);
            self.open.remove(id);
        } else {
            self.open.insert(id.clone());
        }
    }

    /// Logs are what people read; the journal is what a resume relies on: a log line that
    /// cannot be written does not stop the run.
    fn write_line(&mut self, id: &NodeId, line: &str) {
        let _ = self.journal.log_line(id, line);
    }

    fn flush_logs(&mut self) {
        let _ = self.journal.flush_logs();
    }
}

/// The first line of an attempt's log.
pub fn start_line(at: Timestamp, attempt: u32, description: &str) -> String {
    format!("--- {at} attempt {attempt}: {description}")
}

/// The last line of a finished step's log.
pub fn end_line(at: Timestamp, status: StepStatus, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("--- {at} {}: {reason}", status.as_str()),
        None => format!("--- {at} {}", status.as_str()),
    }
}

/// The journal record an event that happened at `at` becomes, if any.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per event that is recorded, each its record: it reads best whole"
)]
fn to_record(event: &Event, at: Timestamp) -> Option<Record> {
    match event {
        Event::StepStarted {
            id,
            attempt,
            description,
            ..
        } => Some(Record::StepStarted {
            id: id.clone(),
            attempt: *attempt,
            description: Some(description.clone()),
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
            log_lost: None,
            duration_ms: millis(*duration),
            at,
        }),
        Event::ProcessStarted { id, pgid } => Some(Record::ProcessStarted {
            id: id.clone(),
            pgid: *pgid,
            at,
        }),
        Event::Retrying {
            id,
            attempt,
            error,
            delay,
        } => Some(Record::Retrying {
            id: id.clone(),
            attempt: *attempt,
            error: error.clone(),
            delay_ms: millis(*delay),
            at,
        }),
        Event::Delaying { id, delay } => Some(Record::Delayed {
            id: id.clone(),
            delay_ms: millis(*delay),
            at,
        }),
        Event::BatchStarted {
            id,
            batch,
            of,
            items,
        } => Some(Record::BatchStarted {
            id: id.clone(),
            batch: *batch,
            of: *of,
            items: items.clone(),
            at,
        }),
        Event::GateStarted { id, batch, .. } => Some(Record::GateStarted {
            id: id.clone(),
            batch: *batch,
            at,
        }),
        Event::GateEnded {
            id,
            batch,
            held,
            detail,
        } => Some(Record::GateEnded {
            id: id.clone(),
            batch: *batch,
            held: *held,
            detail: detail.clone(),
            at,
        }),
        Event::Paused { id, .. } => Some(Record::Paused { id: id.clone(), at }),
        Event::Decided {
            id,
            approved,
            by,
            host,
            via,
            reason,
            inputs,
        } => Some(Record::Approval {
            id: id.clone(),
            approved: *approved,
            by: by.clone(),
            host: host.clone(),
            reason: reason.clone(),
            how: Some(*via),
            inputs: inputs.clone(),
            at,
        }),
        Event::Waited { id, waited } => Some(Record::Waited {
            id: id.clone(),
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            at,
        }),
        Event::Notified {
            on,
            url,
            status,
            error,
        } => Some(Record::Notified {
            on: *on,
            url: url.clone(),
            status: *status,
            error: error.clone(),
            at,
        }),
        Event::RunFinished { status, .. } => Some(Record::RunFinished {
            status: *status,
            at,
        }),
        _ => None,
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Whether handling messages may wait for the disk: a sync, or output lines (which may create
/// a log file). Writing a record or closing a log does not, and is cheaper done in place than
/// handing the executor's worker over.
fn slow(messages: &[Message]) -> bool {
    messages.iter().any(|m| {
        matches!(m, Message::Checkpoint(..))
            || matches!(m, Message::Event(e) if matches!(e.event, Event::Output { .. }))
    })
}

/// [`off_the_executor`] when `slow`, else the work in place.
fn off_the_executor_if<R>(slow: bool, work: impl FnOnce() -> R) -> R {
    if slow { off_the_executor(work) } else { work() }
}

/// Runs blocking file work (fsync, creating logs) without holding up the steps' tasks: on a
/// multi-threaded runtime the worker hands its other tasks over while it blocks.
fn off_the_executor<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
