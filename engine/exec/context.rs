//! The template context of a node, built in constant time: params, secrets and env converted
//! once, `run`, the node's item, and `steps` — a snapshot of the run's state that templates read
//! lazily. A step of a 10 000-step runbook does not copy the other steps' state to start.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use petgraph::graph::NodeIndex;

use super::event::StepStatus;
use crate::plan::{Phase, Plan, Role};
use crate::template;

/// One node's state as templates read it.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Its status.
    pub status: StepStatus,
    /// Its outputs (a map).
    pub outputs: Value,
    /// The items of a fan-out expanded at run time (a list).
    pub items: Value,
}

impl Cell {
    /// A node that has not started.
    pub fn pending() -> Self {
        Self {
            status: StepStatus::Pending,
            outputs: Value::from_pairs(std::iter::empty::<(Value, Value)>()),
            items: Value::from(Vec::<Value>::new()),
        }
    }
}

/// Every node's cell, by node index. The scheduler updates it in place; a step that still holds
/// an older snapshot makes the next update copy it (one pointer per node, not their contents).
pub type Cells = Arc<Vec<Cell>>;

/// Which nodes each `steps.<id>` of a scope stands for (fixed for the whole run).
#[derive(Debug)]
pub struct Layout {
    plan: Arc<Plan>,
    /// Per scope: its local ids in graph order, each with its nodes (several for a `for_each`).
    ids: Vec<Vec<(String, Vec<NodeIndex>)>>,
    /// Per scope: local id → position in `ids`.
    lookup: Vec<HashMap<String, usize>>,
    /// Per scope: its main-phase nodes (a call's status comes from them).
    members: Vec<Vec<NodeIndex>>,
}

impl Layout {
    /// A scope's main-phase nodes.
    pub fn members(&self, scope: usize) -> &[NodeIndex] {
        &self.members[scope]
    }

    /// Indexes a plan's nodes by scope and local id.
    pub fn new(plan: Arc<Plan>) -> Self {
        let scopes = plan.scopes.len();
        let mut ids: Vec<Vec<(String, Vec<NodeIndex>)>> = vec![Vec::new(); scopes];
        let mut lookup: Vec<HashMap<String, usize>> = vec![HashMap::new(); scopes];
        let mut members: Vec<Vec<NodeIndex>> = vec![Vec::new(); scopes];
        for n in plan.graph.node_indices() {
            let node = &plan.graph[n];
            let position = *lookup[node.scope]
                .entry(node.local_id.clone())
                .or_insert_with(|| {
                    ids[node.scope].push((node.local_id.clone(), Vec::new()));
                    ids[node.scope].len() - 1
                });
            ids[node.scope][position].1.push(n);
            if node.phase == Phase::Main {
                members[node.scope].push(n);
            }
        }
        Self {
            plan,
            ids,
            lookup,
            members,
        }
    }
}

/// `steps` as seen from one scope, at one moment of the run.
#[derive(Debug)]
pub struct StepsView {
    /// The plan's index.
    pub layout: Arc<Layout>,
    /// The state when the snapshot was taken.
    pub cells: Cells,
    /// The scope whose ids are visible.
    pub scope: usize,
}

impl StepsView {
    /// `{status, outputs, items}` of one id: a step, the items of a `for_each`, or a call.
    fn entry(&self, nodes: &[NodeIndex]) -> Value {
        let graph = &self.layout.plan.graph;
        let mut status: Option<&'static str> = None;
        let mut outputs = Cell::pending().outputs;
        let mut items: Vec<Value> = Vec::new();
        let mut dynamic_items = None;
        for &n in nodes {
            let cell = &self.cells[n.index()];
            if let Role::Item { value, .. } = &graph[n].role {
                items.push(Value::from_pairs([
                    ("item", template::to_value(value)),
                    ("status", Value::from(cell.status.as_str())),
                    ("outputs", cell.outputs.clone()),
                ]));
                let so_far = status.unwrap_or(cell.status.as_str());
                status = Some(combine(so_far, cell.status));
            } else {
                let own = match graph[n].role {
                    Role::CallEntry { scope } => self.call_status(scope, cell.status),
                    _ => cell.status,
                };
                status = Some(own.as_str());
                outputs = cell.outputs.clone();
                dynamic_items = Some(cell.items.clone());
            }
        }
        Value::from_pairs([
            ("status", Value::from(status.unwrap_or("pending"))),
            ("outputs", outputs),
            ("items", dynamic_items.unwrap_or_else(|| Value::from(items))),
        ])
    }

    /// A call's status: failed if any of its steps failed, running while any runs.
    fn call_status(&self, scope: usize, entry: StepStatus) -> StepStatus {
        if entry != StepStatus::Succeeded {
            return entry;
        }
        let mut status = StepStatus::Succeeded;
        for n in &self.layout.members[scope] {
            status = match (status, self.cells[n.index()].status) {
                (StepStatus::Failed, _) | (_, StepStatus::Failed) => StepStatus::Failed,
                (_, StepStatus::Running) | (StepStatus::Running, _) => StepStatus::Running,
                (_, StepStatus::Pending) | (StepStatus::Pending, _) => StepStatus::Pending,
                _ => StepStatus::Succeeded,
            };
        }
        status
    }
}

impl Object for StepsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let position = *self.layout.lookup[self.scope].get(key.as_str()?)?;
        Some(self.entry(&self.layout.ids[self.scope][position].1))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.layout.ids[self.scope]
                .iter()
                .map(|(id, _)| Value::from(id.as_str()))
                .collect(),
        )
    }
}

/// The status of a `for_each` step from its items so far.
fn combine(so_far: &str, item: StepStatus) -> &'static str {
    match (so_far, item) {
        ("failed", _) | (_, StepStatus::Failed) => "failed",
        ("running", _) | (_, StepStatus::Running) => "running",
        ("pending", _) | (_, StepStatus::Pending) => "pending",
        ("skipped", StepStatus::Skipped) => "skipped",
        _ => "succeeded",
    }
}

/// A context (a map) with one more name, or a name replaced (`result`, a fan-out's item).
pub fn extend(context: &Value, name: &str, value: Value) -> Value {
    let mut pairs: Vec<(Value, Value)> = context
        .try_iter()
        .map(|keys| {
            keys.filter(|k| k.as_str() != Some(name))
                .map(|k| {
                    let v = context.get_item(&k).unwrap_or_default();
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.push((Value::from(name), value));
    Value::from_pairs(pairs)
}
