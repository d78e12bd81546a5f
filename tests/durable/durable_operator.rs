//! Finding and handling runs as an operator: the state folder found from below it, `latest`
//! and id prefixes, `stop` from another terminal, `prune`, `logs --follow` in one format, and a
//! resumed run's accounting of attempts.

use std::time::Duration;

use crate::durable_support::{Background, run_dir, runbook, show, step, wait_until};
use crate::run_support::{Sandbox, unique};

const START: Duration = Duration::from_secs(20);
const END: Duration = Duration::from_secs(30);

fn long_runbook(sb: &Sandbox) -> String {
    let marker = format!("300.{}", unique());
    sb.runbook(&format!(
        "name: long\nsteps:\n  - id: wait\n    run: 'echo waiting; sleep {marker}'\n  - id: after\n    run: touch after-ran\n"
    ));
    marker
}

fn started(sb: &Sandbox, id: &str) -> bool {
    std::fs::read_to_string(run_dir(sb, id).join("logs/wait.log"))
        .is_ok_and(|l| l.contains("waiting"))
}

#[test]
fn stop_ends_a_run_driven_from_another_terminal_as_interrupted_and_resumable() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "300");
    long_runbook(&sb);
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "s1", "--no-progress"],
    );
    wait_until("the step to start", START, || started(&sb, "s1"));
    let stopped = runbook(&sb, &["stop", "s1"]);
    stopped.expect_code(0);
    assert!(
        stopped.stdout.contains("run s1 stopped: interrupted")
            && stopped.stdout.contains("runbook resume s1"),
        "{}",
        stopped.all()
    );
    let ended = run.wait(END);
    ended.expect_code(130);
    assert_eq!(show(&sb, "s1")["status"], "interrupted");
    assert!(!sb.exists("after-ran"));

    let again = runbook(&sb, &["stop", "s1"]);
    again.expect_code(2);
    assert!(again.stderr.contains("is not running"), "{}", again.stderr);
    let unknown = runbook(&sb, &["stop", "nope"]);
    unknown.expect_code(2);
}

#[test]
fn stop_refuses_a_run_driven_on_another_machine() {
    let sb = Sandbox::new();
    long_runbook(&sb);
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "m1", "--no-progress"],
    );
    wait_until("the step to start", START, || started(&sb, "m1"));
    let path = run_dir(&sb, "m1").join("holder.json");
    let mut holder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("holder.json")).expect("JSON");
    holder["host"] = "db-elsewhere".into();
    std::fs::write(&path, holder.to_string()).expect("holder.json can be written");
    let refused = runbook(&sb, &["stop", "m1"]);
    refused.expect_code(4);
    assert!(
        refused
            .stderr
            .contains("runs on db-elsewhere, not on this machine"),
        "{}",
        refused.stderr
    );
    run.kill();
}

#[test]
fn prune_removes_old_succeeded_runs_and_keeps_resumable_ones_without_all() {
    let sb = Sandbox::new();
    sb.write("ok.yaml", "name: ok\nsteps:\n  - id: a\n    run: echo a\n");
    sb.write(
        "bad.yaml",
        "name: bad\nsteps:\n  - id: a\n    run: exit 1\n",
    );
    sb.run_file("ok.yaml", &["--run-id", "ok1"]).expect_code(0);
    sb.run_file("bad.yaml", &["--run-id", "bad1"])
        .expect_code(1);
    std::thread::sleep(Duration::from_millis(50));

    let young = runbook(&sb, &["prune", "--older-than", "1h"]);
    young.expect_code(0);
    assert!(young.stdout.contains("removed 0 runs"), "{}", young.stdout);

    let dry = runbook(&sb, &["prune", "--older-than", "10ms", "--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("would remove ok1"), "{}", dry.stdout);
    assert!(run_dir(&sb, "ok1").exists());

    let pruned = runbook(&sb, &["prune", "--older-than", "10ms"]);
    pruned.expect_code(0);
    assert!(pruned.stdout.contains("removed ok1"), "{}", pruned.stdout);
    assert!(pruned.stdout.contains("kept 1 failed"), "{}", pruned.stdout);
    assert!(!run_dir(&sb, "ok1").exists());
    assert!(run_dir(&sb, "bad1").exists(), "a failed run is kept");

    let all = runbook(&sb, &["prune", "--older-than", "10ms", "--all"]);
    all.expect_code(0);
    assert!(!run_dir(&sb, "bad1").exists(), "{}", all.stdout);
}

#[test]
fn prune_never_removes_a_run_that_is_driven() {
    let sb = Sandbox::new();
    long_runbook(&sb);
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "d1", "--no-progress"],
    );
    wait_until("the step to start", START, || started(&sb, "d1"));
    std::thread::sleep(Duration::from_millis(50));
    let pruned = runbook(&sb, &["prune", "--older-than", "10ms", "--all"]);
    pruned.expect_code(0);
    assert!(run_dir(&sb, "d1").exists(), "{}", pruned.all());
    run.kill();
}

#[test]
fn runs_are_found_from_any_folder_below_the_state_folder_and_by_latest_or_prefix() {
    let sb = Sandbox::new();
    sb.runbook("name: found\nsteps:\n  - id: a\n    run: echo a\n");
    let local = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = sb.command(args);
        cmd.env_remove("RUNBOOK_STATE_DIR").current_dir(dir);
        let output = cmd.output().expect("the runbook binary starts");
        crate::run_support::Run::new(&output, Duration::ZERO)
    };
    local(
        sb.path(),
        &[
            "run",
            "runbook.yaml",
            "--run-id",
            "night-1",
            "--no-progress",
        ],
    )
    .expect_code(0);
    local(
        sb.path(),
        &[
            "run",
            "runbook.yaml",
            "--run-id",
            "night-2",
            "--no-progress",
        ],
    )
    .expect_code(0);
    assert!(sb.join(".runbook/runs/night-1").is_dir());

    let below = sb.join("ops/restore");
    std::fs::create_dir_all(&below).expect("folders");
    let listed = local(&below, &["runs"]);
    listed.expect_code(0);
    assert!(
        listed.stdout.contains("night-1") && listed.stdout.contains("night-2"),
        "{}",
        listed.stdout
    );
    let latest = local(&below, &["show", "latest", "--format", "json"]);
    latest.expect_code(0);
    assert!(
        latest.stdout.contains("\"run_id\": \"night-2\""),
        "{}",
        latest.stdout
    );
    let last = local(&below, &["logs", "last", "a"]);
    last.expect_code(0);
    let prefix = local(&below, &["show", "night-1"]);
    prefix.expect_code(0);
    let ambiguous = local(&below, &["show", "night"]);
    ambiguous.expect_code(2);
    assert!(
        ambiguous.stderr.contains("night-1") && ambiguous.stderr.contains("night-2"),
        "{}",
        ambiguous.stderr
    );

    let elsewhere = tempfile::tempdir().expect("a folder");
    let none = local(elsewhere.path(), &["runs"]);
    none.expect_code(0);
    assert!(
        none.stdout.contains("no .runbook folder in")
            && none
                .stdout
                .contains(&elsewhere.path().display().to_string()),
        "says where it looked: {}",
        none.stdout
    );
    let missing = local(elsewhere.path(), &["show", "latest"]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("no .runbook folder in"),
        "{}",
        missing.stderr
    );
}

#[test]
fn logs_follow_keeps_one_format_from_the_first_line_to_the_last() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: ticks
steps:
  - id: tick
    run: "echo tick 1; while ! test -e go; do sleep 0.05; done; echo tick 2"
  - id: tock
    run: "echo tock"
"#,
    );
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "t1", "--no-progress"],
    );
    wait_until("the first tick", START, || {
        std::fs::read_to_string(run_dir(&sb, "t1").join("logs/tick.log"))
            .is_ok_and(|l| l.contains("tick 1"))
    });
    let one = Background::start(&sb, "one", &["logs", "t1", "tick", "--follow"]);
    let all = Background::start(&sb, "all", &["logs", "t1", "--follow"]);
    std::thread::sleep(Duration::from_millis(500));
    sb.write("go", "");
    run.wait(END).expect_code(0);

    let one = one.wait(Duration::from_secs(10));
    one.expect_code(0);
    let lines: Vec<&str> = one
        .stdout
        .lines()
        .filter(|l| !l.starts_with("--- "))
        .collect();
    assert_eq!(lines, ["tick 1", "tick 2"], "{}", one.stdout);

    let all = all.wait(Duration::from_secs(10));
    all.expect_code(0);
    assert!(!all.stdout.contains(" | "), "{}", all.stdout);
    let shown: Vec<&str> = all
        .stdout
        .lines()
        .filter(|l| !l.starts_with("--- "))
        .collect();
    assert_eq!(
        shown,
        ["=== tick", "tick 1", "tick 2", "=== tock", "tock"],
        "{}",
        all.stdout
    );
}

#[test]
fn logs_follow_shows_a_silent_steps_start_from_the_journal_and_its_first_line_once() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: late
steps:
  - id: hold
    run: "while ! test -e go; do sleep 0.05; done; echo late"
  - id: after
    run: "true"
"#,
    );
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "l1", "--no-progress"],
    );
    wait_until("hold started", START, || {
        std::fs::read_to_string(run_dir(&sb, "l1").join("journal.jsonl"))
            .is_ok_and(|j| j.contains(r#""type":"step_started","id":"hold""#))
    });
    assert!(
        !run_dir(&sb, "l1").join("logs/hold.log").exists(),
        "nothing printed yet: no file"
    );
    let follow = Background::start(&sb, "follow", &["logs", "l1", "--follow"]);
    std::thread::sleep(Duration::from_millis(700));
    sb.write("go", "");
    run.wait(END).expect_code(0);
    let follow = follow.wait(Duration::from_secs(10));
    follow.expect_code(0);
    let lines = crate::run_support::log_lines(&follow.stdout);
    assert_eq!(
        lines,
        [
            "=== hold",
            "--- attempt 1: while ! test -e go; do sleep 0.05; done; echo late",
            "late",
            "--- succeeded",
            "=== after",
            "--- attempt 1: true",
            "--- succeeded",
        ],
        "{}",
        follow.stdout
    );
}

#[test]
fn resume_accounting_counts_attempts_across_processes_each_with_its_own_times() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "300");
    sb.runbook(
        "name: again\nsteps:\n  - id: wait\n    run: 'echo waiting; test -e done || { touch done; sleep 30; }'\n  - id: after\n    run: echo after\n",
    );
    let mut run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "a1", "--no-progress"],
    );
    run.wait_until("the step to start", START, || {
        started(&sb, "a1") && sb.exists("done")
    });
    run.signal(nix::sys::signal::Signal::SIGINT);
    let interrupted = run.wait(END);
    interrupted.expect_code(130);
    let row = interrupted
        .lines()
        .into_iter()
        .find(|l| l.starts_with("wait ") && l.contains("interrupted"))
        .unwrap_or_else(|| panic!("a summary row: {}", interrupted.stdout))
        .to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..3],
        ["wait", "interrupted", "1"],
        "{}",
        interrupted.stdout
    );
    let never = interrupted
        .lines()
        .into_iter()
        .find(|l| l.starts_with("after "))
        .unwrap_or_else(|| panic!("the step that never ran has a row: {}", interrupted.stdout))
        .to_owned();
    assert!(never.contains("not run"), "{never}");

    let resumed = runbook(&sb, &["resume", "a1", "--no-progress"]);
    resumed.expect_code(0);
    assert!(
        resumed.has_line_starting("start wait attempt 2:"),
        "the resumed attempt follows the interrupted one: {}",
        resumed.stdout
    );
    let row = resumed
        .lines()
        .into_iter()
        .find(|l| l.starts_with("wait ") && l.contains("succeeded"))
        .unwrap_or_else(|| panic!("a summary row: {}", resumed.stdout))
        .to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], ["wait", "succeeded", "2"], "{}", resumed.stdout);

    let shown = show(&sb, "a1");
    let wait = step(&shown, "wait");
    assert_eq!(wait["attempts"], 2, "{shown:#}");
    let history = wait["history"].as_array().expect("a history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["outcome"], "interrupted", "{shown:#}");
    assert!(
        history[0]["finished_at"].as_str() <= history[1]["started_at"].as_str(),
        "each attempt keeps its own times: {shown:#}"
    );

    let log = runbook(&sb, &["logs", "a1", "wait"]);
    log.expect_code(0);
    let headers: Vec<&str> = log
        .stdout
        .lines()
        .filter(|l| l.starts_with("--- "))
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    assert_eq!(headers.len(), 4, "{}", log.stdout);
    assert!(headers[0].starts_with("attempt 1:"), "{}", log.stdout);
    assert!(headers[1].starts_with("interrupted"), "{}", log.stdout);
    assert!(headers[2].starts_with("attempt 2:"), "{}", log.stdout);
    assert!(headers[3].starts_with("succeeded"), "{}", log.stdout);

    // `show`'s table lines up whatever the ids' lengths.
    let table = runbook(&sb, &["show", "a1"]);
    let status_columns: Vec<Option<usize>> = table
        .stdout
        .lines()
        .filter(|l| l.starts_with("wait ") || l.starts_with("after "))
        .map(|l| l.find("succeeded"))
        .collect();
    assert_eq!(status_columns.len(), 2, "{}", table.stdout);
    assert_eq!(status_columns[0], status_columns[1], "{}", table.stdout);
}
