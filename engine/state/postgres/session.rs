//! The session of a run this process drives: one connection, which holds the run's lock, and a
//! task on the database thread that owns it. The journal hands it records and log chunks
//! without waiting; a sync commits everything pending in one statement (one round trip), so
//! the records of steps that finished share the commit of the next step's start. Logs alone
//! are committed within [`LOG_DELAY`], so that `logs --follow` on another machine sees them.
//!
//! Every commit is fenced by the lease's epoch. When the connection breaks (the server
//! restarted, an administrator ended the session, the network went away, a statement took
//! longer than [`STATEMENT_LIMIT`]), syncs wait while the session reconnects and takes the
//! lock again, for at most the store's patience; it goes on only if nobody drove the run in
//! between (same epoch), and a commit that may or may not have landed is written again
//! harmlessly (rows are keyed by sequence and offset). A session that cannot get back, or
//! finds that another process took the run, is lost: its token is cancelled, so the run
//! stops at once, and every sync after fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use super::connect::{Dialer, within};
use super::error::{PgError, connection_lost};
use super::lock::{self, LOCK_SPACE, LOCKS};
use super::summary::Summary;
use super::worker::{self, Worker};
use crate::state::journal::Record;
use crate::state::store::Holder;

/// How often an idle session checks that its connection (and so its lock) is still there.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A statement that takes longer counts as a lost connection.
const STATEMENT_LIMIT: Duration = Duration::from_secs(10);

/// How long logged lines may wait for a commit to share.
const LOG_DELAY: Duration = Duration::from_millis(100);

/// The largest log chunk stored in one row.
const CHUNK: usize = 256 * 1024;

/// One commit: the fence (run key and lease epoch), the records, the log chunks, the summary.
const COMMIT: &str = "
WITH fence AS (
    SELECT key FROM runbook.runs WHERE key = $1 AND lease_epoch = $2
), records AS (
    INSERT INTO runbook.records (run, seq, record)
    SELECT fence.key, r.seq, r.record::json
    FROM fence, unnest($3::bigint[], $4::text[]) AS r (seq, record)
    ON CONFLICT (run, seq) DO NOTHING
), logs AS (
    INSERT INTO runbook.logs (run, step, start, bytes)
    SELECT fence.key, l.step, l.start, l.bytes
    FROM fence, unnest($5::text[], $6::bigint[], $7::bytea[]) AS l (step, start, bytes)
    ON CONFLICT (run, step, start) DO NOTHING
)
UPDATE runbook.runs SET ended = $8, finished_at = $9, updated_at = now()
WHERE key = $1 AND lease_epoch = $2";

/// Pending log bytes as rows: (step, start, bytes), at most [`CHUNK`] bytes each (the same
/// rows every time, so a commit written again lands on the same keys).
fn chunks(logs: &HashMap<String, (i64, Vec<u8>)>) -> (Vec<&str>, Vec<i64>, Vec<&[u8]>) {
    let mut rows = (Vec::new(), Vec::new(), Vec::new());
    for (step, (start, bytes)) in logs {
        let mut offset = *start;
        for piece in bytes.chunks(CHUNK) {
            rows.0.push(step.as_str());
            rows.1.push(offset);
            rows.2.push(piece);
            offset += i64::try_from(piece.len()).unwrap_or(i64::MAX);
        }
    }
    rows
}

/// What the journal asks of the session.
pub enum Command {
    /// Records to commit, in order.
    Records(Vec<Record>),
    /// Bytes to add to steps' logs, by step id.
    Logs(Vec<(String, Vec<u8>)>),
    /// Commit everything so far; answer when it is.
    Sync(SyncSender<Result<(), PgError>>),
    /// Commit what is pending, release the lock, end; answer when done.
    Close(SyncSender<()>),
}

/// The way to the session of a run this process drives; the session ends (and the lock is
/// released) when it is dropped.
pub struct Attached {
    tx: UnboundedSender<Command>,
    lost: CancellationToken,
    run_id: String,
    /// Keeps the database thread alive while the session is.
    _worker: Arc<Worker>,
}

impl Attached {
    /// Hands the session a command.
    pub fn send(&self, command: Command) -> Result<(), PgError> {
        self.tx.send(command).map_err(|_| PgError::Released {
            run_id: self.run_id.clone(),
        })
    }

    /// Waits until everything handed over so far is committed.
    pub fn sync(&self) -> Result<(), PgError> {
        let (reply, answer) = sync_channel(1);
        self.send(Command::Sync(reply))?;
        worker::wait(&answer).unwrap_or_else(|| {
            Err(PgError::Released {
                run_id: self.run_id.clone(),
            })
        })
    }

    /// Cancelled when the session is lost: the run must stop.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let (reply, done) = sync_channel(1);
        if self.tx.send(Command::Close(reply)).is_ok() {
            let _ = worker::wait(&done);
        }
    }
}

/// Why a session stopped taking records.
enum Failure {
    /// It could not get back to the database within its patience.
    Unreachable(Arc<PgError>),
    /// Another process took the run while it was away.
    TakenOver(Holder),
    /// The server refused a commit.
    Refused(Arc<PgError>),
}

/// A session's connection.
struct Connection {
    client: Client,
    commit: Statement,
    /// Its backend's pid (what `pg_locks` and the run's row name).
    backend: i32,
}

/// Where a run's journal stands when a session starts.
pub struct Position {
    /// The run's key.
    pub key: i32,
    /// The lease's epoch.
    pub epoch: i64,
    /// The next record's sequence number.
    pub next_seq: i64,
    /// The run's summary so far.
    pub summary: Summary,
    /// How long each step's log is.
    pub log_ends: HashMap<String, i64>,
}

/// The task that owns a session.
struct Session {
    dialer: Dialer,
    run_id: String,
    patience: Duration,
    position: Position,
    connection: Option<Connection>,
    /// The backend of the last connection: if the server has not noticed it is gone, it still
    /// holds the lock, and the session ends it to take the lock back.
    last_backend: i32,
    /// Records not yet committed: (sequence, JSON).
    records: Vec<(i64, String)>,
    /// Log bytes not yet committed, by step: (offset of the first byte, bytes).
    logs: HashMap<String, (i64, Vec<u8>)>,
    log_due: Option<Instant>,
    last_contact: Instant,
    failure: Option<Failure>,
    lost: CancellationToken,
}

/// Starts the session of a run whose lock `client` holds (on the database thread).
pub fn start(
    dialer: Dialer,
    worker: Arc<Worker>,
    run_id: &str,
    client: Client,
    backend: i32,
    position: Position,
    patience: Duration,
) -> impl Future<Output = Result<Attached, PgError>> + Send + 'static {
    let run_id = run_id.to_owned();
    async move {
        let commit = prepare(&client, dialer.store()).await?;
        let (tx, rx) = unbounded_channel();
        let lost = CancellationToken::new();
        let session = Session {
            dialer,
            run_id: run_id.clone(),
            patience,
            position,
            connection: Some(Connection {
                client,
                commit,
                backend,
            }),
            last_backend: backend,
            records: Vec::new(),
            logs: HashMap::new(),
            log_due: None,
            last_contact: Instant::now(),
            failure: None,
            lost: lost.clone(),
        };
        tokio::spawn(session.serve(rx));
        Ok(Attached {
            tx,
            lost,
            run_id,
            _worker: worker,
        })
    }
}

async fn prepare(client: &Client, store: &str) -> Result<Statement, PgError> {
    client
        .prepare(COMMIT)
        .await
        .map_err(|source| PgError::Query {
            store: store.to_owned(),
            what: "prepare the journal's commit",
            source,
        })
}

impl Session {
    fn store(&self) -> &str {
        self.dialer.store()
    }

    async fn serve(mut self, mut rx: UnboundedReceiver<Command>) {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let log_due = self.log_due;
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else {
                        self.close().await;
                        return;
                    };
                    let mut waiting = Vec::new();
                    let mut closing = None;
                    self.accept(command, &mut waiting, &mut closing);
                    // What else is queued shares this commit.
                    while let Ok(more) = rx.try_recv() {
                        self.accept(more, &mut waiting, &mut closing);
                    }
                    if !waiting.is_empty() {
                        self.commit().await;
                        for reply in waiting {
                            let _ = reply.send(self.outcome());
                        }
                    }
                    if let Some(done) = closing {
                        self.close().await;
                        let _ = done.send(());
                        return;
                    }
                }
                _ = beat.tick() => self.heartbeat().await,
                () = tokio::time::sleep_until(log_due.unwrap_or_else(Instant::now)), if log_due.is_some() => {
                    self.commit().await;
                }
            }
        }
    }

    fn accept(
        &mut self,
        command: Command,
        waiting: &mut Vec<SyncSender<Result<(), PgError>>>,
        closing: &mut Option<SyncSender<()>>,
    ) {
        match command {
            Command::Records(records) => {
                for record in records {
                    self.position.summary.apply(&record);
                    // A record is plain data: serializing it cannot fail.
                    let json = serde_json::to_string(&record).unwrap_or_default();
                    self.records.push((self.position.next_seq, json));
                    self.position.next_seq += 1;
                }
            }
            Command::Logs(chunks) => {
                for (step, bytes) in chunks {
                    let end = self.position.log_ends.entry(step.clone()).or_insert(0);
                    let pending = self.logs.entry(step).or_insert((*end, Vec::new()));
                    pending.1.extend_from_slice(&bytes);
                    *end += i64::try_from(bytes.len()).unwrap_or(i64::MAX);
                }
                self.log_due
                    .get_or_insert_with(|| Instant::now() + LOG_DELAY);
            }
            Command::Sync(reply) => waiting.push(reply),
            Command::Close(reply) => *closing = Some(reply),
        }
    }

    /// How the session stands: fine, or why it takes no more.
    fn outcome(&self) -> Result<(), PgError> {
        let store = self.store().to_owned();
        let run_id = self.run_id.clone();
        match &self.failure {
            None => Ok(()),
            Some(Failure::Unreachable(last)) => Err(PgError::Unreachable {
                store,
                run_id,
                waited: self.patience,
                last: last.clone(),
            }),
            Some(Failure::TakenOver(holder)) => Err(PgError::TakenOver {
                store,
                run_id,
                holder: Box::new(holder.clone()),
            }),
            Some(Failure::Refused(cause)) => Err(PgError::Broken {
                store,
                run_id,
                cause: cause.clone(),
            }),
        }
    }

    fn lose(&mut self, failure: Failure) {
        self.failure = Some(failure);
        self.lost.cancel();
    }

    /// Commits everything pending, reconnecting as needed.
    async fn commit(&mut self) {
        self.log_due = None;
        if self.failure.is_some() || (self.records.is_empty() && self.logs.is_empty()) {
            return;
        }
        let pending_records = std::mem::take(&mut self.records);
        let pending_logs = std::mem::take(&mut self.logs);
        let (steps, starts, chunks) = chunks(&pending_logs);
        let (seqs, records): (Vec<i64>, Vec<&str>) = pending_records
            .iter()
            .map(|(s, r)| (*s, r.as_str()))
            .unzip();
        let ended = self.position.summary.ended_text();
        let finished = self.position.summary.finished_at;
        loop {
            let Some(connection) = &self.connection else {
                if self.recover().await {
                    continue;
                }
                return;
            };
            let sent = tokio::time::timeout(
                STATEMENT_LIMIT,
                connection.client.execute(
                    &connection.commit,
                    &[
                        &self.position.key,
                        &self.position.epoch,
                        &seqs,
                        &records,
                        &steps,
                        &starts,
                        &chunks,
                        &ended,
                        &finished,
                    ],
                ),
            )
            .await;
            match sent {
                Ok(Ok(1)) => break,
                Ok(Ok(_)) => {
                    // The fence held: the epoch moved on, another process drives the run.
                    let holder = self.driver().await;
                    self.lose(Failure::TakenOver(holder));
                    return;
                }
                Ok(Err(source)) if !connection_lost(&source) => {
                    let refused = PgError::Query {
                        store: self.store().to_owned(),
                        what: "commit the journal",
                        source,
                    };
                    self.lose(Failure::Refused(Arc::new(refused)));
                    return;
                }
                Ok(Err(_)) | Err(_) => self.drop_connection(),
            }
        }
        self.last_contact = Instant::now();
    }

    /// An idle session checks its connection (and so its lock).
    async fn heartbeat(&mut self) {
        if self.failure.is_some() || self.last_contact.elapsed() < HEARTBEAT {
            return;
        }
        let alive = match &self.connection {
            Some(connection) => matches!(
                tokio::time::timeout(STATEMENT_LIMIT, connection.client.simple_query("SELECT 1"))
                    .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        if alive {
            self.last_contact = Instant::now();
        } else {
            self.drop_connection();
            self.recover().await;
        }
    }

    fn drop_connection(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.last_backend = connection.backend;
        }
    }

    /// Gets the connection and the lock back, for at most the session's patience; `false` when
    /// the session is lost.
    async fn recover(&mut self) -> bool {
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_millis(50);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let store = self.store().to_owned();
            let last = match within(left, &store, "reconnect", self.reattach()).await {
                Ok(Ok(connection)) => {
                    self.connection = Some(connection);
                    self.last_contact = Instant::now();
                    return true;
                }
                Ok(Err(holder)) => {
                    self.lose(Failure::TakenOver(holder));
                    return false;
                }
                Err(e) => e,
            };
            if Instant::now() + pause >= deadline {
                self.lose(Failure::Unreachable(Arc::new(last)));
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// One attempt to get the connection and the lock back: `Ok(Err(holder))` when another
    /// process took the run meanwhile.
    async fn reattach(&self) -> Result<Result<Connection, Holder>, PgError> {
        let store = self.store();
        let failed = |what| {
            move |source| PgError::Query {
                store: store.to_owned(),
                what,
                source,
            }
        };
        let client = self.dialer.connect_session().await?;
        let key = self.position.key;
        while !lock::try_lock(&client, store, key).await? {
            let holding: Option<i32> = client
                .query_opt(
                    &format!("SELECT l.pid FROM pg_locks l WHERE {LOCKS} AND l.objid = $1::oid"),
                    &[&i64::from(key)],
                )
                .await
                .map_err(failed("read who holds the run's lock"))?
                .map(|row| row.get(0));
            match holding {
                // This process's previous session, which the server has not seen die.
                Some(backend) if backend == self.last_backend => {
                    client
                        .execute("SELECT pg_terminate_backend($1)", &[&backend])
                        .await
                        .map_err(failed("end this process's previous session"))?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(_) => return Ok(Err(self.driver_on(&client).await)),
                None => {}
            }
        }
        let row = client
            .query_opt(
                "UPDATE runbook.runs SET holder_backend = pg_backend_pid()
                 WHERE key = $1 AND lease_epoch = $2 RETURNING holder_backend",
                &[&key, &self.position.epoch],
            )
            .await
            .map_err(failed("take the run back"))?;
        // No row: the epoch moved on; someone drove the run while this process was away.
        let Some(row) = row else {
            return Ok(Err(self.driver_on(&client).await));
        };
        let backend = row.get(0);
        let commit = prepare(&client, store).await?;
        Ok(Ok(Connection {
            client,
            commit,
            backend,
        }))
    }

    /// Who drives (or last drove) the run, as its row says.
    async fn driver(&self) -> Holder {
        match &self.connection {
            Some(connection) => self.driver_on(&connection.client).await,
            None => Holder::unnamed(),
        }
    }

    async fn driver_on(&self, client: &Client) -> Holder {
        let row = client
            .query_opt(
                "SELECT holder_pid, holder_user, holder_host, holder_since
                 FROM runbook.runs WHERE key = $1",
                &[&self.position.key],
            )
            .await;
        match row {
            Ok(Some(row)) => Holder {
                pid: row
                    .get::<_, Option<i64>>(0)
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
                user: row.get(1),
                host: row.get(2),
                since: row.get::<_, Option<Timestamp>>(3),
            },
            _ => Holder::unnamed(),
        }
    }

    /// Commits what is pending and releases the lock (so that a process that takes the run
    /// next, even this one, never finds it still held).
    async fn close(&mut self) {
        self.commit().await;
        if let Some(connection) = self.connection.take() {
            let _ = tokio::time::timeout(
                STATEMENT_LIMIT,
                connection.client.execute(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&LOCK_SPACE, &self.position.key],
                ),
            )
            .await;
        }
    }
}
