//! Disk and state faults: a full disk (the state dir on a 256 KiB tmpfs mounted in a mount
//! namespace of the test's own, `unshare --mount`, so nothing is left mounted whatever happens),
//! a step's log that cannot be written, and a run folder deleted while its run goes on. Every
//! I/O error names its path and the OS's reason; a log that lost lines is flagged in the journal
//! and in `show`; a journal that cannot be written stops the run before another step starts.

use std::fmt::Write as _;
use std::process::Command;

use crate::durable_support::{journal, kind, runbook, show, step};
use crate::run_support::Sandbox;

/// Steps after `fill`, each recording an output of some size, so that the journal soon needs
/// more room than the full disk has.
const STEPS: usize = 40;

fn full_disk_runbook() -> String {
    let mut yaml = String::from(
        r#"
name: full
steps:
  - id: fill
    run: 'head -c 4M /dev/zero > "$RUNBOOK_STATE_DIR/filler"; test -s "$RUNBOOK_STATE_DIR/filler"'
"#,
    );
    let filler = "x".repeat(300);
    for i in 0..STEPS {
        let after = if i == 0 {
            "fill".to_owned()
        } else {
            format!("s{}", i - 1)
        };
        let _ = writeln!(
            yaml,
            "  - id: s{i}\n    needs: [{after}]\n    run: 'echo s{i} >> ../trace; echo {filler}'\n    outputs: {{ o: \"{{{{ result.stdout }}}}\" }}"
        );
    }
    yaml
}

#[test]
fn a_full_disk_stops_the_run_with_the_os_reason_and_flags_lost_logs() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.join("work")).expect("a folder");
    sb.write("work/runbook.yaml", &full_disk_runbook());
    std::fs::create_dir(sb.join("state")).expect("a folder");
    let binary = assert_cmd::cargo::cargo_bin("runbook");
    // Everything that reads the state dir runs inside the namespace, where the tmpfs is; the
    // run's folder is copied out for the assertions.
    let script = r#"
set -u
mount -t tmpfs -o size=256k tmpfs "$RUNBOOK_STATE_DIR" || exit 99
cd work
"$RB" run runbook.yaml --run-id full --no-progress > ../run.out 2> ../run.err
echo $? > ../run.code
"$RB" show full --format json > ../show.json 2> ../show.err
"$RB" show full > ../show.txt 2>&1
cp -r "$RUNBOOK_STATE_DIR/runs/full" ../saved
"#;
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .current_dir(sb.path())
        .env("RB", &binary)
        .env("RUNBOOK_STATE_DIR", sb.join("state"))
        .env("NO_COLOR", "1")
        .status()
        .expect("unshare(1) runs");
    assert!(
        status.success(),
        "the namespace, the tmpfs and the copy work (root, or a user namespace): {status}"
    );
    let stderr = sb.read("run.err");
    assert_eq!(
        sb.read("run.code").trim(),
        "1",
        "{stderr}\n{}",
        sb.read("run.out")
    );
    assert!(
        stderr.contains("journal.jsonl") && stderr.contains("No space left on device"),
        "the error names the journal and the OS's reason: {stderr}"
    );

    let records = {
        let text = sb.read("saved/journal.jsonl");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect::<Vec<_>>()
    };
    let succeeded: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| kind(r) == "step_finished" && r["status"] == "succeeded")
        .collect();
    let traced = sb.read("trace").lines().count();
    assert!(traced < STEPS, "the run stopped early: {traced} steps ran");
    assert!(
        traced <= succeeded.len(),
        "no step started once the journal could not be written: {traced} ran, {} recorded",
        succeeded.len()
    );
    // Every step recorded succeeded either has its whole log or says why it has not.
    let mut flagged = 0;
    for record in succeeded.iter().filter(|r| r["id"] != "fill") {
        let id = record["id"].as_str().unwrap_or_default();
        let log = sb.read(&format!("saved/logs/{id}.log"));
        if let Some(lost) = record["log_lost"].as_str() {
            flagged += 1;
            assert!(
                lost.contains(&format!("{id}.log")) && lost.contains("No space left on device"),
                "{lost}"
            );
        } else {
            assert!(log.contains(&"x".repeat(300)), "{id}'s log is whole: {log}");
        }
    }
    assert!(flagged > 0, "logs were lost and flagged: {records:#?}");
    assert!(
        sb.read("show.txt").contains("log incomplete: "),
        "{}",
        sb.read("show.txt")
    );
    assert!(sb.read("show.json").contains("\"log_lost\""));
}

#[test]
fn a_log_that_cannot_be_written_is_flagged_in_the_journal_and_in_show() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: lost-log
steps:
  - id: break
    # The next step's log becomes a file that is always full.
    run: 'ln -s /dev/full "$RUNBOOK_STATE_DIR/runs/$RUNBOOK_RUN_ID/logs/talk.log"'
  - id: talk
    needs: [break]
    run: 'for i in 1 2 3; do echo "line $i"; done'
"#,
    );
    let run = sb.run(&["--run-id", "lost"]);
    run.expect_code(0);
    let finished = journal(&sb, "lost")
        .into_iter()
        .find(|r| kind(r) == "step_finished" && r["id"] == "talk")
        .expect("talk finished");
    let lost = finished["log_lost"].as_str().unwrap_or_default();
    assert!(
        lost.contains("talk.log") && lost.contains("No space left on device"),
        "the journal says the log lost lines, where and why: {finished}"
    );
    assert_eq!(step(&show(&sb, "lost"), "talk")["log_lost"], lost);
    assert!(
        step(&show(&sb, "lost"), "break")["log_lost"].is_null(),
        "a whole log is not flagged"
    );
    let text = runbook(&sb, &["show", "lost"]);
    assert!(
        text.stdout.contains("log incomplete: ") && text.stdout.contains("No space left on device"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_run_folder_deleted_mid_run_stops_the_run_instead_of_claiming_success() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: deleted
steps:
  - id: remove
    run: 'rm -rf "$RUNBOOK_STATE_DIR/runs/$RUNBOOK_RUN_ID"'
  - id: after
    needs: [remove]
    run: 'echo after > after.done'
"#,
    );
    let run = sb.run(&["--run-id", "gone"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("journal.jsonl was deleted while the run went on"),
        "{}",
        run.stderr
    );
    assert!(
        !sb.exists("after.done"),
        "no step started after the journal was lost"
    );
}
