//! Step fingerprints are stored in journals: a resume compares them with the runbook as it is
//! now to tell which steps changed. A build that computed them differently would report
//! unchanged steps as changed after an upgrade in the middle of an incident. These snapshots pin
//! the fingerprint of every node of every valid fixture and shipped runbook
//! (`tests/cli/snapshots/fingerprint/<folder>__<name>.snap`): a change to the canonical form
//! fails here, and is made on purpose with a new `FINGERPRINT_VERSION`.
//!
//! To review: `INSTA_UPDATE=always cargo test --test cli fingerprint::`, then `git diff`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use runbook::state::fingerprint;

/// Every `.yaml` file below `folder` (relative to the repository root), sorted.
fn runbooks(folder: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join(folder), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no runbooks in {folder}");
    files
}

/// `ID  HASH` per node, in plan order.
fn fingerprints(path: &Path) -> String {
    let runbook = runbook::spec::load(path)
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    let plan = runbook::plan::compile(runbook, None)
        .unwrap_or_else(|e| panic!("{} does not compile: {e:?}", path.display()));
    let mut out = format!("fingerprint version {}\n", fingerprint::FINGERPRINT_VERSION);
    for &n in &plan.order {
        let node = &plan.graph[n];
        let _ = writeln!(out, "{}  {}", fingerprint::node_hash(node), node.id);
    }
    out
}

/// One snapshot per runbook; the failures are listed together at the end.
fn check(folder: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for path in runbooks(folder) {
        let relative = path.strip_prefix(root).expect("below the repository root");
        let name = relative
            .with_extension("")
            .to_string_lossy()
            .replace(['/', '\\'], "__");
        let text = fingerprints(&path);
        let checked = std::panic::catch_unwind(|| {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path("snapshots/fingerprint");
            settings.set_prepend_module_to_snapshot(false);
            settings.set_input_file(&path);
            settings.set_omit_expression(true);
            settings.bind(|| insta::assert_snapshot!(name.clone(), text));
        });
        if checked.is_err() {
            failures.push(relative.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "step fingerprints changed (see the diffs above); a change on purpose needs a new FINGERPRINT_VERSION:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fixture_keeps_its_step_fingerprints() {
    check("tests/fixtures/valid");
}

#[test]
fn every_shipped_runbook_keeps_its_step_fingerprints() {
    check("runbooks");
}
