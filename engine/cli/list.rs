//! `runbook list [DIR]`: the runbooks in a folder and below it, each with its description and
//! params (as `just --list` lists recipes). Files that are not runbooks (params files, compose
//! files) are left out; a runbook with mistakes is listed with how many.

use std::io::Write as _;
use std::path::PathBuf;

use super::args::RunFormat;
use super::error::CliError;
use crate::drive::Outcome;
use crate::report::catalogue::{self, Entry};
use crate::spec::node::NodeKind;
use crate::spec::source::display_path;
use crate::spec::{self, LoadError};

/// What `list` takes.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Where to look: a folder (searched below; hidden folders are not) or one file.
    #[arg(default_value = ".", value_hint = clap::ValueHint::AnyPath)]
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
}

/// Lists the runbooks found.
pub fn execute(args: &ListArgs) -> Result<Outcome, CliError> {
    if let Err(source) = std::fs::metadata(&args.dir) {
        return Err(CliError::Unreadable {
            path: display_path(&args.dir),
            source,
        });
    }
    let entries: Vec<Entry> = super::files::expand(std::slice::from_ref(&args.dir))
        .iter()
        .filter_map(|file| entry(file))
        .collect();
    let text = match args.format {
        RunFormat::Text if entries.is_empty() => {
            eprintln!("no runbooks in {}", display_path(&args.dir));
            String::new()
        }
        RunFormat::Text => catalogue::list_text(&entries),
        RunFormat::Json => catalogue::list_json(&entries),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}

/// A file's entry, when it is a runbook: a YAML mapping with `steps`. Files that cannot be read
/// are not listed (`validate` says why).
fn entry(file: &std::path::Path) -> Option<Entry> {
    let bytes = spec::read::bytes(file).ok()?;
    let text = spec::read::text(file, bytes.clone()).ok()?;
    let root = spec::node::parse(&text).ok()?;
    let NodeKind::Map(keys) = &root.kind else {
        return None;
    };
    if !keys.iter().any(|(k, _)| k.scalar_text() == "steps") {
        return None;
    }
    let runbook = match spec::load_bytes(file, bytes) {
        Ok(runbook) => Ok(runbook),
        Err(LoadError::Invalid { diagnostics, .. }) => Err(diagnostics.len()),
        Err(LoadError::Read { .. }) => return None,
    };
    Some(Entry {
        path: display_path(file),
        runbook,
    })
}
