//! `runbook validate FILE…`: static checks of runbook files and folders, every mistake located.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::CliError;
use crate::compile::compile;
use crate::drive::Outcome;
use crate::spec::source::display_path;

/// What `validate` takes.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Runbook files or folders.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Checks every file named (folders: every `.yaml`/`.yml` below), and says how it went.
pub fn execute(args: &ValidateArgs) -> Result<Outcome, CliError> {
    let files = expand(&args.files);
    if files.is_empty() {
        let named: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Usage(format!(
            "no runbook files found in {}",
            named.join(", ")
        )));
    }
    let mut mistakes = 0;
    let mut bad_files = 0;
    let mut stdout = std::io::stdout().lock();
    for file in &files {
        match compile(file, None).map_err(CliError::compile) {
            Ok(plan) => {
                let steps = plan.graph.node_count();
                writeln!(
                    stdout,
                    "ok: {} ({} step{})",
                    display_path(file),
                    steps,
                    if steps == 1 { "" } else { "s" }
                )
                .map_err(CliError::Output)?;
            }
            Err(CliError::Invalid { count }) => {
                mistakes += count;
                bad_files += 1;
            }
            Err(unreadable @ CliError::Unreadable { .. }) => {
                super::error::report(&unreadable);
                mistakes += 1;
                bad_files += 1;
            }
            Err(other) => return Err(other),
        }
    }
    if mistakes > 0 {
        eprintln!(
            "error: {mistakes} mistake{} in {bad_files} of {} file{}",
            if mistakes == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
        return Err(CliError::Invalid { count: mistakes });
    }
    Ok(Outcome::Succeeded)
}

/// Every runbook file named, folders searched for `.yaml`/`.yml`, in a stable order.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_yaml(path, &mut found);
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    out
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}
