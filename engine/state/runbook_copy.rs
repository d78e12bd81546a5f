//! The runbook files a run was started with, kept by its store: the root runbook and every file
//! it calls, with their paths relative to the folder they share. A resume whose runbook is gone
//! compiles this copy, written out to a temporary folder (on any machine).

use std::path::{Path, PathBuf};

use super::store::StoreError;
use crate::plan::Plan;

/// The runbook files of a run, as they ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookCopy {
    /// The root runbook as the user named it.
    pub source: PathBuf,
    /// The root runbook's path among `files`.
    pub root: PathBuf,
    /// Every file.
    pub files: Vec<RunbookFile>,
}

/// One runbook file of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookFile {
    /// Where it was read from (absolute).
    pub original: PathBuf,
    /// Its path relative to the folder every file of the run shares.
    pub relative: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl RunbookCopy {
    /// The files of a plan as they were read for it.
    pub fn of_plan(plan: &Plan) -> Self {
        let absolute: Vec<PathBuf> = plan
            .runbooks
            .iter()
            .map(|r| std::fs::canonicalize(&r.file.path).unwrap_or_else(|_| r.file.path.clone()))
            .collect();
        let base = common_parent(&absolute);
        let relative = |path: &Path| path.strip_prefix(&base).unwrap_or(path).to_owned();
        let source = plan.root().file.path.clone();
        let root = std::fs::canonicalize(&source).unwrap_or_else(|_| source.clone());
        Self {
            root: relative(&root),
            files: plan
                .runbooks
                .iter()
                .zip(&absolute)
                .map(|(runbook, original)| RunbookFile {
                    original: original.clone(),
                    relative: relative(original),
                    bytes: runbook.file.text.as_bytes().to_vec(),
                })
                .collect(),
            source,
        }
    }

    /// Where the root runbook was read from.
    pub fn original_root(&self) -> &Path {
        self.files
            .iter()
            .find(|f| f.relative == self.root)
            .map_or(&self.source, |f| &f.original)
    }

    /// Writes the files to a new temporary folder, removed when the result is dropped.
    pub fn materialise(&self) -> Result<Materialised, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let dir = std::env::temp_dir().join(format!(
            "runbook-copy-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let made = Materialised {
            root: dir.join(&self.root),
            dir,
        };
        for file in &self.files {
            let path = made.dir.join(&file.relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, &file.bytes).map_err(io(&path))?;
        }
        Ok(made)
    }
}

/// A run's runbook files written to a temporary folder (removed on drop).
#[derive(Debug)]
pub struct Materialised {
    dir: PathBuf,
    /// The root runbook's path.
    pub root: PathBuf,
}

impl Drop for Materialised {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The deepest folder every file is in.
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
    fn a_copy_is_written_out_with_its_layout_and_removed_after() {
        let copy = RunbookCopy {
            source: PathBuf::from("ops/main.yaml"),
            root: PathBuf::from("ops/main.yaml"),
            files: vec![
                RunbookFile {
                    original: PathBuf::from("/srv/ops/main.yaml"),
                    relative: PathBuf::from("ops/main.yaml"),
                    bytes: b"name: main\n".to_vec(),
                },
                RunbookFile {
                    original: PathBuf::from("/srv/lib/called.yaml"),
                    relative: PathBuf::from("lib/called.yaml"),
                    bytes: b"name: called\n".to_vec(),
                },
            ],
        };
        assert_eq!(copy.original_root(), Path::new("/srv/ops/main.yaml"));
        let made = copy.materialise().unwrap();
        assert_eq!(std::fs::read(&made.root).unwrap(), b"name: main\n");
        let called = made.root.parent().unwrap().join("../lib/called.yaml");
        assert_eq!(std::fs::read(called).unwrap(), b"name: called\n");
        let dir = made.dir.clone();
        drop(made);
        assert!(!dir.exists());
    }

    #[test]
    fn the_common_parent_is_the_deepest_shared_folder() {
        let files = [
            PathBuf::from("/srv/ops/a/main.yaml"),
            PathBuf::from("/srv/ops/lib/b.yaml"),
        ];
        assert_eq!(common_parent(&files), PathBuf::from("/srv/ops"));
    }
}
