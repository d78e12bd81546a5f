//! Which version of the runbook a process drives a run with: the sha256 of the root runbook
//! file as it was read, and the git commit checked out where the file is (when it is in a
//! repository and `git` is installed), so that a report can say exactly what ran.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use crate::exec::secrets::{env_sources, withhold};
use crate::plan::Plan;
use crate::state::fingerprint::sha256_hex;
use crate::state::{Record, journal};

/// The record of the version of `plan`'s root runbook.
pub fn record(plan: &Plan) -> Record {
    Probe::start(plan).record()
}

/// The version of a runbook being found out: asking `git` takes a few milliseconds (two
/// processes in a repository), which a run spends creating its folder instead of waiting.
#[derive(Debug)]
pub struct Probe {
    sha256: String,
    git: JoinHandle<Option<(String, bool)>>,
}

impl Probe {
    /// Starts asking `git` about `plan`'s root runbook file.
    pub fn start(plan: &Plan) -> Self {
        let file = &plan.root().file;
        let path: PathBuf = file.path.clone();
        let withheld = env_sources(plan.runbooks.iter().map(AsRef::as_ref));
        Self {
            sha256: sha256_hex(file.text.as_bytes()),
            git: std::thread::spawn(move || git_commit(&path, &withheld)),
        }
    }

    /// The record, once `git` has answered (nothing is claimed when it could not).
    pub fn record(self) -> Record {
        let (commit, modified) = self
            .git
            .join()
            .ok()
            .flatten()
            .map_or((None, false), |(c, m)| (Some(c), m));
        Record::Version {
            sha256: self.sha256,
            commit,
            modified,
            at: journal::now(),
        }
    }
}

/// The commit checked out in the repository holding `file`, and whether the file differs from
/// it (changed, or not tracked); `None` outside a repository or without `git`. `git` does not
/// get the environment variables in `withheld`.
fn git_commit(file: &Path, withheld: &[String]) -> Option<(String, bool)> {
    let file = std::fs::canonicalize(file).ok()?;
    let dir = file.parent()?;
    let commit = git(dir, withheld, &["rev-parse", "--verify", "HEAD"])?;
    let commit = commit.trim();
    if commit.is_empty() {
        return None;
    }
    let status = git(
        dir,
        withheld,
        &[
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            &file.to_string_lossy(),
        ],
    )?;
    Some((commit.to_owned(), !status.trim().is_empty()))
}

/// What `git ARGS` prints in `dir`, when it succeeds.
fn git(dir: &Path, withheld: &[String], args: &[&str]) -> Option<String> {
    let mut git = Command::new("git");
    withhold(&mut git, withheld);
    let output = git
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_this_repository_has_a_commit_and_one_elsewhere_none() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        // A checkout of the project is a git repository (a source tarball is not: then nothing
        // is claimed, which is what the function promises too).
        if let Some((commit, _)) = git_commit(&manifest, &[]) {
            assert_eq!(commit.len(), 40, "{commit}");
            assert!(commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
        } else {
            assert!(git(manifest.parent().unwrap(), &[], &["rev-parse", "HEAD"]).is_none());
        }
        let outside = tempfile_dir();
        let file = outside.join("book.yaml");
        std::fs::write(&file, "name: x\n").unwrap();
        assert_eq!(git_commit(&file, &[]), None);
        let _ = std::fs::remove_dir_all(outside);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "runbook-version-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
