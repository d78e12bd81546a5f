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
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::journal::{JournalWriter, Record};

/// The state dir's default location, relative to the current directory.
pub const DEFAULT_STATE_DIR: &str = ".runbook";

/// Why a run folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// Reading or writing failed.
    #[error("failed to access {path}")]
    Io {
        /// The path.
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
    #[error("no run `{id}` in {state}; `runbook runs` lists them")]
    Missing {
        /// The id.
        id: String,
        /// The state dir.
        state: String,
    },
    /// Another process drives the run.
    #[error(
        "run `{id}` is being driven by another process (pid {pid}); wait for it, or stop it first"
    )]
    Locked {
        /// The id.
        id: String,
        /// The holder's pid, as it wrote it.
        pid: String,
    },
    /// A file of the run folder is damaged.
    #[error("{path}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An id that cannot be a folder name.
    #[error("invalid run id `{0}`: use letters, digits, `-`, `_` and `.`")]
    BadId(String),
}

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where runs live: `--state-dir`, else `RUNBOOK_STATE_DIR`, else `.runbook/`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

impl RunDir {
    /// Creates a new run folder: copies the runbook files into it, takes its lock and journals
    /// `first` (the run's start). The folder is filled under a hidden name and renamed into
    /// place, so a run folder that exists is always complete, with its lock held or its journal
    /// begun: a process killed while creating it leaves no half-made run that neither `run`
    /// (it exists) nor `resume` (it is damaged) could use.
    pub fn create(
        state_dir: &Path,
        id: &str,
        runbook_name: &str,
        source: &Path,
        files: &[PathBuf],
        params: &Map<String, Value>,
        first: &Record,
    ) -> Result<(Self, RunLock), RunDirError> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || id.starts_with('.')
        {
            return Err(RunDirError::BadId(id.to_owned()));
        }
        let runs = runs_dir(state_dir);
        fs::create_dir_all(&runs).map_err(io(&runs))?;
        let path = runs.join(id);
        if path.exists() {
            return Err(RunDirError::Exists(id.to_owned()));
        }
        let staging = runs.join(format!(".new-{id}-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        fs::create_dir(&staging).map_err(io(&staging))?;
        let made = Self {
            path: staging.clone(),
            id: id.to_owned(),
        };
        let filled = made.fill(runbook_name, source, files, params, first);
        let lock = match filled {
            Ok(lock) => lock,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&staging, &path) {
            let _ = fs::remove_dir_all(&staging);
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
                    RunDirError::Exists(id.to_owned())
                }
                _ => io(&path)(e),
            });
        }
        // The rename itself is made durable: a run whose steps are journaled has its folder.
        File::open(&runs)
            .and_then(|d| d.sync_all())
            .map_err(io(&runs))?;
        Ok((
            Self {
                path,
                id: id.to_owned(),
            },
            lock,
        ))
    }

    /// Fills a new (staging) run folder; returns its lock.
    fn fill(
        &self,
        runbook_name: &str,
        source: &Path,
        files: &[PathBuf],
        params: &Map<String, Value>,
        first: &Record,
    ) -> Result<RunLock, RunDirError> {
        let lock = self.lock()?;
        fs::create_dir_all(self.logs()).map_err(io(&self.logs()))?;
        let absolute: Vec<PathBuf> = files
            .iter()
            .map(|f| fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
            .collect();
        let base = common_parent(&absolute);
        let mut copied = Vec::new();
        for file in &absolute {
            let relative = file.strip_prefix(&base).unwrap_or(file).to_owned();
            let target = self.path.join("runbook").join(&relative);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            fs::copy(file, &target).map_err(io(file))?;
            copied.push((file.clone(), relative));
        }
        let root = fs::canonicalize(source).unwrap_or_else(|_| source.to_owned());
        let meta = Meta {
            v: 1,
            run_id: self.id.clone(),
            runbook: runbook_name.to_owned(),
            source: source.to_owned(),
            copy: root.strip_prefix(&base).unwrap_or(&root).to_owned(),
            files: copied,
            created_at: jiff::Timestamp::now().to_string(),
        };
        self.write_json(
            "meta.json",
            &serde_json::to_value(&meta).unwrap_or_default(),
        )?;
        self.write_json("params.json", &Value::Object(params.clone()))?;
        JournalWriter::open(&self.journal())
            .and_then(|mut j| j.append(std::slice::from_ref(first)))
            .map_err(|e| RunDirError::Damaged {
                path: self.journal(),
                reason: e.to_string(),
            })?;
        Ok(lock)
    }

    /// Opens an existing run folder.
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, RunDirError> {
        let path = runs_dir(state_dir).join(id);
        if id.contains('/') || id.starts_with('.') || !path.join("meta.json").is_file() {
            return Err(RunDirError::Missing {
                id: id.to_owned(),
                state: state_dir.display().to_string(),
            });
        }
        Ok(Self {
            path,
            id: id.to_owned(),
        })
    }

    /// Every run folder in the state dir, oldest first.
    pub fn list(state_dir: &Path) -> Vec<Self> {
        let Ok(entries) = fs::read_dir(runs_dir(state_dir)) else {
            return Vec::new();
        };
        let mut runs: Vec<(std::time::SystemTime, Self)> = entries
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
        runs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        runs.into_iter().map(|(_, r)| r).collect()
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
    pub fn log_of(&self, step: &str) -> PathBuf {
        self.logs().join(format!("{}.log", step.replace('/', "_")))
    }

    /// `meta.json`.
    pub fn meta(&self) -> Result<Meta, RunDirError> {
        let value = self.read_json("meta.json")?;
        serde_json::from_value(value).map_err(|e| RunDirError::Damaged {
            path: self.path.join("meta.json"),
            reason: e.to_string(),
        })
    }

    /// `params.json`.
    pub fn params(&self) -> Result<Map<String, Value>, RunDirError> {
        match self.read_json("params.json")? {
            Value::Object(map) => Ok(map),
            _ => Err(RunDirError::Damaged {
                path: self.path.join("params.json"),
                reason: "not a mapping".into(),
            }),
        }
    }

    /// The copy of the root runbook.
    pub fn runbook_copy(&self) -> Result<PathBuf, RunDirError> {
        Ok(self.path.join("runbook").join(self.meta()?.copy))
    }

    fn write_json(&self, name: &str, value: &Value) -> Result<(), RunDirError> {
        let path = self.path.join(name);
        let text = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
        let mut file = File::create(&path).map_err(io(&path))?;
        file.write_all(text.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))
    }

    fn read_json(&self, name: &str) -> Result<Value, RunDirError> {
        let path = self.path.join(name);
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| RunDirError::Damaged {
            path,
            reason: e.to_string(),
        })
    }

    /// Takes the run's lock for this process (released when the returned guard drops or the
    /// process dies: flock semantics, so a dead holder never blocks).
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        let path = self.path.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io(&path))?;
                file.rewind().map_err(io(&path))?;
                write!(file, "{}", std::process::id()).map_err(io(&path))?;
                file.flush().map_err(io(&path))?;
                Ok(RunLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(RunDirError::Locked {
                    id: self.id.clone(),
                    pid: pid.trim().to_owned(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Whether a live process holds the lock (without taking it for long).
    pub fn is_locked(&self) -> bool {
        let path = self.path.join("lock");
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

/// Held while this process drives a run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn common_parent(files: &[PathBuf]) -> PathBuf {
    let mut base = files
        .first()
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for file in files.iter().skip(1) {
        while !file.starts_with(&base) {
            if !base.pop() {
                break;
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let state = tempfile::tempdir().unwrap();
        let src = state.path().join("r.yaml");
        fs::write(&src, "name: r\n").unwrap();
        let first = Record::Resumed {
            at: jiff::Timestamp::now(),
            pid: 0,
            user: String::new(),
            host: None,
        };
        let create = || {
            RunDir::create(
                state.path(),
                "r-1",
                "r",
                &src,
                std::slice::from_ref(&src),
                &Map::new(),
                &first,
            )
        };
        let (dir, held) = create().unwrap();
        assert!(dir.is_locked());
        assert!(dir.journal().is_file() && dir.meta().is_ok());
        let again = RunDir::open(state.path(), "r-1")
            .unwrap()
            .lock()
            .unwrap_err();
        assert!(
            again.to_string().contains(&std::process::id().to_string()),
            "{again}"
        );
        drop(held);
        assert!(!dir.is_locked());
        assert!(matches!(create(), Err(RunDirError::Exists(_))));
    }
}
