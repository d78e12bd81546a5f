//! `run --only STEP…` and `run --from STEP`: the part of a runbook an operator redoes by hand.
//! The steps left out are recorded in the journal as skipped, with why, so `show` tells it and a
//! resume never runs them; the steps they would have provided for (what the chosen steps depend
//! on) are named, for the operator to confirm that their effect is in place.

use std::collections::{BTreeSet, HashSet};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use serde_json::Map;

use crate::exec::{Settled, SettledSteps, StepStatus};
use crate::plan::{Phase, Plan};

/// Which steps of a runbook a run is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// These steps (of the runbook itself: a fan-out with its items, a block or call with its
    /// steps).
    Only(Vec<String>),
    /// This step and every step that depends on it, directly or not, then `finally`.
    From(String),
}

impl Choice {
    /// How the choice was written, for messages and the journal.
    fn written(&self) -> String {
        match self {
            Self::Only(ids) => format!("--only {}", ids.join(",")),
            Self::From(id) => format!("--from {id}"),
        }
    }
}

/// A choice applied to a plan.
#[derive(Debug, Clone)]
pub struct Selection {
    /// How it was written (`--only restore`).
    pub written: String,
    /// The runbook's steps that run, in plan order.
    pub chosen: Vec<String>,
    /// Steps left out that a chosen step depends on, directly or not, in plan order: their
    /// effect is taken as in place.
    pub assumed: Vec<String>,
    /// Every node left out, settled as skipped (recorded as the run starts).
    pub left_out: SettledSteps,
}

/// A choice that names no step of the runbook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{written}: the runbook has no step `{id}`; its steps: {}", known.join(", "))]
pub struct SelectionError {
    /// How the choice was written.
    written: String,
    /// The id not found.
    id: String,
    /// The runbook's steps.
    known: Vec<String>,
}

/// The runbook's own steps (not those inside a block or a called runbook), in plan order:
/// `steps`, then `finally`.
fn top_level(plan: &Plan) -> Vec<String> {
    let root = plan.root();
    root.steps
        .iter()
        .chain(root.finally.iter())
        .map(|s| s.id.as_str().to_owned())
        .collect()
}

/// The runbook step a node belongs to: the first segment of its id.
fn owner(plan: &Plan, n: NodeIndex) -> &str {
    plan.graph[n]
        .id
        .segments()
        .next()
        .map_or("", |segment| segment.step)
}

/// Applies `choice` to `plan`.
pub fn select(plan: &Plan, choice: &Choice) -> Result<Selection, SelectionError> {
    let written = choice.written();
    let known = top_level(plan);
    let named: Vec<&String> = match choice {
        Choice::Only(ids) => ids.iter().collect(),
        Choice::From(id) => vec![id],
    };
    if let Some(unknown) = named.iter().find(|id| !known.contains(id)) {
        return Err(SelectionError {
            written,
            id: (*unknown).clone(),
            known,
        });
    }
    let mut chosen: HashSet<String> = named.iter().map(|id| (*id).clone()).collect();
    if let Choice::From(id) = choice {
        // What depends on it, and the `finally` steps (a run that ends runs them).
        let start: Vec<NodeIndex> = nodes_of(plan, id);
        for n in reachable(plan, &start, Direction::Outgoing) {
            chosen.insert(owner(plan, n).to_owned());
        }
        for n in plan.graph.node_indices() {
            if plan.graph[n].phase == Phase::Finally && plan.graph[n].scope == 0 {
                chosen.insert(owner(plan, n).to_owned());
            }
        }
    }
    // What the chosen steps wait for (`finally` waits for every step: it does not count).
    let chosen_nodes: Vec<NodeIndex> = plan
        .graph
        .node_indices()
        .filter(|&n| chosen.contains(owner(plan, n)) && plan.graph[n].phase == Phase::Main)
        .collect();
    let needed: BTreeSet<&str> = reachable(plan, &chosen_nodes, Direction::Incoming)
        .into_iter()
        .map(|n| owner(plan, n))
        .filter(|id| !chosen.contains(*id))
        .collect();
    let reason = format!("left out: the run was started with {written}");
    let left_out = plan
        .graph
        .node_indices()
        .filter(|&n| !chosen.contains(owner(plan, n)))
        .map(|n| {
            (
                plan.graph[n].id.clone(),
                Settled {
                    status: StepStatus::Skipped,
                    outputs: Map::new(),
                    items: Vec::new(),
                    reason: reason.clone(),
                    record: true,
                },
            )
        })
        .collect();
    Ok(Selection {
        written,
        chosen: known
            .iter()
            .filter(|id| chosen.contains(*id))
            .cloned()
            .collect(),
        assumed: known
            .iter()
            .filter(|id| needed.contains(id.as_str()))
            .cloned()
            .collect(),
        left_out,
    })
}

/// The nodes of a runbook step (itself, its items, the steps inside it).
fn nodes_of(plan: &Plan, id: &str) -> Vec<NodeIndex> {
    plan.graph
        .node_indices()
        .filter(|&n| owner(plan, n) == id)
        .collect()
}

/// Every node reachable from `start` along edges in `direction` (`start` excluded unless
/// reached again).
fn reachable(plan: &Plan, start: &[NodeIndex], direction: Direction) -> Vec<NodeIndex> {
    let mut seen: HashSet<NodeIndex> = HashSet::new();
    let mut stack: Vec<NodeIndex> = start.to_vec();
    while let Some(n) = stack.pop() {
        for next in plan.graph.neighbors_directed(n, direction) {
            if seen.insert(next) {
                stack.push(next);
            }
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::NodeId;

    const BOOK: &str = "\
name: choose
steps:
  - id: fetch
    run: echo fetch
  - id: stop
    for_each: [a, b]
    run: echo {{ item }}
  - id: restore
    run: echo restore
  - id: verify
    run: echo verify
  - id: aside
    needs: []
    run: echo aside
finally:
  - id: note
    run: echo note
";

    fn plan() -> Plan {
        let file = crate::spec::SourceFile::new("choose.yaml", BOOK);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        crate::plan::compile(runbook, None).expect("it compiles")
    }

    #[test]
    fn only_runs_the_steps_named_and_names_what_they_depend_on() {
        let plan = plan();
        let selection = select(&plan, &Choice::Only(vec!["restore".to_owned()])).expect("valid");
        assert_eq!(selection.chosen, ["restore"]);
        assert_eq!(selection.assumed, ["fetch", "stop"]);
        let mut left: Vec<&str> = selection.left_out.keys().map(NodeId::as_str).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            ["aside", "fetch", "note", "stop[0]", "stop[1]", "verify"],
            "every node left out (a fan-out known when planning has a node per item)"
        );
        assert!(selection.left_out.values().all(|s| s.record
            && s.status == StepStatus::Skipped
            && s.reason.contains("--only restore")));
    }

    #[test]
    fn from_runs_the_step_what_depends_on_it_and_finally() {
        let plan = plan();
        let selection = select(&plan, &Choice::From("restore".to_owned())).expect("valid");
        assert_eq!(selection.chosen, ["restore", "verify", "note"]);
        assert_eq!(selection.assumed, ["fetch", "stop"]);
    }

    #[test]
    fn a_step_the_runbook_does_not_have_is_refused_with_the_ones_it_has() {
        let err = select(&plan(), &Choice::Only(vec!["restor".to_owned()])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no step `restor`"), "{text}");
        assert!(
            text.contains("fetch, stop, restore, verify, aside, note"),
            "{text}"
        );
    }
}
