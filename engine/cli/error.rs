//! Why a command did not succeed, how that is told, and the one place outcomes and errors
//! become exit codes (SPEC §5).

use std::io::Write as _;

use crate::compile::CompileError;
use crate::diagnostic;
use crate::drive::{DriveError, Outcome};
use crate::plan::ParamError;
use crate::report::history::LogsError;
use crate::spec::duration::Human;
use crate::state::store::with_reasons;
use crate::state::{Holder, StoreError};

use super::terminal::{self, Stream};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Runbooks with mistakes (already shown, located).
    #[error("{count} mistake(s) found")]
    Invalid {
        /// How many.
        count: usize,
    },
    /// Bad params (already shown).
    #[error("invalid params")]
    Params,
    /// A runbook file that could not be read.
    #[error("failed to read {path}")]
    Unreadable {
        /// The path as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Options that do not go together, or name nothing.
    #[error("{0}")]
    Usage(String),
    /// The operator answered no.
    #[error("nothing was run")]
    Declined,
    /// The run could not be driven.
    #[error(transparent)]
    Drive(DriveError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(StoreError),
    /// `logs` of a step the run does not have.
    #[error(transparent)]
    Logs(LogsError),
    /// Writing the output failed.
    #[error("failed to write output")]
    Output(#[source] std::io::Error),
    /// Writing a file or folder failed.
    #[error("failed to write {path}")]
    Write {
        /// The file or folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `stop` of a run no process drives.
    #[error("run `{run_id}` is not running (it is {status}); there is nothing to stop")]
    NotRunning {
        /// The run.
        run_id: String,
        /// How it stands.
        status: &'static str,
    },
    /// `stop` of a run whose process cannot be signalled from here.
    #[error("run `{run_id}` is driven by {holder}, which cannot be stopped from here: {why}")]
    Unreachable {
        /// The run.
        run_id: String,
        /// Who drives it.
        holder: Box<Holder>,
        /// Why it cannot be signalled.
        why: String,
    },
    /// `stop` signalled the run's process, and the run still goes on.
    #[error(
        "run `{run_id}` is still stopping after {}; `runbook stop {run_id}` again stops its steps without a grace period",
        Human(*waited)
    )]
    StillRunning {
        /// The run.
        run_id: String,
        /// How long `stop` waited.
        waited: std::time::Duration,
    },
}

impl CliError {
    /// Shows what did not compile (diagnostics with their snippets, param errors) and says
    /// how many mistakes there were.
    pub fn compile(err: CompileError) -> Self {
        match err {
            CompileError::Read { path, source } => Self::Unreadable { path, source },
            CompileError::Invalid { diagnostics, .. } => {
                eprint!(
                    "{}",
                    diagnostic::render_all(&diagnostics, terminal::colors(Stream::Stderr))
                );
                Self::Invalid {
                    count: diagnostics.len(),
                }
            }
            CompileError::Params(errors) => Self::params(&errors),
        }
    }

    /// Shows param errors.
    pub fn params(errors: &[ParamError]) -> Self {
        for e in errors {
            match e {
                // A value in a `--params` file is shown where it is written.
                ParamError::InFile(mistake) => {
                    eprint!("{}", mistake.0.render(terminal::colors(Stream::Stderr)));
                }
                other => eprintln!("error: {other}"),
            }
        }
        Self::Params
    }

    /// A run that could not be driven; what did not compile is shown.
    pub fn drive(err: DriveError) -> Self {
        match err {
            DriveError::Compile(e) => Self::compile(e),
            other => Self::Drive(other),
        }
    }

    /// `logs` that could not be shown.
    pub fn logs(err: LogsError) -> Self {
        match err {
            LogsError::Store(e) => Self::Store(e),
            other @ LogsError::UnknownStep { .. } => Self::Logs(other),
        }
    }

    /// Whether it was already shown where it arose.
    fn shown(&self) -> bool {
        matches!(self, Self::Invalid { .. } | Self::Params)
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// Tells an error on stderr, with every reason under it (`error: failed to read x.yaml: No
/// such file or directory (os error 2)`), unless it was already shown.
pub fn report(err: &CliError) {
    if err.shown() {
        return;
    }
    // A terminal that went away while the run went on fails this write: nothing to tell then.
    let _ = writeln!(std::io::stderr(), "error: {}", with_reasons(err));
}

/// The exit code of a command's outcome or error (SPEC §5): 0 succeeded · 1 a step failed ·
/// 2 invalid runbook, params or usage · 3 paused · 4 locked by another process · 130
/// interrupted.
pub fn exit_code(result: &Result<Outcome, CliError>) -> u8 {
    match result {
        // Before the arms below: a recording that failed because the database stayed away is
        // an interrupted run, not a failed one.
        #[cfg(feature = "postgres")]
        Err(
            CliError::Store(StoreError::Postgres(e))
            | CliError::Drive(
                DriveError::Store(StoreError::Postgres(e))
                | DriveError::Recording(StoreError::Postgres(e)),
            ),
        ) => e.exit_code(),
        Ok(Outcome::Succeeded) => 0,
        Ok(Outcome::Failed)
        | Err(
            CliError::Output(_)
            | CliError::Write { .. }
            | CliError::Store(
                StoreError::Io { .. } | StoreError::Damaged { .. } | StoreError::Journal(_),
            )
            | CliError::Drive(
                DriveError::Recording(_)
                | DriveError::Store(
                    StoreError::Io { .. } | StoreError::Damaged { .. } | StoreError::Journal(_),
                ),
            ),
        ) => 1,
        Err(
            CliError::Invalid { .. }
            | CliError::Params
            | CliError::Unreadable { .. }
            | CliError::Usage(_)
            | CliError::Declined
            | CliError::Logs(_)
            | CliError::NotRunning { .. }
            | CliError::Store(
                StoreError::Exists(_)
                | StoreError::Missing { .. }
                | StoreError::BadId(_)
                | StoreError::Ambiguous { .. },
            )
            | CliError::Drive(
                DriveError::Store(
                    StoreError::Exists(_)
                    | StoreError::Missing { .. }
                    | StoreError::BadId(_)
                    | StoreError::Ambiguous { .. },
                )
                | DriveError::Compile(_)
                | DriveError::Copy(_)
                | DriveError::Secrets { .. }
                | DriveError::Approvals { .. }
                | DriveError::Unconfirmed { .. }
                | DriveError::Changed { .. }
                | DriveError::Resume(_)
                | DriveError::Runtime(_),
            ),
        ) => 2,
        Ok(Outcome::Paused) => 3,
        Err(
            CliError::Store(StoreError::Locked { .. })
            | CliError::Unreachable { .. }
            | CliError::StillRunning { .. }
            | CliError::Drive(
                DriveError::Store(StoreError::Locked { .. }) | DriveError::Leftovers { .. },
            ),
        ) => 4,
        Ok(Outcome::Interrupted) => 130,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: CliError) -> u8 {
        exit_code(&Err(err))
    }

    #[test]
    fn outcomes_and_errors_have_the_exit_codes_of_the_spec() {
        assert_eq!(exit_code(&Ok(Outcome::Succeeded)), 0);
        assert_eq!(exit_code(&Ok(Outcome::Failed)), 1);
        assert_eq!(exit_code(&Ok(Outcome::Paused)), 3);
        assert_eq!(exit_code(&Ok(Outcome::Interrupted)), 130);
        assert_eq!(code(CliError::Invalid { count: 2 }), 2);
        assert_eq!(code(CliError::Usage("no".to_owned())), 2);
        let locked = || StoreError::Locked {
            id: "r".to_owned(),
            holder: Holder::unnamed(),
        };
        assert_eq!(code(CliError::Store(locked())), 4);
        assert_eq!(code(CliError::Drive(DriveError::Store(locked()))), 4);
        assert_eq!(
            code(CliError::Drive(DriveError::Leftovers {
                run_id: "r".to_owned(),
                leftovers: Vec::new(),
            })),
            4
        );
        let missing = StoreError::Missing {
            id: "r".to_owned(),
            store: ".runbook".to_owned(),
        };
        assert_eq!(code(CliError::Store(missing)), 2);
        let io = StoreError::Io {
            path: "journal.jsonl".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(code(CliError::Drive(DriveError::Recording(io))), 1);
    }
}
