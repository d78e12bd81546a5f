//! How a run ended, and how it is shown while it goes.

use crate::exec::RunStatus;
use crate::report::live::{Mode, Verbosity};

/// How a run ended (each has its exit code, SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded or was skipped (or failed with `allow_failure`).
    Succeeded,
    /// A step failed.
    Failed,
    /// A manual step waits for approval.
    Paused,
    /// Stopped by a signal; a resume continues it.
    Interrupted,
}

impl From<RunStatus> for Outcome {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Succeeded | RunStatus::Running => Self::Succeeded,
            RunStatus::Failed => Self::Failed,
            RunStatus::Paused => Self::Paused,
            RunStatus::Interrupted => Self::Interrupted,
        }
    }
}

/// How the run is shown, as the caller's terminal allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// Progress bars, plain lines, or the rehearsal as JSON.
    pub mode: Mode,
    /// Colors on stdout.
    pub color: bool,
    /// A person can answer questions (stdin and stderr are a terminal).
    pub interactive: bool,
    /// How much is told while the run goes.
    pub verbosity: Verbosity,
}
