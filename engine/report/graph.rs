//! Exporting a plan's graph: Graphviz dot, Mermaid, or JSON for tools.

use std::fmt::Write as _;

use petgraph::visit::EdgeRef;

use crate::plan::{Phase, Plan, PlanNode, Role};

/// The formats `runbook graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub and GitLab markdown).
    Mermaid,
    /// Nodes and edges as JSON.
    Json,
}

fn label(node: &PlanNode) -> String {
    let mut label = node.id.to_string();
    let kind = match node.role {
        Role::CallEntry { .. } => "call".to_owned(),
        Role::DynamicFanOut => format!("{} (for_each at run time)", node.step.kind.key()),
        _ => node.step.kind.key().to_owned(),
    };
    let _ = write!(label, "\\n{kind}");
    if node.step.destructive {
        label.push_str(" ⚠ destructive");
    }
    if node.phase == Phase::Finally {
        label.push_str(" (finally)");
    }
    label
}

/// Renders the graph in a format.
pub fn render(plan: &Plan, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => dot(plan),
        GraphFormat::Mermaid => mermaid(plan),
        GraphFormat::Json => json(plan),
    }
}

fn dot(plan: &Plan) -> String {
    let mut out = format!(
        "digraph {:?} {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        plan.root().name
    );
    for &n in &plan.order {
        let node = &plan.graph[n];
        let style = match (node.step.destructive, node.phase) {
            (true, _) => ", color=red",
            (false, Phase::Finally) => ", style=dashed",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {:?} [label={:?}{style}];",
            node.id,
            label(node).replace("\\n", "\n")
        );
    }
    for e in plan.graph.edge_references() {
        let _ = writeln!(
            out,
            "  {:?} -> {:?};",
            plan.graph[e.source()].id,
            plan.graph[e.target()].id
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_id(index: usize) -> String {
    format!("n{index}")
}

fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for &n in &plan.order {
        let node = &plan.graph[n];
        let text = label(node).replace("\\n", "<br/>").replace('"', "#quot;");
        let _ = writeln!(out, "  {}[\"{text}\"]", mermaid_id(n.index()));
    }
    for e in plan.graph.edge_references() {
        let _ = writeln!(
            out,
            "  {} --> {}",
            mermaid_id(e.source().index()),
            mermaid_id(e.target().index())
        );
    }
    out
}

fn json(plan: &Plan) -> String {
    let nodes: Vec<serde_json::Value> = plan
        .order
        .iter()
        .map(|&n| {
            let node = &plan.graph[n];
            let needs: Vec<&str> = plan.dependencies(n).map(|d| plan.graph[d].id.as_str()).collect();
            serde_json::json!({
                "id": node.id,
                "kind": node.step.kind.key(),
                "phase": if node.phase == Phase::Main { "main" } else { "finally" },
                "needs": needs,
                "destructive": node.step.destructive,
                "safe": node.step.safe,
                "for_each": match node.role { Role::DynamicFanOut => Some("run time"), Role::Item { .. } => Some("static"), _ => None },
            })
        })
        .collect();
    let doc = serde_json::json!({ "runbook": plan.root().name, "nodes": nodes });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
