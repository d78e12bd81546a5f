//! `run --only STEP…` and `run --from STEP`: an operator redoes one part of a runbook by hand.
//! What the chosen steps depend on is named and must be confirmed; the steps left out are
//! recorded as skipped, with why, and a resume never runs them.

use std::time::Duration;

use crate::pty::Terminal;
use crate::run_support::Sandbox;

const RESTORE: &str = r"
name: restore
steps:
  - id: fetch
    run: touch fetched
  - id: stop
    for_each: [a, b]
    run: touch stopped-{{ item }}
  - id: restore
    run: touch restored
  - id: verify
    run: touch verified
  - id: aside
    needs: []
    run: touch aside
finally:
  - id: note
    run: touch noted
";

#[test]
fn only_runs_the_steps_named_after_the_operator_confirms_what_they_depend_on() {
    let sb = Sandbox::new();
    sb.runbook(RESTORE);
    let unconfirmed = sb.run(&["--only", "restore", "--run-id", "o0"]);
    unconfirmed.expect_code(2);
    assert!(
        unconfirmed
            .stderr
            .contains("they depend on fetch, stop, which will not run")
            && unconfirmed.stderr.contains("--yes confirms it"),
        "{}",
        unconfirmed.stderr
    );
    assert!(!sb.exists("restored"));

    let run = sb.run(&["--only", "restore", "--yes", "--run-id", "o1"]);
    run.expect_code(0);
    assert!(sb.exists("restored"));
    for not_run in ["fetched", "stopped-a", "verified", "aside", "noted"] {
        assert!(!sb.exists(not_run), "{not_run}: {}", run.stdout);
    }
    run.expect_succeeded(&["restore"]);
    for left_out in ["fetch", "stop[0]", "stop[1]", "verify", "aside", "note"] {
        assert_eq!(run.status_of(left_out), Some("skipped"), "{left_out}");
    }
    // The journal says why, so `show` does, and a resume has nothing to run.
    let shown = sb.cli(&["show", "o1"]);
    assert!(
        shown
            .stdout
            .contains("left out: the run was started with --only restore"),
        "{}",
        shown.stdout
    );
    let resumed = sb.cli(&["resume", "o1", "--no-progress"]);
    resumed.expect_code(0);
    assert!(!sb.exists("fetched") && !sb.exists("verified"));

    let unknown = sb.run(&["--only", "restor", "--yes"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("no step `restor`") && unknown.stderr.contains("restore"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn from_runs_the_step_what_depends_on_it_and_finally() {
    let sb = Sandbox::new();
    sb.runbook(RESTORE);
    let run = sb.run(&["--from", "restore", "--yes", "--run-id", "f1"]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("--from restore: running restore, verify, note"),
        "{}",
        run.stderr
    );
    for ran in ["restored", "verified", "noted"] {
        assert!(sb.exists(ran), "{ran}: {}", run.stdout);
    }
    for not_run in ["fetched", "stopped-a", "aside"] {
        assert!(!sb.exists(not_run), "{not_run}: {}", run.stdout);
    }
    // A step that nothing chosen depends on needs no confirmation.
    let alone = sb.run(&["--only", "aside", "--run-id", "f2"]);
    alone.expect_code(0);
    assert!(sb.exists("aside"));
}

#[test]
fn only_asks_at_the_terminal_before_taking_what_it_depends_on_as_in_place() {
    let sb = Sandbox::new();
    sb.runbook(RESTORE);
    let mut cmd = sb.command(["run", "runbook.yaml", "--only", "verify", "--no-progress"]);
    cmd.env("TERM", "xterm");
    let mut term = Terminal::start(cmd);
    term.wait_for("Go on? [yes/no]", 1, Duration::from_secs(20));
    assert!(
        term.screen()
            .contains("fetch, stop, restore, which will not run"),
        "{}",
        term.screen()
    );
    assert!(!sb.exists("verified"));
    term.type_keys("yes\n");
    let (code, screen) = term.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{screen}");
    assert!(sb.exists("verified") && !sb.exists("restored"), "{screen}");
}
