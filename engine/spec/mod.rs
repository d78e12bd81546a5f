//! Stage one: YAML text → located node tree → a validated [`Runbook`].

pub mod decode;
pub mod duration;
pub mod events;
pub mod model;
pub mod node;
pub mod read;
pub mod runbook;
pub mod schema;
pub mod source;
pub mod step;
pub mod suggest;
pub mod values;

use std::path::Path;
use std::sync::Arc;

pub use model::*;
pub use runbook::from_source;
pub use source::{SourceFile, Span};

use crate::diagnostic::Diagnostic;

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid runbook (or not text: see [`read::text`]).
    #[error("{} mistake(s) in {path}", diagnostics.len())]
    Invalid {
        /// The path as given.
        path: String,
        /// Every mistake found.
        diagnostics: Vec<Diagnostic>,
        /// What could be read despite them, for later stages' checks.
        partial: Option<Box<Runbook>>,
    },
}

/// Reads and validates one runbook file.
pub fn load(path: &Path) -> Result<Runbook, LoadError> {
    let bytes = read::bytes(path).map_err(|source| LoadError::Read {
        path: source::display_path(path),
        source,
    })?;
    load_bytes(path, bytes)
}

/// Validates the bytes of a runbook file named `path`.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<Runbook, LoadError> {
    let shown = source::display_path(path);
    let file: Arc<SourceFile> = read::text(path, bytes).map_err(|d| LoadError::Invalid {
        path: shown.clone(),
        diagnostics: vec![d],
        partial: None,
    })?;
    runbook::from_source_partial(&file).map_err(|(diagnostics, partial)| LoadError::Invalid {
        partial,
        path: shown,
        diagnostics,
    })
}
