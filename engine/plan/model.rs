//! The compiled plan: one graph node per step (per item for a static `for_each`).

use std::collections::HashMap;
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{Map, Value};

use super::node_id::NodeId;
use crate::spec::{Runbook, Step, Value as TemplateValue};

/// A runbook compiled into a dependency graph, ready to run or rehearse.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Edges point from a dependency to its dependent.
    pub graph: DiGraph<PlanNode, ()>,
    /// The root runbook (0) and every runbook it calls.
    pub runbooks: Vec<Arc<Runbook>>,
    /// The root scope (0) and one scope per `call:`.
    pub scopes: Vec<Scope>,
    /// The root runbook's resolved params (partial when validating without values).
    pub params: Map<String, Value>,
    /// Every node in an order that respects the edges (file order among equals).
    pub order: Vec<NodeIndex>,
    /// The called runbook of each fanned-out call whose list is known only at run time.
    pub callees: HashMap<NodeIndex, usize>,
}

impl Plan {
    /// The root runbook.
    pub fn root(&self) -> &Runbook {
        &self.runbooks[0]
    }

    /// A node by its full id.
    pub fn find(&self, id: &str) -> Option<NodeIndex> {
        self.graph.node_indices().find(|&n| self.graph[n].id == *id)
    }

    /// Every node's id in the order the runbook declares them: its steps as written (a call's
    /// or a block's steps after it, items by index), then `finally` (nodes are added to the
    /// graph in that order).
    pub fn declared_order(&self) -> Vec<String> {
        self.graph
            .node_weights()
            .map(|n| n.id.to_string())
            .collect()
    }

    /// The nodes a node waits for.
    pub fn dependencies(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
    }

    /// The runbook a node's step belongs to.
    pub fn runbook_of(&self, node: &PlanNode) -> &Arc<Runbook> {
        self.runbook_of_scope(node.scope)
    }

    /// The runbook a scope's steps come from.
    pub fn runbook_of_scope(&self, scope: usize) -> &Arc<Runbook> {
        &self.runbooks[self.scopes[scope].runbook]
    }
}

/// Where a group of steps comes from: the root runbook or one `call:` of another.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The call its steps are inside (`restore_zk`, `rolling[2]`); `None` for the root.
    pub group: Option<NodeId>,
    /// Index into [`Plan::runbooks`].
    pub runbook: usize,
    /// The scope the call is written in.
    pub caller: Option<usize>,
    /// The params passed by the call (templates rendered in the caller's scope).
    pub with: Vec<(String, TemplateValue)>,
    /// For a call inside a `for_each`: the `as` name and this scope's item.
    pub item: Option<(String, Value)>,
    /// A block: it shares its caller's params (and sees the steps around it).
    pub block: bool,
}

/// Which part of the run a node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The procedure.
    Main,
    /// `finally:` steps, run when the procedure has ended.
    Finally,
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub struct PlanNode {
    /// Full id: `stop`, `stop[1]`, `restore_zk.export`.
    pub id: NodeId,
    /// The step's id within its scope's runbook, without prefix or index.
    pub local_id: String,
    /// Index into [`Plan::scopes`].
    pub scope: usize,
    /// The step as written.
    pub step: Arc<Step>,
    /// What the node is.
    pub role: Role,
    /// Main or finally.
    pub phase: Phase,
}

/// What a node stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// A step (without `for_each`).
    Step,
    /// One item of a `for_each` known when planning.
    Item {
        /// Position in the list.
        index: usize,
        /// The item.
        value: Value,
    },
    /// A `for_each` whose list is known only at run time: expanded when it becomes ready.
    DynamicFanOut,
    /// The entry of a `call:`: evaluates `when` and the `with` params, then its steps start.
    CallEntry {
        /// Index of the called scope.
        scope: usize,
    },
}
