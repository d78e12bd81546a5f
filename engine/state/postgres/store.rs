//! Runs kept in `PostgreSQL` (`--state postgres://…`, `RUNBOOK_STATE`), shared by everyone who
//! reaches the database: the same runs, records, logs and leases as the run folder, in tables
//! ([`super::schema`]); one session per driven run ([`super::session`]), one shared connection
//! for reading; every connection on the database thread ([`super::worker`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_postgres::{Client, Row};

use super::connect::{Dialer, Reader, within};
use super::error::PgError;
use super::journal::PgJournal;
use super::lock::{self, LOCK_SPACE, LOCKS};
use super::open::{self, Creation};
use super::session::{self, Attached};
use super::summary::parse_status;
use super::target::Target;
use super::tls;
use super::worker::Worker;
use crate::exec::RunStatus;
use crate::plan::NodeId;
use crate::state::journal::{FORMAT_VERSION, Record};
use crate::state::runbook_copy::{RunbookCopy, RunbookFile};
use crate::state::store::{Holder, Lease, Listed, LogChunk, NewRun, RunJournal, Store, StoreError};
use crate::state::timeline::RunSummary;

/// How long a run may wait for a database that went away before it stops (interrupted).
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(30);

/// A read that takes longer fails.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// Runs kept in a `PostgreSQL` database.
pub struct PgStore {
    dialer: Dialer,
    reader: Arc<Reader>,
    worker: Arc<Worker>,
    patience: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.dialer.store())
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

/// The lease of a run kept in `PostgreSQL`: its session.
struct PgLease(Arc<Attached>);

impl PgStore {
    /// The database a `postgres://` URL names. Nothing is connected yet: the first use
    /// connects, and creates or migrates runbook's tables when needed.
    pub fn open(url: &str) -> Result<Self, PgError> {
        let target = Target::parse(url)?;
        let tls = tls::connector(&target)?;
        let worker = Arc::new(Worker::start(&target.display)?);
        let dialer = Dialer {
            target: Arc::new(target),
            tls,
        };
        Ok(Self {
            reader: Arc::new(Reader::new(dialer.clone())),
            dialer,
            worker,
            patience: DEFAULT_PATIENCE,
        })
    }

    /// How long a run waits for the database to come back before it stops as interrupted.
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The database, as it may be shown (no password).
    pub fn name(&self) -> &str {
        self.dialer.store()
    }

    /// Runs `query` on the reading connection (connecting first when needed); a connection
    /// that broke is opened again and the query tried once more.
    fn read<T, F, Fut>(&self, what: &'static str, query: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: Fn(Arc<Client>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Fault>> + Send,
    {
        let reader = self.reader.clone();
        let store = self.name().to_owned();
        self.worker.call(async move {
            let mut tried = false;
            loop {
                let attempt = within(READ_LIMIT, &store, what, async {
                    let client = reader.client().await?;
                    query(client).await.map_err(|fault| match fault {
                        Fault::Sql(source) => PgError::Query {
                            store: store.clone(),
                            what,
                            source,
                        },
                        Fault::Store(e) => e,
                    })
                })
                .await;
                match attempt {
                    Err(e) if e.transient() && !tried => {
                        tried = true;
                        reader.reset().await;
                    }
                    other => return other,
                }
            }
        })
    }

    fn missing(&self, run_id: &str) -> StoreError {
        StoreError::Missing {
            id: run_id.to_owned(),
            store: self.name().to_owned(),
        }
    }

    fn damaged(&self, what: String, reason: &dyn std::fmt::Display) -> StoreError {
        StoreError::from(PgError::Damaged {
            store: self.name().to_owned(),
            what,
            reason: reason.to_string(),
        })
    }

    /// Makes sure the tables are ready before a session needs them.
    fn ready(&self) -> Result<(), PgError> {
        self.read("make runbook's tables ready", |_client| async { Ok(()) })
    }

    fn lease(run_id: &str, holder: Holder, session: Attached) -> Lease {
        let session = Arc::new(session);
        let lost = session.lost().clone();
        Lease::new(run_id, holder, PgLease(session)).losable(lost)
    }
}

impl Store for PgStore {
    fn create(&self, run: &NewRun<'_>) -> Result<Lease, StoreError> {
        if !crate::state::local::run_dir::valid_id(run.run_id) {
            return Err(StoreError::BadId(run.run_id.to_owned()));
        }
        self.ready()?;
        let creation = Creation::of(run);
        let me = Holder::this_process();
        let (dialer, worker, patience) = (self.dialer.clone(), self.worker.clone(), self.patience);
        let holder = me.clone();
        let run_id = run.run_id.to_owned();
        let session = self.worker.call(async move {
            let opened = open::create(&dialer, &creation, &holder).await?;
            session::start(
                dialer,
                worker,
                &run_id,
                opened.client,
                opened.backend,
                opened.position,
                patience,
            )
            .await
            .map_err(StoreError::from)
        })?;
        Ok(Self::lease(run.run_id, me, session))
    }

    fn take(&self, run_id: &str) -> Result<Lease, StoreError> {
        self.ready()?;
        let me = Holder::this_process();
        let (dialer, worker, patience) = (self.dialer.clone(), self.worker.clone(), self.patience);
        let holder = me.clone();
        let id = run_id.to_owned();
        let session = self.worker.call(async move {
            let opened = open::take(&dialer, &id, &holder).await?;
            session::start(
                dialer,
                worker,
                &id,
                opened.client,
                opened.backend,
                opened.position,
                patience,
            )
            .await
            .map_err(StoreError::from)
        })?;
        Ok(Self::lease(run_id, me, session))
    }

    fn journal(&self, lease: &Lease) -> Result<Box<dyn RunJournal>, StoreError> {
        match lease.held::<PgLease>() {
            Some(PgLease(session)) => Ok(Box::new(PgJournal::new(session.clone()))),
            None => Err(PgError::Released {
                run_id: lease.run_id().to_owned(),
            }
            .into()),
        }
    }

    fn holder(&self, run_id: &str) -> Result<Option<Holder>, StoreError> {
        let store = self.name().to_owned();
        let id = run_id.to_owned();
        self.read("read who drives the run", move |client| {
            let (store, id) = (store.clone(), id.clone());
            async move { Ok(lock::holder(&client, &store, &id).await?) }
        })?
        .ok_or_else(|| self.missing(run_id))
    }

    fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let rows = self.read("list the runs", |client| async move {
            Ok(client
                .query(
                    &format!(
                        "SELECT r.run_id, r.runbook, r.ended, r.started_at, r.finished_at,
                                l.pid IS NOT NULL
                         FROM runbook.runs r
                         LEFT JOIN pg_locks l ON {LOCKS} AND l.objid = r.key::oid
                         ORDER BY r.created_at, r.run_id"
                    ),
                    &[],
                )
                .await?)
        })?;
        Ok(rows
            .iter()
            .map(|row| {
                let run_id: String = row.get(0);
                let ended = row.get::<_, Option<&str>>(2);
                let status = match ended.map(|e| (e, parse_status(e))) {
                    Some((_, Some(status))) => Ok(status),
                    Some((text, None)) => Err(self.damaged(
                        format!("the status of run {run_id}"),
                        &format!("unknown status `{text}`"),
                    )),
                    None if row.get::<_, bool>(5) => Ok(RunStatus::Running),
                    None => Ok(RunStatus::Interrupted),
                };
                Listed {
                    summary: status.map(|status| RunSummary {
                        run_id: run_id.clone(),
                        runbook: row.get(1),
                        status,
                        started_at: row.get(3),
                        finished_at: row.get(4),
                    }),
                    run_id,
                }
            })
            .collect())
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.read("list the runs' ids", |client| async move {
            Ok(client
                .query(
                    "SELECT run_id FROM runbook.runs ORDER BY created_at, run_id",
                    &[],
                )
                .await?)
        })?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn location(&self) -> String {
        self.name().to_owned()
    }

    fn remove(&self, run_id: &str) -> Result<(), StoreError> {
        let id = run_id.to_owned();
        // Deleted only while nobody holds the run's lock (the transaction takes it for the
        // statement); its records, logs, files and params go with it (ON DELETE CASCADE).
        let deleted = self.read("remove a run", move |client| {
            let id = id.clone();
            async move {
                Ok(client
                    .execute(
                        "DELETE FROM runbook.runs r
                         WHERE r.run_id = $1 AND pg_try_advisory_xact_lock($2, r.key)",
                        &[&id, &LOCK_SPACE],
                    )
                    .await?)
            }
        })?;
        if deleted > 0 {
            return Ok(());
        }
        match self.holder(run_id)? {
            Some(holder) => Err(StoreError::Locked {
                id: run_id.to_owned(),
                holder,
            }),
            None => Err(self.missing(run_id)),
        }
    }

    fn records(&self, run_id: &str) -> Result<Vec<Record>, StoreError> {
        let id = run_id.to_owned();
        let rows = self.read("read the journal", move |client| {
            let id = id.clone();
            async move {
                Ok(client
                    .query(
                        "SELECT r.seq, r.record::text
                         FROM runbook.runs k LEFT JOIN runbook.records r ON r.run = k.key
                         WHERE k.run_id = $1 ORDER BY r.seq",
                        &[&id],
                    )
                    .await?)
            }
        })?;
        if rows.is_empty() {
            return Err(self.missing(run_id));
        }
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let (Some(seq), Some(text)) =
                (row.get::<_, Option<i64>>(0), row.get::<_, Option<&str>>(1))
            else {
                continue;
            };
            let record: Record = serde_json::from_str(text)
                .map_err(|e| self.damaged(format!("record {seq} of run {run_id}"), &e))?;
            records.push(record);
        }
        if let Some(Record::RunStarted { v, .. }) = records.first()
            && *v != FORMAT_VERSION
        {
            return Err(self.damaged(
                format!("the journal of run {run_id}"),
                &format!(
                    "journal format version {v}, this runbook build reads version {FORMAT_VERSION}"
                ),
            ));
        }
        Ok(records)
    }

    fn params(&self, run_id: &str) -> Result<Map<String, Value>, StoreError> {
        let id = run_id.to_owned();
        let row = self.read("read the params", move |client| {
            let id = id.clone();
            async move {
                Ok(client
                    .query_opt(
                        "SELECT p.params::text FROM runbook.runs r
                         LEFT JOIN runbook.params p ON p.run = r.key WHERE r.run_id = $1",
                        &[&id],
                    )
                    .await?)
            }
        })?;
        let row = row.ok_or_else(|| self.missing(run_id))?;
        let what = || format!("the params of run {run_id}");
        let text: Option<&str> = row.get(0);
        match serde_json::from_str(text.unwrap_or("null")) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(self.damaged(what(), &"not a mapping")),
            Err(e) => Err(self.damaged(what(), &e)),
        }
    }

    fn runbook(&self, run_id: &str) -> Result<RunbookCopy, StoreError> {
        let id = run_id.to_owned();
        let rows = self.read("read the runbook files", move |client| {
            let id = id.clone();
            async move {
                Ok(client
                    .query(
                        "SELECT r.source, r.root, f.original, f.relative, f.bytes
                         FROM runbook.runs r LEFT JOIN runbook.files f ON f.run = r.key
                         WHERE r.run_id = $1 ORDER BY f.position",
                        &[&id],
                    )
                    .await?)
            }
        })?;
        let first = rows.first().ok_or_else(|| self.missing(run_id))?;
        Ok(RunbookCopy {
            source: first.get::<_, String>(0).into(),
            root: first.get::<_, String>(1).into(),
            files: rows.iter().filter_map(file).collect(),
        })
    }

    fn read_log(
        &self,
        run_id: &str,
        step: &NodeId,
        from: u64,
    ) -> Result<Option<LogChunk>, StoreError> {
        let (id, step_id) = (run_id.to_owned(), step.as_str().to_owned());
        let from_offset = i64::try_from(from).unwrap_or(i64::MAX);
        let rows = self.read("read a step's log", move |client| {
            let (id, step_id) = (id.clone(), step_id.clone());
            async move {
                Ok(client
                    .query(
                        "SELECT l.start, l.bytes,
                                EXISTS (SELECT 1 FROM runbook.logs e
                                        WHERE e.run = r.key AND e.step = $2)
                         FROM runbook.runs r
                         LEFT JOIN runbook.logs l ON l.run = r.key AND l.step = $2
                              AND l.start + octet_length(l.bytes) > $3
                         WHERE r.run_id = $1 ORDER BY l.start",
                        &[&id, &step_id, &from_offset],
                    )
                    .await?)
            }
        })?;
        let first = rows.first().ok_or_else(|| self.missing(run_id))?;
        if !first.get::<_, bool>(2) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        for row in &rows {
            let (Some(start), Some(chunk)) =
                (row.get::<_, Option<i64>>(0), row.get::<_, Option<&[u8]>>(1))
            else {
                continue;
            };
            let skip = usize::try_from(from_offset.saturating_sub(start)).unwrap_or(0);
            bytes.extend_from_slice(chunk.get(skip..).unwrap_or_default());
        }
        let next = from + bytes.len() as u64;
        Ok(Some(LogChunk { bytes, next }))
    }
}

/// Why a read on the reading connection failed.
enum Fault {
    /// A statement failed.
    Sql(tokio_postgres::Error),
    /// The store's own lookup failed.
    Store(PgError),
}

impl From<tokio_postgres::Error> for Fault {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<PgError> for Fault {
    fn from(error: PgError) -> Self {
        Self::Store(error)
    }
}

/// A runbook file of a row, if the row has one.
fn file(row: &Row) -> Option<RunbookFile> {
    Some(RunbookFile {
        original: row.get::<_, Option<String>>(2)?.into(),
        relative: row.get::<_, Option<String>>(3)?.into(),
        bytes: row.get::<_, Option<Vec<u8>>>(4)?,
    })
}
