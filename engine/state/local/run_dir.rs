//! A run's folder under the state dir: the runbook files as they ran, the resolved params, the
//! journal, one log per step, and the lock that lets one process drive the run at a time.
//!
//! ```text
//! .runbook/runs/<run-id>/
//!   meta.json        format version, run id, where the runbook came from
//!   runbook/…        copies of the runbook and every file it calls, same layout
//!   params.json      resolved params (secrets are never params, never stored)
//!   journal.jsonl    the append-only journal
//!   logs/<step>.log  what each step printed
//!   lock             held (flock) by the process driving the run; holds its pid
//!   holder.json      who holds the lock: pid, user, host, since when
//! ```

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::journal::JournalFile;
use super::lease::{self, FolderLock};
use crate::plan::NodeId;
use crate::state::journal::Record;
use crate::state::runbook_copy::{RunbookCopy, RunbookFile};
use crate::state::store::{Holder, LogChunk, NewRun, StoreError};

/// The version of the run folder's layout.
const LAYOUT_VERSION: u32 = 1;

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Format version of the run folder.
    pub v: u32,
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The root runbook as the user named it.
    pub source: PathBuf,
    /// The root runbook's path inside `runbook/`.
    pub copy: PathBuf,
    /// Every copied file: (original absolute path, path inside `runbook/`).
    pub files: Vec<(PathBuf, PathBuf)>,
    /// When the run was created.
    pub created_at: String,
}

/// A run's folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The folder.
    pub path: PathBuf,
    /// The run's id.
    pub id: String,
}

/// Maps an I/O error to a [`StoreError`] naming `path`.
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where runs live in a state dir.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// Removes the staging folders (`.new-<id>-<pid>`) of processes killed while they created a
/// run: their pid is gone. A live pid's folder is left alone (it may be being filled now).
fn remove_abandoned_staging(runs: &Path) {
    let Ok(entries) = fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".new-")) else {
            continue;
        };
        let pid = rest.rsplit_once('-').and_then(|(_, pid)| pid.parse().ok());
        if pid.is_some_and(|pid| !lease::alive(pid)) {
            // Another process may be removing it too: whoever is second finds nothing to do.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether an id can name a run folder.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl RunDir {
    /// Creates a new run folder: copies the runbook files into it, takes its lock and journals
    /// the run's start. The folder is filled under a hidden name and renamed into place, so a
    /// run folder that exists is always complete, with its lock held or its journal begun: a
    /// process killed while creating it leaves no half-made run that neither `run` (it exists)
    /// nor `resume` (it is damaged) could use.
    pub fn create(
        state_dir: &Path,
        run: &NewRun<'_>,
    ) -> Result<(Self, FolderLock, Holder), StoreError> {
        let id = run.run_id;
        if !valid_id(id) {
            return Err(StoreError::BadId(id.to_owned()));
        }
        let runs = runs_dir(state_dir);
        fs::create_dir_all(&runs).map_err(io_error(&runs))?;
        remove_abandoned_staging(&runs);
        let path = runs.join(id);
        if path.exists() {
            return Err(StoreError::Exists(id.to_owned()));
        }
        let staging = runs.join(format!(".new-{id}-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
        }
        fs::create_dir(&staging).map_err(io_error(&staging))?;
        let made = Self {
            path: staging.clone(),
            id: id.to_owned(),
        };
        let (lock, holder) = match made.fill(run) {
            Ok(held) => held,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&staging, &path) {
            let _ = fs::remove_dir_all(&staging);
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
                    StoreError::Exists(id.to_owned())
                }
                _ => io_error(&path)(e),
            });
        }
        // The rename itself is made durable: a run whose steps are journaled has its folder.
        File::open(&runs)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&runs))?;
        Ok((
            Self {
                path,
                id: id.to_owned(),
            },
            lock,
            holder,
        ))
    }

    /// Fills a new (staging) run folder; returns its lock.
    fn fill(&self, run: &NewRun<'_>) -> Result<(FolderLock, Holder), StoreError> {
        let held = lease::take(&self.path, &self.id)?;
        fs::create_dir_all(self.logs()).map_err(io_error(&self.logs()))?;
        let mut copied = Vec::new();
        for file in &run.files.files {
            let target = self.path.join("runbook").join(&file.relative);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            write_synced(&target, &file.bytes)?;
            copied.push((file.original.clone(), file.relative.clone()));
        }
        let meta = Meta {
            v: LAYOUT_VERSION,
            run_id: self.id.clone(),
            runbook: run.runbook.to_owned(),
            source: run.files.source.clone(),
            copy: run.files.root.clone(),
            files: copied,
            created_at: jiff::Timestamp::now().to_string(),
        };
        self.write_json("meta.json", &meta)?;
        self.write_json("params.json", run.params)?;
        JournalFile::open(&self.journal())
            .and_then(|mut j| j.append(std::slice::from_ref::<Record>(run.first)))?;
        Ok(held)
    }

    /// Opens an existing run folder.
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, StoreError> {
        let path = runs_dir(state_dir).join(id);
        if !valid_id(id) || !path.join("meta.json").is_file() {
            return Err(StoreError::Missing {
                id: id.to_owned(),
                store: state_dir.display().to_string(),
            });
        }
        Ok(Self {
            path,
            id: id.to_owned(),
        })
    }

    /// Removes the run folder: first renamed to a hidden name (gone from listings at once, as a
    /// run being created is), then deleted.
    pub fn remove(self) -> Result<(), StoreError> {
        let hidden =
            self.path
                .with_file_name(format!(".removing-{}-{}", self.id, std::process::id()));
        fs::rename(&self.path, &hidden).map_err(io_error(&self.path))?;
        fs::remove_dir_all(&hidden).map_err(io_error(&hidden))
    }

    /// Every run folder in the state dir, oldest first.
    pub fn list(state_dir: &Path) -> Result<Vec<Self>, StoreError> {
        let runs = runs_dir(state_dir);
        let entries = match fs::read_dir(&runs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&runs)(e)),
        };
        let mut found: Vec<(std::time::SystemTime, Self)> = entries
            .flatten()
            // Hidden folders are runs still being created (or whose creation was killed).
            .filter(|e| {
                !e.file_name().to_string_lossy().starts_with('.')
                    && e.path().join("meta.json").is_file()
            })
            .map(|e| {
                let created = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (
                    created,
                    Self {
                        path: e.path(),
                        id: e.file_name().to_string_lossy().into_owned(),
                    },
                )
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(found.into_iter().map(|(_, r)| r).collect())
    }

    /// The journal's path.
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// The logs folder.
    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// A step's log file (`stop[1]` → `stop[1].log`).
    pub fn log_of(&self, step: &NodeId) -> PathBuf {
        self.logs()
            .join(format!("{}.log", step.as_str().replace('/', "_")))
    }

    /// What a step's log holds from byte `from` on; `None` when it has no log.
    pub fn read_log(&self, step: &NodeId, from: u64) -> Result<Option<LogChunk>, StoreError> {
        let path = self.log_of(step);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path)(e)),
        };
        file.seek(SeekFrom::Start(from)).map_err(io_error(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error(&path))?;
        let next = from + bytes.len() as u64;
        Ok(Some(LogChunk { bytes, next }))
    }

    /// `meta.json`.
    pub fn meta(&self) -> Result<Meta, StoreError> {
        let path = self.path.join("meta.json");
        serde_json::from_value(self.read_json("meta.json")?).map_err(|e| StoreError::Damaged {
            path,
            reason: e.to_string(),
        })
    }

    /// `params.json`.
    pub fn params(&self) -> Result<Map<String, Value>, StoreError> {
        match self.read_json("params.json")? {
            Value::Object(map) => Ok(map),
            _ => Err(StoreError::Damaged {
                path: self.path.join("params.json"),
                reason: "not a mapping".into(),
            }),
        }
    }

    /// The copies of the runbook files.
    pub fn runbook(&self) -> Result<RunbookCopy, StoreError> {
        let meta = self.meta()?;
        let mut files = Vec::with_capacity(meta.files.len());
        for (original, relative) in meta.files {
            let path = self.path.join("runbook").join(&relative);
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            files.push(RunbookFile {
                original,
                relative,
                bytes,
            });
        }
        Ok(RunbookCopy {
            source: meta.source,
            root: meta.copy,
            files,
        })
    }

    fn write_json(&self, name: &str, value: &impl Serialize) -> Result<(), StoreError> {
        let path = self.path.join(name);
        let mut text = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Damaged {
            path: path.clone(),
            reason: format!("cannot be written: {e}"),
        })?;
        text.push(b'\n');
        write_synced(&path, &text)
    }

    fn read_json(&self, name: &str) -> Result<Value, StoreError> {
        let path = self.path.join(name);
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        serde_json::from_str(&text).map_err(|e| StoreError::Damaged {
            path,
            reason: e.to_string(),
        })
    }
}

/// Writes a whole file and makes it durable.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}
