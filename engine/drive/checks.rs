//! What must hold before anything runs: every secret can be read, and destructive steps can be
//! confirmed.

use crate::exec::{Secrets, SettledSteps};
use crate::plan::{NodeId, Phase, Plan};

use super::DriveError;

/// Reads every secret the plan's runbooks declare.
pub fn resolve_secrets(plan: &Plan) -> Result<Secrets, DriveError> {
    Secrets::resolve(plan.runbooks.iter().map(AsRef::as_ref))
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
