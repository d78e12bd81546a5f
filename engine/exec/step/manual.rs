//! `manual:` — a person's step: approved by `--yes`, at a terminal prompt, or the run pauses.

use crate::exec::runtime::Runtime;
use crate::plan::NodeId;

/// What became of a manual step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Approved(&'static str),
    /// The person said no.
    Rejected,
    /// Nobody can answer now: the run pauses until `resume --approve`.
    Pause,
}

/// Asks for approval of rendered instructions.
pub async fn decide(rt: &Runtime, id: &NodeId, instructions: &str) -> Decision {
    if rt.options.yes {
        return Decision::Approved("approved by --yes");
    }
    if !rt.options.interactive {
        return Decision::Pause;
    }
    if rt.ask(id, format!("{instructions}\nDone, continue?")).await {
        Decision::Approved("approved at the prompt")
    } else {
        Decision::Rejected
    }
}
