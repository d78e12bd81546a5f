//! What must hold before anything runs: every secret can be read, destructive steps can be
//! confirmed, and the decisions given for manual steps name manual steps and valid inputs.

use crate::exec::approvals::{self, Approvals, Verdict, Waiting};
use crate::exec::{Secrets, SettledSteps};
use crate::plan::reads::{self, Reads};
use crate::plan::{NodeId, Phase, Plan};
use crate::state::identity;

use super::DriveError;

/// Decisions about manual steps given on the command line (`run` and `resume`).
#[derive(Debug, Clone, Default)]
pub struct People {
    /// Who decides in this process (`--as`; `None`: `user@host`).
    pub identity: Option<String>,
    /// `--approve-all`: every manual step reached is approved, recorded as such.
    pub approve_all: bool,
    /// `--input STEP.NAME=VALUE`, as given.
    pub inputs: Vec<String>,
}

/// What the executor is told of people's decisions: `verdicts` for named steps, the `--input`
/// values (checked against the plan's manual steps), and the waits of earlier processes.
pub fn approvals(
    plan: &Plan,
    people: &People,
    verdicts: Vec<Verdict>,
    waiting: impl IntoIterator<Item = (NodeId, Waiting)>,
) -> Result<Approvals, DriveError> {
    let inputs = approvals::read_inputs(plan, &people.inputs)
        .map_err(|errors| DriveError::Approvals { errors })?;
    Ok(Approvals {
        identity: people
            .identity
            .clone()
            .unwrap_or_else(identity::default_identity),
        host: identity::host_name(),
        all: people.approve_all,
        verdicts,
        inputs,
        waiting: waiting.into_iter().collect(),
    })
}

/// Reads every secret the plan's runbooks declare.
pub fn resolve_secrets(plan: &Plan) -> Result<Secrets, DriveError> {
    Secrets::resolve(plan.runbooks.iter().map(AsRef::as_ref))
        .map_err(|errors| DriveError::Secrets { errors })
}

/// Reads the secrets of a run that goes on: those the steps still to run read (every `finally`
/// step runs) must be readable; the others are read when they can be, to be masked.
pub fn resolve_secrets_left(plan: &Plan, settled: &SettledSteps) -> Result<Secrets, DriveError> {
    let reads: Vec<Reads> = plan
        .graph
        .node_weights()
        .filter(|n| n.phase == Phase::Finally || !settled.contains_key(&n.id))
        .map(|n| reads::of_node(plan, n))
        .collect();
    let needed = |name: &str| reads.iter().any(|r| r.secret(name));
    Secrets::resolve_needed(plan.runbooks.iter().map(AsRef::as_ref), &needed)
        .map_err(|errors| DriveError::Secrets { errors })
}

/// Without a terminal, destructive steps that will run need `yes` before anything runs.
pub fn check_destructive(
    plan: &Plan,
    settled: &SettledSteps,
    yes: bool,
    interactive: bool,
) -> Result<(), DriveError> {
    if yes || interactive {
        return Ok(());
    }
    let steps: Vec<NodeId> = plan
        .graph
        .node_weights()
        .filter(|n| n.step.destructive && !(n.phase == Phase::Main && settled.contains_key(&n.id)))
        .map(|n| n.id.clone())
        .collect();
    if steps.is_empty() {
        Ok(())
    } else {
        Err(DriveError::Unconfirmed { steps })
    }
}
