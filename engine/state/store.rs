//! Where runs are kept: one interface for the recorder, resume, `runs`/`show`/`logs` and the
//! lease that lets one process drive a run at a time. [`super::local::LocalStore`] keeps runs in
//! folders under the state dir; a store shared by a team implements the same trait.
//!
//! A store keeps, per run: the runbook files as they ran, the resolved params (never secrets),
//! the journal's records in order, one log per step, and who drives the run now.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::journal::{JournalError, Record};
use super::runbook_copy::RunbookCopy;
use super::timeline::{RunSummary, Timeline};
use crate::plan::NodeId;

/// Where runs are kept.
pub trait Store: Send + Sync {
    /// Creates a run from its runbook files, params and first record (the run's start), and
    /// returns its lease: this process drives the new run. A run that exists is not touched.
    fn create(&self, run: &NewRun<'_>) -> Result<Lease, StoreError>;

    /// Takes the lease of an existing run: this process drives it until the lease is dropped
    /// (or the process dies). Refused, naming the holder, while another process holds it.
    fn take(&self, run_id: &str) -> Result<Lease, StoreError>;

    /// Where a run whose lease this process holds is journaled and logged.
    fn journal(&self, lease: &Lease) -> Result<Box<dyn RunJournal>, StoreError>;

    /// The process that drives the run now, if any.
    fn holder(&self, run_id: &str) -> Result<Option<Holder>, StoreError>;

    /// Every run, oldest first; a run that cannot be read is listed with why.
    fn list(&self) -> Result<Vec<Listed>, StoreError>;

    /// Every run's id (cheaper than [`Store::list`]: no journal is read).
    fn ids(&self) -> Result<Vec<String>, StoreError>;

    /// Where runs are kept, as messages name it (`.runbook`, or where it was looked for).
    fn location(&self) -> String;

    /// Removes a finished run: everything the store keeps of it. Refused, naming the holder,
    /// while a process drives it.
    fn remove(&self, run_id: &str) -> Result<(), StoreError>;

    /// The run a person means: a run's id, `latest` (or `last`) for the run started last, or
    /// the beginning of exactly one run's id.
    fn resolve(&self, given: &str) -> Result<String, StoreError> {
        let missing = || StoreError::Missing {
            id: given.to_owned(),
            store: self.location(),
        };
        if given == LATEST || given == "last" {
            let runs = self.list()?;
            // Runs that cannot be read sort first: they are never `latest`.
            return runs
                .into_iter()
                .max_by_key(|r| r.summary.as_ref().ok().and_then(|s| s.started_at))
                .map(|r| r.run_id)
                .ok_or_else(missing);
        }
        let ids = self.ids()?;
        if ids.iter().any(|id| id == given) {
            return Ok(given.to_owned());
        }
        let mut matches: Vec<String> = ids.into_iter().filter(|id| id.starts_with(given)).collect();
        match matches.len() {
            0 => Err(missing()),
            1 => Ok(matches.remove(0)),
            _ => {
                matches.sort();
                Err(StoreError::Ambiguous {
                    given: given.to_owned(),
                    matches,
                })
            }
        }
    }

    /// A run's journal: every record, in order.
    fn records(&self, run_id: &str) -> Result<Vec<Record>, StoreError>;

    /// A run's journal as a timeline.
    fn timeline(&self, run_id: &str) -> Result<Timeline, StoreError> {
        self.records(run_id).map(Timeline::from_records)
    }

    /// The params a run was started with.
    fn params(&self, run_id: &str) -> Result<Map<String, Value>, StoreError>;

    /// The runbook files a run was started with.
    fn runbook(&self, run_id: &str) -> Result<RunbookCopy, StoreError>;

    /// What a step printed, from byte `from` of its log on; `None` when it has no log.
    fn read_log(
        &self,
        run_id: &str,
        step: &NodeId,
        from: u64,
    ) -> Result<Option<LogChunk>, StoreError>;
}

/// What `latest` means wherever a run's id is taken: the run started last.
pub const LATEST: &str = "latest";

/// Where the process that drives a run writes it: records (durable once synced) and step logs.
pub trait RunJournal: Send {
    /// Writes records without waiting for them to be durable ([`RunJournal::sync`] does).
    fn write(&mut self, records: &[Record]) -> Result<(), StoreError>;

    /// Makes every record written so far durable.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Writes records and makes them durable.
    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.write(records)?;
        self.sync()
    }

    /// Adds a line to a step's log (shown by `logs`; not a checkpoint).
    fn log_line(&mut self, step: &NodeId, line: &str) -> Result<(), StoreError>;

    /// Makes the lines logged so far visible to readers.
    fn flush_logs(&mut self) -> Result<(), StoreError>;

    /// A step has ended: its log gets no more lines for now (a later attempt, an approval or a
    /// resume may add more). A store holding a handle per log lets it go.
    fn end_log(&mut self, step: &NodeId) {
        let _ = step;
    }

    /// Why lines of a step's log were lost since it was last asked (the first failure: a full
    /// disk, say), once its log has ended; `None`: its log is whole.
    fn log_failure(&mut self, step: &NodeId) -> Option<String> {
        let _ = step;
        None
    }
}

/// What a new run is made of.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Its id.
    pub run_id: &'a str,
    /// The runbook's name.
    pub runbook: &'a str,
    /// The runbook files as they run.
    pub files: &'a RunbookCopy,
    /// The resolved params (secrets are never params).
    pub params: &'a Map<String, Value>,
    /// The journal's first record: the run's start.
    pub first: &'a Record,
}

/// Held while this process drives a run; dropping it lets another process take the run over.
pub struct Lease {
    run_id: String,
    holder: Holder,
    held: Box<dyn Any + Send + Sync>,
    lost: CancellationToken,
}

impl Lease {
    /// A lease on `run_id`, held by `holder` for as long as `held` lives (a locked file, a
    /// session).
    pub fn new(run_id: &str, holder: Holder, held: impl Any + Send + Sync) -> Self {
        Self {
            run_id: run_id.to_owned(),
            holder,
            held: Box::new(held),
            lost: CancellationToken::new(),
        }
    }

    /// The same lease, which a store may lose while the run goes on (a shared store whose
    /// connection broke and could not be got back): `lost` is cancelled then, and the process
    /// must stop starting steps at once.
    #[must_use]
    pub fn losable(mut self, lost: CancellationToken) -> Self {
        self.lost = lost;
        self
    }

    /// Cancelled when this process lost the lease (never, for a lease that cannot be lost).
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// What holds the lease, for the store that made it.
    pub fn held<T: Any>(&self) -> Option<&T> {
        self.held.downcast_ref()
    }

    /// The run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// This process, as other processes see it.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("run_id", &self.run_id)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// The process that drives a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Its pid (0: a process that holds the run without having named itself).
    pub pid: u32,
    /// Who runs it (unknown when an older build holds the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The machine it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Since when it drives the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

impl Holder {
    /// This process, now.
    pub fn this_process() -> Self {
        Self {
            pid: std::process::id(),
            user: Some(super::identity::current_user()),
            host: super::identity::host_name(),
            since: Some(Timestamp::now()),
        }
    }

    /// A process that holds the run and has not named itself.
    pub fn unnamed() -> Self {
        Self {
            pid: 0,
            user: None,
            host: None,
            since: None,
        }
    }
}

impl fmt::Display for Holder {
    /// `pid 4242, alice@db1, since 2026-11-21 03:00:07 UTC`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pid == 0 {
            f.write_str("pid unknown")?;
        } else {
            write!(f, "pid {}", self.pid)?;
        }
        match (&self.user, &self.host) {
            (Some(user), Some(host)) => write!(f, ", {user}@{host}")?,
            (Some(user), None) => write!(f, ", {user}")?,
            (None, Some(host)) => write!(f, ", on {host}")?,
            (None, None) => {}
        }
        if let Some(since) = self.since {
            write!(f, ", since {}", since.strftime("%Y-%m-%d %H:%M:%S UTC"))?;
        }
        Ok(())
    }
}

/// One run of [`Store::list`].
#[derive(Debug)]
pub struct Listed {
    /// The run's id.
    pub run_id: String,
    /// The run, or why it could not be read.
    pub summary: Result<RunSummary, StoreError>,
}

/// Part of a step's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// What was added since the offset asked for.
    pub bytes: Vec<u8>,
    /// Where the next read starts.
    pub next: u64,
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("failed to access {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--run-id` names a run that exists.
    #[error(
        "run `{0}` already exists; continue it with `runbook resume {0}`, or choose another --run-id"
    )]
    Exists(String),
    /// No such run.
    #[error("no run `{id}` in {store}; `runbook runs` lists them")]
    Missing {
        /// The id.
        id: String,
        /// Where runs are kept.
        store: String,
    },
    /// Another process drives the run.
    #[error(
        "run `{id}` is being driven by another process ({holder}); wait for it, or stop it first"
    )]
    Locked {
        /// The id.
        id: String,
        /// Who drives it.
        holder: Holder,
    },
    /// Something a run keeps is damaged.
    #[error("{path}: {reason}")]
    Damaged {
        /// What is damaged.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An id that cannot name a run.
    #[error("invalid run id `{0}`: use letters, digits, `-`, `_` and `.`")]
    BadId(String),
    /// The beginning of several runs' ids.
    #[error("`{given}` could be any of {} runs: {}; give more of the id", matches.len(), matches.join(", "))]
    Ambiguous {
        /// What was given.
        given: String,
        /// The runs whose ids begin with it.
        matches: Vec<String>,
    },
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The `PostgreSQL` store failed (boxed: its errors are large, and rare).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(Box<super::postgres::PgError>),
}

#[cfg(feature = "postgres")]
impl From<super::postgres::PgError> for StoreError {
    fn from(error: super::postgres::PgError) -> Self {
        Self::Postgres(Box::new(error))
    }
}

/// An error's text with every reason under it: `failed to access …/build.log: No space left on
/// device (os error 28)`.
pub fn with_reasons(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(reason) = source {
        let told = reason.to_string();
        // A reason its error already tells (`failed to read x: {source}`) is not told twice.
        if !text.ends_with(&told) {
            text.push_str(": ");
            text.push_str(&told);
        }
        source = reason.source();
    }
    text
}
