//! `runbook state import`: the runs of a state folder copied into the database whole (journal,
//! runbook copies, params, logs), shown there as they were, left alone when imported twice, and
//! a paused one resumed from another machine without running again what it ran.

use serde_json::Value;

use crate::pg::{self, Cluster};
use crate::run_support::Sandbox;

fn book(world: &Sandbox) -> String {
    let trace = world.join("trace").display().to_string();
    format!(
        r#"name: imported
params:
  size: {{ type: int, default: 3 }}
steps:
  - id: prepare
    run: "echo prepare >> {trace}; for i in $(seq {{{{ params.size }}}}); do echo line $i; done"
    outputs:
      lines: "{{{{ result.stdout | trim }}}}"
  - id: quiet
    needs: [prepare]
    run: "true"
  - id: approve
    needs: [quiet]
    manual: "Look at the lines"
  - id: finish
    needs: [approve]
    run: "echo finish >> {trace}; echo finished"
"#
    )
}

#[track_caller]
fn shown(machine: &Sandbox, id: &str) -> Value {
    let run = machine.cli(&["show", id, "--format", "json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("show --format json is JSON")
}

#[test]
fn a_state_folders_runs_are_imported_whole_and_a_paused_one_resumes_from_the_database() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let world = Sandbox::new();
    // A laptop keeping its runs in its state folder: one run done, one paused.
    let laptop = Sandbox::new();
    laptop.runbook(&book(&world));
    laptop
        .run(&["--run-id", "done-1", "--approve-all", "--set", "size=2"])
        .expect_code(0);
    laptop.run(&["--run-id", "paused-1"]).expect_code(3);
    assert_eq!(world.read("trace"), "prepare\nfinish\nprepare\n");

    let bob = pg::machine("bob", &url);
    let state_dir = laptop.join(".runbook").display().to_string();
    let imported = bob.cli(&["state", "import", &state_dir]);
    imported.expect_code(0);
    for line in [
        "imported done-1 (succeeded; ",
        "imported paused-1 (paused; ",
        "2 runs imported into postgres://",
    ] {
        assert!(
            imported.stdout.contains(line),
            "{line:?}:\n{}",
            imported.stdout
        );
    }
    // The same run, read from either store.
    for id in ["done-1", "paused-1"] {
        assert_eq!(shown(&bob, id), shown(&laptop, id), "show {id}");
        let (there, here) = (laptop.cli(&["logs", id]), bob.cli(&["logs", id]));
        here.expect_code(0);
        assert_eq!(here.stdout, there.stdout, "logs {id}");
    }
    assert!(
        bob.cli(&["logs", "done-1", "prepare"])
            .stdout
            .contains("line 2"),
        "the step's own lines are there"
    );
    let runs = bob.cli(&["runs"]);
    assert!(
        runs.stdout
            .lines()
            .any(|l| l.starts_with("paused-1") && l.contains("paused")),
        "{}",
        runs.stdout
    );

    // Imported twice: left as it is.
    let again = bob.cli(&["state", "import", &state_dir, "paused-1"]);
    again.expect_code(0);
    assert!(
        again.stdout.contains("left paused-1: postgres://")
            && again.stdout.contains("0 runs imported into postgres://")
            && again.stdout.contains(", 1 there already"),
        "{}",
        again.stdout
    );
    assert_eq!(pg::journal(cluster, &url, "paused-1").len(), {
        let records = laptop.read(".runbook/runs/paused-1/journal.jsonl");
        records.lines().count()
    });

    // Bob, who has neither the runbook nor the folder, approves and resumes the paused run from
    // the database: what it ran is not run again.
    let resumed = bob.cli(&[
        "resume",
        "paused-1",
        "--approve",
        "approve",
        "--as",
        "bob",
        "--no-progress",
    ]);
    resumed.expect_code(0);
    assert_eq!(world.read("trace"), "prepare\nfinish\nprepare\nfinish\n");
    assert_eq!(shown(&bob, "paused-1")["status"], "succeeded");
    // The laptop's folder is only read.
    assert_eq!(shown(&laptop, "paused-1")["status"], "paused");
}

#[test]
fn a_folder_that_is_not_a_state_folder_is_refused() {
    let cluster = Cluster::shared();
    let bob = pg::machine("bob", &cluster.database());
    let refused = bob.cli(&["state", "import", "/nonexistent-state-folder"]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("/nonexistent-state-folder is not a state folder (it has no runs/ folder)"),
        "{}",
        refused.stderr
    );
}
