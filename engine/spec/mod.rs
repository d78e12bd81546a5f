//! Stage one: YAML text → located node tree → a validated [`Runbook`].

pub mod decode;
pub mod duration;
pub mod events;
pub mod model;
pub mod node;
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
    #[error("failed to read {path}")]
    Read {
        /// The path as given.
        path: String,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid runbook.
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
    let shown = source::display_path(path);
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: Arc<SourceFile> = SourceFile::new(path, text);
    runbook::from_source_partial(&file).map_err(|(diagnostics, partial)| LoadError::Invalid {
        partial,
        path: shown,
        diagnostics,
    })
}
