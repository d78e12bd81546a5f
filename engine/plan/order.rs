//! Plan order: how people read a run's steps. As the runbook declares them (its steps, then its
//! `finally` steps), a call's or a block's steps right under it, a fan-out's items by index
//! under the fan-out. Items a run expands only at run time (ids the plan did not have) take
//! their place by their id.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{ItemKey, NodeId, Phase, Plan, Role};
use crate::spec::Runbook;

/// Where each step of a plan stands, for sorting any of its run's ids.
#[derive(Debug, Clone, Default)]
pub struct PlanOrder {
    /// The declared position of each step, by its path without items (`a.b.c` for `a.b[2].c`),
    /// a runbook's `finally` steps after its main steps.
    positions: HashMap<String, u32>,
    /// Item nodes of the plan: their position in their list (host keys say none).
    items: HashMap<NodeId, u32>,
    /// The plan's nodes, in plan order.
    nodes: Vec<NodeId>,
}

/// A node's place: per segment of its id, the step's declared position (for a step the plan
/// does not know: none, then its name) and its item (0: not an item, else 1 + its position).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey(Vec<(u32, String, u32)>);

impl PlanOrder {
    /// The order of a plan's nodes, and of the items its fan-outs may add at run time.
    pub fn of(plan: &Plan) -> Self {
        let mut order = Self::default();
        // Per runbook, once: each step's position (not a search of its steps per node).
        let mut declared: HashMap<*const Runbook, HashMap<(&str, Part), u32>> = HashMap::new();
        for node in plan.graph.node_weights() {
            let list = if node.phase == Phase::Main {
                Part::Main
            } else {
                Part::Finally
            };
            let runbook = plan.runbook_of(node);
            let positions = declared
                .entry(std::sync::Arc::as_ptr(runbook))
                .or_insert_with(|| positions(runbook));
            if let Some(&position) = positions.get(&(node.local_id.as_str(), list)) {
                order.positions.insert(template(&node.id), position);
            }
            if let Role::Item { index, .. } = node.role {
                order
                    .items
                    .insert(node.id.clone(), u32::try_from(index).unwrap_or(u32::MAX));
            }
        }
        // The steps of a call or block fanned out at run time: known by their runbook.
        for (&fan_out, &callee) in &plan.callees {
            let prefix = template(&plan.graph[fan_out].id);
            let runbook = &plan.runbooks[callee];
            for (i, step) in runbook.all_steps().enumerate() {
                order.positions.insert(
                    format!("{prefix}.{}", step.id.as_str()),
                    u32::try_from(i).unwrap_or(u32::MAX),
                );
            }
        }
        let mut nodes: Vec<NodeId> = plan.graph.node_weights().map(|n| n.id.clone()).collect();
        order.sort_by_id(&mut nodes, |id| id);
        order.nodes = nodes;
        order
    }

    /// The plan's nodes, in plan order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Where an id stands.
    pub fn key(&self, id: &NodeId) -> OrderKey {
        let mut path = String::new();
        let mut prefix = String::new();
        let mut key = Vec::new();
        for segment in id.segments() {
            if !path.is_empty() {
                path.push('.');
                prefix.push('.');
            }
            path.push_str(segment.step);
            prefix.push_str(segment.step);
            let (position, name) = match self.positions.get(&path) {
                Some(&position) => (position, String::new()),
                None => (u32::MAX, segment.step.to_owned()),
            };
            let item = match segment.item {
                None => 0,
                Some(item) => {
                    let _ = std::fmt::Write::write_fmt(&mut prefix, format_args!("[{item}]"));
                    let known = NodeId::parse(&prefix)
                        .ok()
                        .and_then(|p| self.items.get(&p).copied());
                    let index = match (known, item) {
                        (Some(i), _) => i,
                        (None, ItemKey::Index(i)) => u32::try_from(i).unwrap_or(u32::MAX - 1),
                        (None, ItemKey::Host(_) | ItemKey::Any) => u32::MAX - 1,
                    };
                    index.saturating_add(1)
                }
            };
            key.push((position, name, item));
        }
        OrderKey(key)
    }

    /// Sorts a list of things by the place of their ids.
    pub fn sort_by_id<T>(&self, list: &mut [T], id: impl Fn(&T) -> &NodeId) {
        list.sort_by_cached_key(|t| self.key(id(t)));
    }

    /// Compares two ids.
    pub fn compare(&self, a: &NodeId, b: &NodeId) -> Ordering {
        self.key(a).cmp(&self.key(b))
    }
}

/// Which list of a runbook a step is in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Main,
    Finally,
}

/// Each step's position among its runbook's steps (`finally` steps after the main ones).
fn positions(runbook: &Runbook) -> HashMap<(&str, Part), u32> {
    let main = runbook.steps.iter().map(|s| (s.id.as_str(), Part::Main));
    let finally = runbook
        .finally
        .iter()
        .map(|s| (s.id.as_str(), Part::Finally));
    main.chain(finally)
        .enumerate()
        .map(|(i, key)| (key, u32::try_from(i).unwrap_or(u32::MAX)))
        .collect()
}

/// An id's path of steps without items: `a.b.c` for `a.b[2].c`.
fn template(id: &NodeId) -> String {
    id.segments().map(|s| s.step).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK: &str = "\
name: order
steps:
  - id: prepare
    needs: [fetch]
    run: echo prepare
  - id: fetch
    needs: []
    run: echo fetch
  - id: stop
    for_each: [a, b, c, d, e, f, g, h, i, j, k, l]
    run: echo {{ item }}
  - id: listed
    needs: [fetch]
    run: echo '[1, 2]'
    outputs: { items: '{{ result.json }}' }
  - id: later
    for_each: steps.listed.outputs.items
    run: echo {{ item }}
  - id: verify
    run: echo verify
finally:
  - id: note
    run: echo note
";

    fn plan() -> Plan {
        let file = crate::spec::SourceFile::new("order-test.yaml", BOOK);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        crate::plan::compile(runbook, None).expect("it compiles")
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).expect("a valid id")
    }

    #[test]
    fn steps_are_in_declared_order_items_by_index_and_finally_last() {
        let order = PlanOrder::of(&plan());
        let nodes: Vec<&str> = order.nodes().iter().map(NodeId::as_str).collect();
        assert_eq!(nodes[..3], ["prepare", "fetch", "stop[0]"]);
        assert_eq!(nodes[11..14], ["stop[9]", "stop[10]", "stop[11]"]);
        assert_eq!(nodes[14..], ["listed", "later", "verify", "note"]);

        let mut seen = vec![
            id("note"),
            id("later[10]"),
            id("verify"),
            id("later[2]"),
            id("later"),
            id("stop[11]"),
            id("stop[2]"),
            id("fetch"),
        ];
        order.sort_by_id(&mut seen, |i| i);
        let seen: Vec<&str> = seen.iter().map(NodeId::as_str).collect();
        assert_eq!(
            seen,
            [
                "fetch",
                "stop[2]",
                "stop[11]",
                "later",
                "later[2]",
                "later[10]",
                "verify",
                "note"
            ]
        );
    }

    #[test]
    fn ids_the_plan_does_not_know_go_last_by_name() {
        let order = PlanOrder::of(&plan());
        assert_eq!(
            order.compare(&id("verify"), &id("gone")),
            Ordering::Less,
            "a step of another version of the runbook"
        );
        assert_eq!(order.compare(&id("gone"), &id("lost")), Ordering::Less);
        let none = PlanOrder::default();
        let mut ids = vec![id("z"), id("b[10]"), id("b[2]"), id("a")];
        none.sort_by_id(&mut ids, |i| i);
        let ids: Vec<&str> = ids.iter().map(NodeId::as_str).collect();
        assert_eq!(ids, ["a", "b[2]", "b[10]", "z"]);
    }
}
