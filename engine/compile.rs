//! A runbook file to a plan: load it (stage one), then compile it with its params (stage two),
//! collecting every mistake. Nothing is printed: the mistakes come back as diagnostics for the
//! caller to show.

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::plan::{self, ParamError, ParamInput, Plan, PlanError};
use crate::spec::{self, LoadError};

/// Why a runbook file did not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The path as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Located mistakes in the runbook or a file it calls, in file order.
    #[error("{} mistake(s) in {path}", diagnostics.len())]
    Invalid {
        /// The file as given.
        path: String,
        /// Every mistake found.
        diagnostics: Vec<Diagnostic>,
    },
    /// Params that are missing, unknown or of the wrong type.
    #[error("invalid params")]
    Params(Vec<ParamError>),
}

/// Loads a runbook file and compiles it; without `params`, only what can be checked without
/// their values is.
pub fn compile(path: &Path, params: Option<&ParamInput>) -> Result<Plan, CompileError> {
    let shown = || spec::source::display_path(path);
    let runbook = match spec::load(path) {
        Ok(runbook) => runbook,
        Err(LoadError::Read { path, source }) => return Err(CompileError::Read { path, source }),
        Err(LoadError::Invalid {
            mut diagnostics,
            partial,
            path,
        }) => {
            // The later stage's checks still run on what could be read: one run of `validate`
            // reports every mistake.
            if let Some(partial) = partial {
                diagnostics.extend(plan::static_checks(&partial));
            }
            diagnostics.sort_by_key(|d| d.at.span.offset);
            return Err(CompileError::Invalid { path, diagnostics });
        }
    };
    plan::compile(runbook, params).map_err(|e| match e {
        PlanError::Invalid(diagnostics) => CompileError::Invalid {
            path: shown(),
            diagnostics,
        },
        PlanError::Params(errors) => CompileError::Params(errors),
    })
}
