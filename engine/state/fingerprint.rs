//! Hashes that tell whether a runbook changed between a run and its resume: one for the files,
//! one per compiled step (insensitive to where in the file the step moved, to comments and to
//! titles). A step's hash is that of its canonical form ([`super::canonical`]), whose version
//! journals record beside the hashes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

pub use super::canonical::FINGERPRINT_VERSION;
use crate::plan::{Plan, PlanNode};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The sha256 of some bytes, in lowercase hex (a runbook file's version, as `sha256sum` prints
/// it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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

/// The hash of what a node does: the canonical form of its step and its item.
pub fn node_hash(node: &PlanNode) -> String {
    hex(&Sha256::digest(super::canonical::node(node).as_bytes()))[..16].to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(yaml: &str) -> Map<String, Value> {
        let file = crate::spec::SourceFile::new("fingerprint-test.yaml", yaml);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        node_hashes(&crate::plan::compile(runbook, None).expect("it compiles"))
    }

    #[test]
    fn a_step_keeps_its_fingerprint_when_it_moves_or_gets_a_title_and_not_when_it_changes() {
        let before = hashes(
            "name: f\nsteps:\n  - id: a\n    run: echo a\n  - id: b\n    needs: []\n    run: echo b\n    timeout: 1m\n",
        );
        let moved = hashes(
            "name: f\n# a comment\nsteps:\n  - id: b\n    name: The b step\n    needs: []\n    timeout: 60s\n    run: echo b\n  - id: a\n    run: echo a\n",
        );
        assert_eq!(before["b"], moved["b"]);
        let changed = hashes(
            "name: f\nsteps:\n  - id: a\n    run: echo a\n  - id: b\n    needs: []\n    run: echo b\n    timeout: 2m\n",
        );
        assert_eq!(before["a"], changed["a"]);
        assert_ne!(before["b"], changed["b"]);
        let blind = hashes(
            "name: f\nsteps:\n  - id: a\n    run: echo a\n  - id: b\n    needs: []\n    idempotent: false\n    run: echo b\n    timeout: 1m\n",
        );
        assert_ne!(before["b"], blind["b"]);
    }
}
