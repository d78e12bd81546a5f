//! Runs kept in folders under a state dir (`--state-dir`, `RUNBOOK_STATE_DIR`, or the nearest
//! `.runbook/`): one folder per run ([`super::run_dir`]), locked with `flock` ([`super::lease`]).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::journal;
use super::lease::{self, FolderLock};
use super::run_dir::RunDir;
use super::writer::FolderJournal;
use crate::plan::NodeId;
use crate::state::journal::Record;
use crate::state::runbook_copy::RunbookCopy;
use crate::state::store::{Holder, Lease, Listed, LogChunk, NewRun, RunJournal, Store, StoreError};
use crate::state::timeline::Timeline;

/// The state dir's name: looked for in the current directory and the folders above it, and
/// created in the current directory by the first run when none is found.
pub const DEFAULT_STATE_DIR: &str = ".runbook";

/// Runs kept in folders under a state dir.
#[derive(Debug, Clone)]
pub struct LocalStore {
    state_dir: PathBuf,
    /// Where the state dir was looked for, when none was found (it does not exist yet).
    searched: Option<PathBuf>,
}

impl LocalStore {
    /// The runs under `state_dir` (created with the first run).
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            searched: None,
        }
    }

    /// The runs under the nearest `.runbook/` folder, as git finds `.git`: in `start` or the
    /// closest folder above it that has one. When none has, runs go to `.runbook/` in `start`
    /// (relative to the current directory), created with the first run, and messages say where
    /// it was looked for.
    pub fn discover(start: &Path) -> Self {
        let found = start
            .ancestors()
            .map(|dir| dir.join(DEFAULT_STATE_DIR))
            .find(|candidate| candidate.is_dir());
        match found {
            Some(state_dir) => Self::new(state_dir),
            None => Self {
                state_dir: PathBuf::from(DEFAULT_STATE_DIR),
                searched: Some(start.to_owned()),
            },
        }
    }

    /// The state dir.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn open(&self, run_id: &str) -> Result<RunDir, StoreError> {
        RunDir::open(&self.state_dir, run_id).map_err(|e| match e {
            StoreError::Missing { id, .. } => StoreError::Missing {
                id,
                store: self.location(),
            },
            other => other,
        })
    }

    fn lease(dir: &RunDir, (lock, holder): (FolderLock, Holder)) -> Lease {
        Lease::new(&dir.id, holder, lock)
    }
}

impl Store for LocalStore {
    fn create(&self, run: &NewRun<'_>) -> Result<Lease, StoreError> {
        match RunDir::create(&self.state_dir, run) {
            Ok((dir, lock, holder)) => Ok(Self::lease(&dir, (lock, holder))),
            // A run that exists: say who drives it, when someone does.
            Err(StoreError::Exists(id)) => match self.holder(&id)? {
                Some(holder) => Err(StoreError::Locked { id, holder }),
                None => Err(StoreError::Exists(id)),
            },
            Err(e) => Err(e),
        }
    }

    fn take(&self, run_id: &str) -> Result<Lease, StoreError> {
        let dir = self.open(run_id)?;
        let held = lease::take(&dir.path, run_id)?;
        Ok(Self::lease(&dir, held))
    }

    fn journal(&self, lease: &Lease) -> Result<Box<dyn RunJournal>, StoreError> {
        Ok(Box::new(FolderJournal::open(self.open(lease.run_id())?)?))
    }

    fn holder(&self, run_id: &str) -> Result<Option<Holder>, StoreError> {
        lease::holder(&self.open(run_id)?.path)
    }

    fn list(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(RunDir::list(&self.state_dir)?
            .into_iter()
            .map(|dir| {
                let summary = journal::load(&dir.journal())
                    .map_err(StoreError::from)
                    .and_then(|records| {
                        let driven = lease::holder(&dir.path)?.is_some();
                        Ok(Timeline::from_records(records).summary(driven))
                    });
                Listed {
                    run_id: dir.id,
                    summary,
                }
            })
            .collect())
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(RunDir::list(&self.state_dir)?
            .into_iter()
            .map(|dir| dir.id)
            .collect())
    }

    fn location(&self) -> String {
        match &self.searched {
            Some(start) => format!(
                "{} (no {DEFAULT_STATE_DIR} folder in {} or any folder above it; --state-dir or RUNBOOK_STATE_DIR names one)",
                self.state_dir.display(),
                start.display()
            ),
            None => self.state_dir.display().to_string(),
        }
    }

    fn remove(&self, run_id: &str) -> Result<(), StoreError> {
        let dir = self.open(run_id)?;
        let _held = lease::take(&dir.path, run_id)?;
        dir.remove()
    }

    fn records(&self, run_id: &str) -> Result<Vec<Record>, StoreError> {
        Ok(journal::load(&self.open(run_id)?.journal())?)
    }

    fn params(&self, run_id: &str) -> Result<Map<String, Value>, StoreError> {
        self.open(run_id)?.params()
    }

    fn runbook(&self, run_id: &str) -> Result<RunbookCopy, StoreError> {
        self.open(run_id)?.runbook()
    }

    fn read_log(
        &self,
        run_id: &str,
        step: &NodeId,
        from: u64,
    ) -> Result<Option<LogChunk>, StoreError> {
        self.open(run_id)?.read_log(step, from)
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::exec::{RunStatus, StepStatus};
    use crate::state::runbook_copy::RunbookFile;

    fn started(run_id: &str) -> Record {
        Record::RunStarted {
            v: crate::state::journal::FORMAT_VERSION,
            run_id: run_id.to_owned(),
            runbook: "book".to_owned(),
            source: "book.yaml".to_owned(),
            hash: "h".to_owned(),
            steps: Map::new(),
            order: Vec::new(),
            fingerprint: 1,
            at: Timestamp::now(),
            pid: std::process::id(),
            user: "alice".to_owned(),
            host: None,
        }
    }

    fn files() -> RunbookCopy {
        RunbookCopy {
            source: PathBuf::from("book.yaml"),
            root: PathBuf::from("book.yaml"),
            files: vec![RunbookFile {
                original: PathBuf::from("/srv/book.yaml"),
                relative: PathBuf::from("book.yaml"),
                bytes: b"name: book\n".to_vec(),
            }],
        }
    }

    fn create(store: &LocalStore, run_id: &str) -> Result<Lease, StoreError> {
        let mut params = Map::new();
        params.insert("size".to_owned(), Value::from(3));
        store.create(&NewRun {
            run_id,
            runbook: "book",
            files: &files(),
            params: &params,
            first: &started(run_id),
        })
    }

    #[test]
    fn a_run_is_created_written_and_read_back() {
        let state = tempfile::tempdir().unwrap();
        let store = LocalStore::new(state.path());
        let lease = create(&store, "r-1").unwrap();
        assert_eq!(lease.holder().pid, std::process::id());
        let mut journal = store.journal(&lease).unwrap();
        let step = NodeId::step("a");
        journal
            .append(&[
                Record::StepStarted {
                    id: step.clone(),
                    attempt: 1,
                    description: None,
                    at: Timestamp::now(),
                },
                Record::StepFinished {
                    id: step.clone(),
                    status: StepStatus::Succeeded,
                    attempts: 1,
                    outputs: Map::new(),
                    items: Vec::new(),
                    reason: None,
                    log_lost: None,
                    duration_ms: 5,
                    at: Timestamp::now(),
                },
            ])
            .unwrap();
        journal.log_line(&step, "first").unwrap();
        journal.log_line(&step, "second").unwrap();
        journal.flush_logs().unwrap();

        assert_eq!(store.records("r-1").unwrap().len(), 3);
        assert_eq!(store.params("r-1").unwrap()["size"], 3);
        assert_eq!(store.runbook("r-1").unwrap(), files());
        let all = store.read_log("r-1", &step, 0).unwrap().unwrap();
        assert_eq!(all.bytes, b"first\nsecond\n");
        let rest = store.read_log("r-1", &step, 6).unwrap().unwrap();
        assert_eq!((rest.bytes.as_slice(), rest.next), (&b"second\n"[..], 13));
        assert_eq!(store.read_log("r-1", &NodeId::step("b"), 0).unwrap(), None);

        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        let summary = listed[0].summary.as_ref().unwrap();
        assert_eq!(summary.status, RunStatus::Running, "its lease is held");
        drop(journal);
        drop(lease);
        let listed = store.list().unwrap();
        let summary = listed[0].summary.as_ref().unwrap();
        assert_eq!(summary.status, RunStatus::Interrupted, "nobody drives it");
    }

    #[test]
    fn a_second_lease_is_refused_naming_the_holder_and_a_dropped_one_never_blocks() {
        let state = tempfile::tempdir().unwrap();
        let store = LocalStore::new(state.path());
        let held = create(&store, "r-1").unwrap();
        let holder = store.holder("r-1").unwrap().expect("it is held");
        assert_eq!(holder.pid, std::process::id());
        assert!(
            holder.user.is_some() && holder.since.is_some(),
            "{holder:?}"
        );

        let refused = store.take("r-1").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        match create(&store, "r-1").unwrap_err() {
            StoreError::Locked { holder, .. } => assert_eq!(holder.pid, std::process::id()),
            other => panic!("a driven run that exists is locked: {other}"),
        }
        drop(held);
        assert_eq!(store.holder("r-1").unwrap(), None);
        assert!(matches!(create(&store, "r-1"), Err(StoreError::Exists(_))));
        let again = store.take("r-1").unwrap();
        assert_eq!(again.run_id(), "r-1");
    }

    #[test]
    fn unknown_and_malformed_run_ids_are_refused() {
        let state = tempfile::tempdir().unwrap();
        let store = LocalStore::new(state.path());
        assert!(store.list().unwrap().is_empty(), "no state dir yet");
        assert!(matches!(
            store.timeline("nope"),
            Err(StoreError::Missing { .. })
        ));
        assert!(matches!(
            store.take("../x"),
            Err(StoreError::Missing { .. })
        ));
        assert!(matches!(
            create(&store, ".hidden"),
            Err(StoreError::BadId(_))
        ));
        assert!(matches!(create(&store, "a/b"), Err(StoreError::BadId(_))));
    }
}
