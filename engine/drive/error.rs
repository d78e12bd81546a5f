//! Why a run could not be started, resumed or recorded. A run that fails, pauses or is
//! interrupted is no error: it is an [`super::Outcome`].

use crate::compile::CompileError;
use crate::exec::approvals::ApprovalError;
use crate::exec::secrets::SecretError;
use crate::plan::NodeId;
use crate::state::StoreError;
use crate::state::fingerprint::Changes;
use crate::state::leftovers::Leftover;
use crate::state::resume::ResumeError;

/// Why a run could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The runbook (as it is now) does not compile.
    #[error(transparent)]
    Compile(CompileError),
    /// The runbook is gone and the run's own copy of it does not compile.
    #[error("the run's copy of its runbook no longer compiles")]
    Copy(#[source] CompileError),
    /// Secrets that cannot be read.
    #[error(
        "{}\nnothing was run",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nerror: ")
    )]
    Secrets {
        /// Every secret that cannot be read.
        errors: Vec<SecretError>,
    },
    /// Destructive steps, and no terminal to confirm them.
    #[error(
        "this runbook has destructive steps ({}) and there is no terminal to confirm them; pass --yes to confirm them, or rehearse with --dry-run\nnothing was run",
        steps.iter().map(NodeId::as_str).collect::<Vec<_>>().join(", ")
    )]
    Unconfirmed {
        /// The destructive steps that would run.
        steps: Vec<NodeId>,
    },
    /// `--approve` or `--input` that names no manual step, or a value its input does not take.
    #[error(
        "{}\nnothing was run",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nerror: ")
    )]
    Approvals {
        /// Every mistake.
        errors: Vec<ApprovalError>,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Processes of the steps a stopped engine left running.
    #[error(
        "run {run_id} still has processes from the engine that stopped:\n{}\nwait for them to finish, or stop them (kill -TERM {}), then resume",
        leftovers.iter().map(|l| format!("  pid {} (group {}) of step {}: {}", l.pid, l.pgid, l.step, l.command)).collect::<Vec<_>>().join("\n"),
        groups(leftovers)
    )]
    Leftovers {
        /// The run.
        run_id: String,
        /// What still runs.
        leftovers: Vec<Leftover>,
    },
    /// The runbook changed since the run began, and `--allow-changed` was not given.
    #[error(
        "{runbook} changed since run {run_id} began:\n{}resume with --allow-changed to continue with the new version (steps that succeeded stay done unless --rerun STEP)",
        describe(changes.as_ref())
    )]
    Changed {
        /// The runbook file as the user named it.
        runbook: String,
        /// The run.
        run_id: String,
        /// What changed; `None` when the run's step fingerprints cannot be compared.
        changes: Option<Changes>,
    },
    /// What the resume was asked cannot be done.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// The async runtime could not start.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The run's journal could not be written: the run was stopped.
    #[error("the run's journal could not be written; the run was stopped")]
    Recording(#[source] StoreError),
}

/// `-<pgid> …`, each group once, for `kill -TERM`.
fn groups(leftovers: &[Leftover]) -> String {
    let groups: std::collections::BTreeSet<String> =
        leftovers.iter().map(|l| format!("-{}", l.pgid)).collect();
    groups.into_iter().collect::<Vec<_>>().join(" ")
}

/// What changed in a runbook, for people.
pub fn describe(changes: Option<&Changes>) -> String {
    changes.map_or_else(
        || "  (which steps changed is unknown: the run was started by an older build of runbook, whose step fingerprints cannot be compared with this one's)\n".to_owned(),
        Changes::describe,
    )
}
