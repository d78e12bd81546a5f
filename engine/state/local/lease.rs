//! The lease of a run folder: an exclusive `flock` on its `lock` file, held by the process that
//! drives the run (released when it exits or dies: a dead holder never blocks). Who holds it is
//! in `holder.json`, written whole under a temporary name and renamed into place after the lock
//! is taken, so a reader sees the previous holder or the new one, never half of either. The
//! `lock` file itself keeps the holder's pid as plain text, for people.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::run_dir::io_error;
use crate::state::store::{Holder, StoreError};

/// How often taking the lock is tried before it counts as held: `holder` probes hold it for an
/// instant, and must not make a process that drives the run look like a second driver.
const TRIES: u32 = 3;

/// How long a refused process waits for the holder to name itself (it takes the lock before it
/// writes `holder.json`).
const NAMING: Duration = Duration::from_millis(500);

/// A lock taken on a run folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

/// Takes the lock of the run folder at `dir`, for this process.
pub fn take(dir: &Path, run_id: &str) -> Result<(FolderLock, Holder), StoreError> {
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error(&path))?;
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if tries + 1 < TRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    id: run_id.to_owned(),
                    holder: named_holder(dir, &mut file).unwrap_or_else(Holder::unnamed),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
        }
    }
    let holder = Holder::this_process();
    write_holder(dir, &holder)?;
    file.set_len(0).map_err(io_error(&path))?;
    file.rewind().map_err(io_error(&path))?;
    write!(file, "{}", holder.pid).map_err(io_error(&path))?;
    file.flush().map_err(io_error(&path))?;
    Ok((FolderLock { _file: file }, holder))
}

/// Who holds the lock of the run folder at `dir`, if anyone (without keeping it).
pub fn holder(dir: &Path) -> Result<Option<Holder>, StoreError> {
    let path = dir.join("lock");
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(fs::TryLockError::WouldBlock) => Ok(Some(
            named_holder(dir, &mut file).unwrap_or_else(Holder::unnamed),
        )),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path)(e)),
    }
}

/// The holder of a lock this process could not take: from `holder.json` once it names a live
/// process (the holder writes it just after taking the lock), else the pid in the lock file.
fn named_holder(dir: &Path, lock: &mut File) -> Option<Holder> {
    let deadline = Instant::now() + NAMING;
    loop {
        if let Some(holder) = read_holder(dir).filter(|h| alive(h.pid)) {
            return Some(holder);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut text = String::new();
    lock.rewind().ok()?;
    lock.read_to_string(&mut text).ok()?;
    let pid = text.trim().parse().ok()?;
    Some(Holder {
        pid,
        user: None,
        host: None,
        since: None,
    })
}

fn read_holder(dir: &Path) -> Option<Holder> {
    let text = fs::read(dir.join("holder.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes `holder.json` whole: under a temporary name, then renamed over the old one.
fn write_holder(dir: &Path, holder: &Holder) -> Result<(), StoreError> {
    let path = dir.join("holder.json");
    let staging = dir.join(format!(".holder-{}.json", holder.pid));
    let text = serde_json::to_vec(holder).map_err(|e| StoreError::Damaged {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    fs::write(&staging, text).map_err(io_error(&staging))?;
    fs::rename(&staging, &path).map_err(io_error(&path))
}

/// Whether a process with this pid exists (on this machine: a folder lock is local).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_names_itself_and_a_stale_name_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()).unwrap(), None, "no lock file yet");
        let (lock, me) = take(dir.path(), "r").unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(holder(dir.path()).unwrap(), Some(me.clone()));
        assert_eq!(
            fs::read_to_string(dir.path().join("lock")).unwrap(),
            me.pid.to_string(),
            "the lock file holds the pid, for people"
        );

        // A name left by a holder that died (no such pid): the lock file's pid is named instead.
        let stale = Holder {
            pid: u32::try_from(i32::MAX).unwrap(),
            ..me.clone()
        };
        write_holder(dir.path(), &stale).unwrap();
        let named = holder(dir.path()).unwrap().expect("still held");
        assert_eq!((named.pid, named.user), (me.pid, None));

        drop(lock);
        assert_eq!(holder(dir.path()).unwrap(), None);
        let (_again, next) = take(dir.path(), "r").unwrap();
        assert_eq!(holder(dir.path()).unwrap(), Some(next));
    }
}
