//! Hashes that tell whether a runbook changed between a run and its resume: one for the files,
//! one per compiled step (insensitive to where in the file the step moved).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::plan::{Plan, PlanNode};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hash of the runbook files' texts, in plan order.
pub fn files_hash(plan: &Plan) -> String {
    let mut hasher = Sha256::new();
    for runbook in &plan.runbooks {
        hasher.update(runbook.file.text.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// The hash of what a node does: its step with every source position removed, and its item.
pub fn node_hash(node: &PlanNode) -> String {
    static SPAN: OnceLock<regex::Regex> = OnceLock::new();
    let span = SPAN.get_or_init(|| {
        regex::Regex::new(r"Span \{ offset: \d+, len: \d+ \}").expect("a constant, valid pattern")
    });
    let text = format!("{:?}|{:?}", node.step, node.role);
    let stable = span.replace_all(&text, "Span");
    hex(&Sha256::digest(stable.as_bytes()))[..16].to_owned()
}

/// Every node's hash, by id.
pub fn node_hashes(plan: &Plan) -> Map<String, Value> {
    plan.graph
        .node_weights()
        .map(|n| (n.id.to_string(), Value::String(node_hash(n))))
        .collect()
}

/// How a runbook changed since a run began.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Steps that are new.
    pub added: Vec<String>,
    /// Steps that are gone.
    pub removed: Vec<String>,
    /// Steps whose definition differs.
    pub changed: Vec<String>,
}

impl Changes {
    /// Compares the hashes recorded at run start with a new plan's.
    pub fn between(recorded: &Map<String, Value>, now: &Map<String, Value>) -> Self {
        let old: BTreeMap<&String, &Value> = recorded.iter().collect();
        let new: BTreeMap<&String, &Value> = now.iter().collect();
        Self {
            added: new
                .keys()
                .filter(|k| !old.contains_key(*k))
                .map(|k| (*k).clone())
                .collect(),
            removed: old
                .keys()
                .filter(|k| !new.contains_key(*k))
                .map(|k| (*k).clone())
                .collect(),
            changed: new
                .iter()
                .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
                .map(|(k, _)| (*k).clone())
                .collect(),
        }
    }

    /// Whether anything differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line per change, for people.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (mark, list) in [
            ("+ added  ", &self.added),
            ("- removed", &self.removed),
            ("~ changed", &self.changed),
        ] {
            for id in list {
                let _ = writeln!(out, "  {mark} {id}");
            }
        }
        out
    }
}
