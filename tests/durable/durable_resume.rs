//! `runbook resume` end to end: steps in flight when the process died (idempotent, with a
//! `check`, or needing confirmation), Ctrl-C, a runbook changed between run and resume, and
//! manual steps approved or rejected, `show` in plan order, a resume that needs only the secrets of
//! steps still to run and takes new values for params no finished step read.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::durable_support::{
    Background, group_alive, in_flight, journal, kill_group, kind, runbook, show, step, wait_until,
};
use crate::run_support::Sandbox;

const START: Duration = Duration::from_secs(20);
const END: Duration = Duration::from_secs(30);

/// Lines of the sandbox's `trace` file.
fn trace(sb: &Sandbox) -> Vec<String> {
    sb.read("trace").lines().map(str::to_owned).collect()
}

/// The pid a step wrote (its shell: the leader of the step's process group).
fn step_pid(sb: &Sandbox, file: &str) -> i32 {
    wait_until(&format!("{file} to be written"), START, || {
        sb.read(file).trim().parse::<i32>().is_ok()
    });
    sb.read(file).trim().parse().expect("a pid")
}

/// `runbook run runbook.yaml --run-id ID --no-progress`, started in the background.
fn start_run(sb: &Sandbox, id: &str) -> Background {
    Background::start(
        sb,
        "first",
        &["run", "runbook.yaml", "--run-id", id, "--no-progress"],
    )
}

/// A run killed (SIGKILL) while `step` sleeps; the step's own processes are killed too, as
/// after a reboot. Returns the run's journal length at the kill.
fn killed_mid_step(sb: &Sandbox, id: &str, step: &str) -> usize {
    let bg = start_run(sb, id);
    let pid = step_pid(sb, &format!("{step}.pid"));
    bg.kill();
    kill_group(pid);
    let records = journal(sb, id);
    assert!(
        in_flight(&records, step),
        "{step} is in flight in the journal: {records:#?}"
    );
    records.len()
}

#[test]
fn an_in_flight_step_that_is_not_idempotent_waits_for_confirmation() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: blind
steps:
  - id: prepare
    run: "echo prepare >> trace"
  - id: transfer
    idempotent: false
    run: "echo transfer >> trace; echo $$ > transfer.pid; test -e fast || sleep 30"
  - id: report
    run: "echo report >> trace"
"#,
    );
    let before = killed_mid_step(&sb, "r1", "transfer");
    assert_eq!(trace(&sb), ["prepare", "transfer"]);

    let refused = runbook(&sb, &["resume", "r1", "--no-progress"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("transfer") && refused.stderr.contains("--yes"),
        "the refusal names the step and the way on: {}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("prepare"),
        "only the step in doubt is named: {}",
        refused.stderr
    );
    assert_eq!(trace(&sb), ["prepare", "transfer"], "nothing ran");
    assert_eq!(journal(&sb, "r1").len(), before, "nothing was journaled");

    sb.write("fast", "");
    runbook(&sb, &["resume", "r1", "--yes", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["prepare", "transfer", "transfer", "report"]);
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(step(&shown, "transfer")["status"], "succeeded");
}

#[test]
fn an_in_flight_step_whose_check_says_done_is_not_run_again() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: checked
steps:
  - id: transfer
    idempotent: false
    check: { run: "test -e transfer.done" }
    run: "echo transfer >> trace; touch transfer.done; echo $$ > transfer.pid; test -e fast || sleep 30"
  - id: report
    run: "echo report >> trace"
"#,
    );
    killed_mid_step(&sb, "r1", "transfer");
    // No --yes: the check decides, and it says the transfer took effect.
    let resumed = runbook(&sb, &["resume", "r1", "--no-progress"]);
    resumed.expect_code(0);
    assert!(
        resumed.stderr.contains("transfer") && resumed.stderr.contains("check"),
        "the resume says why the in-flight step is handled: {}",
        resumed.stderr
    );
    assert_eq!(trace(&sb), ["transfer", "report"]);
    let shown = show(&sb, "r1");
    let transfer = step(&shown, "transfer");
    assert_eq!(transfer["status"], "succeeded");
    assert!(
        transfer["reason"]
            .as_str()
            .is_some_and(|r| r.contains("check")),
        "{transfer}"
    );
}

#[test]
fn an_in_flight_step_whose_check_says_not_done_runs_again_without_asking() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: checked
steps:
  - id: transfer
    idempotent: false
    check: { run: "test -e transfer.done" }
    run: "echo transfer >> trace; echo $$ > transfer.pid; test -e fast && touch transfer.done || sleep 30"
"#,
    );
    killed_mid_step(&sb, "r1", "transfer");
    sb.write("fast", "");
    runbook(&sb, &["resume", "r1", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["transfer", "transfer"]);
}

#[test]
fn ctrl_c_stops_the_step_records_the_run_interrupted_and_resume_finishes_it() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "2000");
    sb.runbook(
        r#"
name: interrupted
steps:
  - id: first
    run: "echo first >> trace"
  - id: long
    run: "echo long >> trace; echo $$ > long.pid; test -e fast || sleep 30"
  - id: last
    run: "echo last >> trace"
finally:
  - id: cleanup
    run: "echo cleanup >> trace"
"#,
    );
    let bg = start_run(&sb, "r1");
    let pid = step_pid(&sb, "long.pid");
    bg.signal(nix::sys::signal::Signal::SIGINT);
    let run = bg.wait(END);
    run.expect_code(130);
    assert!(
        run.elapsed < Duration::from_secs(15),
        "Ctrl-C stops the step at once, not after its 30 s sleep: {:?}",
        run.elapsed
    );
    assert!(
        !group_alive(pid),
        "the step's process group is gone after exit 130"
    );
    assert_eq!(
        trace(&sb),
        ["first", "long"],
        "`finally` does not run at an interrupt: resume continues the run"
    );
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "interrupted");
    assert_eq!(step(&shown, "first")["status"], "succeeded");
    assert_ne!(
        step(&shown, "long")["status"],
        "running",
        "nothing runs in an interrupted run"
    );
    let records = journal(&sb, "r1");
    assert_eq!(
        records.last().map(|r| r["status"].clone()),
        Some("interrupted".into()),
        "{records:#?}"
    );

    sb.write("fast", "");
    let resumed = runbook(&sb, &["resume", "r1", "--no-progress"]);
    resumed.expect_code(0);
    assert_eq!(trace(&sb), ["first", "long", "long", "last", "cleanup"]);
    assert_eq!(show(&sb, "r1")["status"], "succeeded");
}

const V1: &str = r#"
name: change
steps:
  - id: a
    run: "echo a1 >> trace"
  - id: b
    run: "echo b1 >> trace; exit 1"
  - id: c
    run: "echo c1 >> trace"
"#;

const V2: &str = r#"
name: change
steps:
  - id: a
    run: "echo a2 >> trace"
  - id: b
    run: "echo b2 >> trace"
  - id: c
    run: "echo c1 >> trace"
  - id: d
    run: "echo d2 >> trace"
"#;

#[test]
fn a_changed_runbook_is_refused_unless_allowed_and_succeeded_steps_stay_done() {
    let sb = Sandbox::new();
    sb.runbook(V1);
    sb.run(&["--run-id", "r1"]).expect_code(1);
    assert_eq!(trace(&sb), ["a1", "b1"]);
    sb.runbook(V2);

    let refused = runbook(&sb, &["resume", "r1", "--no-progress"]);
    refused.expect_code(2);
    for line in ["~ changed a", "~ changed b", "+ added", "d"] {
        assert!(
            refused.stderr.contains(line),
            "the refusal lists `{line}`: {}",
            refused.stderr
        );
    }
    assert!(
        !refused.stderr.contains("changed c"),
        "c did not change: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(trace(&sb), ["a1", "b1"], "nothing ran");

    let resumed = runbook(&sb, &["resume", "r1", "--allow-changed", "--no-progress"]);
    resumed.expect_code(0);
    assert_eq!(
        trace(&sb),
        ["a1", "b1", "b2", "c1", "d2"],
        "a succeeded before the change and stays done; b, c and the new d run with the new version"
    );
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(step(&shown, "d")["status"], "succeeded");

    // The run follows the version it was allowed to continue with: no second --allow-changed.
    // --rerun: the step and everything after it that depends on it, not what comes before.
    let rerun = runbook(&sb, &["resume", "r1", "--rerun", "b", "--no-progress"]);
    rerun.expect_code(0);
    assert_eq!(
        trace(&sb)[5..],
        ["b2", "c1", "d2"],
        "b and its dependents ran again, a did not"
    );
}

#[test]
fn rerun_of_a_changed_step_that_succeeded_runs_its_new_version() {
    let sb = Sandbox::new();
    sb.runbook(V1);
    sb.run(&["--run-id", "r1"]).expect_code(1);
    sb.runbook(V2);
    runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--allow-changed",
            "--rerun",
            "a",
            "--no-progress",
        ],
    )
    .expect_code(0);
    assert_eq!(trace(&sb), ["a1", "b1", "a2", "b2", "c1", "d2"]);
}

#[test]
fn resume_of_an_unknown_run_or_step_says_so() {
    let sb = Sandbox::new();
    sb.runbook(V1);
    sb.run(&["--run-id", "r1"]).expect_code(1);
    let missing = runbook(&sb, &["resume", "nope", "--no-progress"]);
    missing.expect_code(2);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    let unknown = runbook(&sb, &["resume", "r1", "--rerun", "bb", "--no-progress"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("`bb`") && unknown.stderr.contains("`b`"),
        "names the step and suggests one: {}",
        unknown.stderr
    );
}

const GATE: &str = r#"
name: gate
steps:
  - id: before
    run: "echo before >> trace"
  - id: go_ahead
    manual: "Check that snapshot {{ run.id }} is the one to restore"
  - id: after
    run: "echo after >> trace"
finally:
  - id: cleanup
    run: "echo cleanup {{ run.status }} >> trace"
"#;

#[test]
fn a_paused_run_continues_when_its_manual_step_is_approved() {
    let sb = Sandbox::new();
    sb.runbook(GATE);
    let paused = sb.run(&["--run-id", "r1"]);
    paused.expect_code(3);
    assert!(
        paused
            .all()
            .contains("runbook resume r1 --approve go_ahead"),
        "the pause says how to go on: {}",
        paused.all()
    );
    assert_eq!(trace(&sb), ["before"], "`finally` waits for the run's end");
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "paused");
    assert_eq!(step(&shown, "go_ahead")["status"], "pending");

    let wrong = runbook(
        &sb,
        &["resume", "r1", "--approve", "after", "--no-progress"],
    );
    wrong.expect_code(2);
    assert!(
        wrong.stderr.contains("not waiting for approval"),
        "{}",
        wrong.stderr
    );

    runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "go_ahead",
            "--as",
            "alice",
            "--no-progress",
        ],
    )
    .expect_code(0);
    assert_eq!(trace(&sb), ["before", "after", "cleanup succeeded"]);
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(step(&shown, "go_ahead")["status"], "succeeded");
    let approvals = shown["approvals"].as_array().expect("approvals listed");
    assert_eq!(approvals.len(), 1, "{shown:#}");
    assert_eq!(approvals[0]["id"], "go_ahead");
    assert_eq!(approvals[0]["approved"], true);
    assert_eq!(approvals[0]["by"], "alice");
    let text = runbook(&sb, &["show", "r1"]);
    assert!(
        text.stdout.contains("go_ahead approved by alice"),
        "{}",
        text.stdout
    );
    let log = runbook(&sb, &["logs", "r1", "go_ahead"]);
    log.expect_code(0);
    assert!(
        log.stdout
            .contains("Check that snapshot r1 is the one to restore"),
        "the log has the instructions: {}",
        log.stdout
    );
    assert!(
        log.stdout.contains("approved by alice"),
        "the log says who approved: {}",
        log.stdout
    );
}

#[test]
fn a_rejected_manual_step_fails_the_run_and_runs_finally() {
    let sb = Sandbox::new();
    sb.runbook(GATE);
    sb.run(&["--run-id", "r1"]).expect_code(3);
    let rejected = runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--reject",
            "go_ahead",
            "--reason",
            "wrong snapshot",
            "--as",
            "bob",
            "--no-progress",
        ],
    );
    rejected.expect_code(1);
    assert!(
        rejected.all().contains("go_ahead"),
        "the failure names the step: {}",
        rejected.all()
    );
    assert_eq!(trace(&sb), ["before", "cleanup failed"]);
    let shown = show(&sb, "r1");
    assert_eq!(shown["status"], "failed");
    assert_eq!(step(&shown, "go_ahead")["status"], "failed");
    assert_eq!(step(&shown, "after")["status"], "pending", "{shown:#}");
    let approval = &shown["approvals"][0];
    assert_eq!(approval["approved"], false);
    assert_eq!(approval["by"], "bob");
    assert_eq!(approval["reason"], "wrong snapshot");
    let log = runbook(&sb, &["logs", "r1", "go_ahead"]);
    log.expect_code(0);
    for what in [
        "Check that snapshot r1",
        "rejected by bob",
        "wrong snapshot",
    ] {
        assert!(
            log.stdout.contains(what),
            "the log has `{what}`: {}",
            log.stdout
        );
    }
    let all = runbook(&sb, &["logs", "r1"]);
    assert!(
        all.stdout.contains("=== before") && all.stdout.contains("=== cleanup"),
        "{}",
        all.stdout
    );
    let journaled = journal(&sb, "r1");
    assert!(
        journaled
            .iter()
            .any(|r| kind(r) == "approval" && r["reason"] == "wrong snapshot"),
        "{journaled:#?}"
    );
}

#[test]
fn a_run_started_by_an_older_build_is_compared_by_its_files_only() {
    let sb = Sandbox::new();
    sb.runbook(V1);
    sb.run(&["--run-id", "r1"]).expect_code(1);
    // A journal written before step fingerprints were versioned: its step hashes are of
    // another form and say nothing about this build's.
    let path = crate::durable_support::run_dir(&sb, "r1").join("journal.jsonl");
    let text = std::fs::read_to_string(&path).expect("the journal is there");
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let started = lines[0]
        .as_object_mut()
        .expect("the first record is an object");
    assert!(started.remove("fingerprint").is_some(), "{text}");
    started.insert(
        "steps".to_owned(),
        serde_json::json!({"a": "x", "b": "y", "c": "z"}),
    );
    let rewritten: Vec<String> = lines.iter().map(ToString::to_string).collect();
    std::fs::write(&path, rewritten.join("\n") + "\n").expect("the journal can be written");

    // The file changed: which steps changed cannot be told, so the resume needs --allow-changed.
    sb.write("fixed", "");
    sb.runbook(&V1.replace("exit 1", "test -e fixed"));
    let refused = runbook(&sb, &["resume", "r1", "--no-progress"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("older build") && refused.stderr.contains("--allow-changed"),
        "says why steps cannot be compared, and the way on: {}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("~ changed"), "{}", refused.stderr);
    assert_eq!(trace(&sb), ["a1", "b1"], "nothing ran");
    runbook(&sb, &["resume", "r1", "--allow-changed", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["a1", "b1", "b1", "c1"]);
}

#[test]
fn show_counts_attempts_across_the_processes_that_made_them() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: counted
steps:
  - id: first
    run: "echo first >> trace"
  - id: slow
    run: "echo slow >> trace; echo $$ > slow.pid; test -e fast || sleep 30"
"#,
    );
    killed_mid_step(&sb, "r1", "slow");
    sb.write("fast", "");
    runbook(&sb, &["resume", "r1", "--no-progress"]).expect_code(0);
    let shown = show(&sb, "r1");
    let slow = step(&shown, "slow");
    assert_eq!(
        slow["attempts"], 2,
        "one before the kill, one after: {slow:#}"
    );
    let history = slow["history"].as_array().expect("each attempt is listed");
    let outcomes: Vec<(&Value, &Value, &Value)> = history
        .iter()
        .map(|a| (&a["attempt"], &a["process"], &a["outcome"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            (&1.into(), &0.into(), &"died".into()),
            (&2.into(), &1.into(), &"succeeded".into())
        ],
        "{slow:#}"
    );
    assert_eq!(
        slow["started_at"], history[0]["started_at"],
        "the first start"
    );
    assert_eq!(
        slow["finished_at"], history[1]["finished_at"],
        "the last finish"
    );
    assert_eq!(step(&shown, "first")["attempts"], 1);
    let processes = shown["processes"]
        .as_array()
        .expect("the processes are listed");
    assert_eq!(processes.len(), 2, "{shown:#}");
    assert_eq!(processes[0]["kind"], "started");
    assert_eq!(
        processes[0]["status"],
        Value::Null,
        "the first process was killed"
    );
    assert_eq!(processes[1]["kind"], "resumed");
    assert_eq!(processes[1]["status"], "succeeded");
}

#[test]
fn finally_runs_again_when_a_failed_run_is_resumed_to_its_end() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: again
steps:
  - id: flaky
    run: "echo flaky >> trace; test -f fixed"
  - id: part
    block:
      - id: inner
        run: "echo inner >> trace; test -f fixed"
    finally:
      - id: part_cleanup
        run: "echo part_cleanup {{ run.status }} >> trace"
finally:
  - id: cleanup
    run: "echo cleanup {{ run.status }} >> trace"
"#,
    );
    sb.run(&["--run-id", "r"]).expect_code(1);
    assert_eq!(trace(&sb), ["flaky", "cleanup failed"]);
    sb.write("fixed", "");
    let resumed = runbook(&sb, &["resume", "r", "--no-progress"]);
    resumed.expect_code(0);
    assert_eq!(
        trace(&sb),
        [
            "flaky",
            "cleanup failed",
            "flaky",
            "inner",
            "part_cleanup succeeded",
            "cleanup succeeded"
        ],
        "the run's cleanup runs again at the new end"
    );
}

#[test]
fn show_lists_steps_in_plan_order_and_resume_counts_the_settled_steps_it_does_not_name() {
    let sb = Sandbox::new();
    let mut yaml = String::from("name: ordered\nsteps:\n");
    for id in ["zeta", "alpha", "mid", "beta", "kappa", "delta", "epsilon"] {
        let _ = write!(yaml, "  - id: {id}\n    run: \"echo {id} >> trace\"\n");
    }
    yaml.push_str(
        "  - id: gate\n    manual: \"Look\"\n  - id: omega\n    run: \"echo omega >> trace\"\n",
    );
    sb.runbook(&yaml);
    sb.run(&["--run-id", "r1"]).expect_code(3);
    let declared = [
        "zeta", "alpha", "mid", "beta", "kappa", "delta", "epsilon", "gate", "omega",
    ];
    let listed: Vec<String> = show(&sb, "r1")["steps"]
        .as_array()
        .expect("steps are listed")
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, declared, "plan order, pending steps in their place");
    let text = runbook(&sb, &["show", "r1"]);
    let rows: Vec<&str> = text
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| declared.contains(w))
        .collect();
    assert_eq!(rows, declared, "{}", text.stdout);

    let resumed = runbook(&sb, &["resume", "r1", "--approve", "gate", "--no-progress"]);
    resumed.expect_code(0);
    let named = resumed
        .stdout
        .lines()
        .filter(|l| l.contains("done before this resume; not run again"))
        .count();
    assert_eq!(named, 5, "{}", resumed.stdout);
    assert!(
        resumed
            .stdout
            .contains("…and 2 more done before this resume (`runbook show r1` lists them)"),
        "{}",
        resumed.stdout
    );
}

const SECRET_THEN_GATE: &str = r#"
name: secret-then-gate
secrets:
  token: { env: RB_RESUME_TOKEN }
steps:
  - id: login
    run: "test -n \"{{ secrets.token }}\" && echo login >> trace"
  - id: gate
    manual: "Check the login"
  - id: after
    run: "echo after >> trace"
"#;

#[test]
fn resume_needs_only_the_secrets_of_steps_still_to_run() {
    let sb = Sandbox::new();
    sb.runbook(SECRET_THEN_GATE);
    let mut first = sb.command(["run", "runbook.yaml", "--no-progress", "--run-id", "r1"]);
    first.env("RB_RESUME_TOKEN", "s3cr3t-value");
    assert_eq!(
        first.output().expect("runbook starts").status.code(),
        Some(3)
    );
    // The only step that reads the secret is done: the resume does not ask for it.
    runbook(&sb, &["resume", "r1", "--approve", "gate", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["login", "after"]);

    let sb = Sandbox::new();
    sb.runbook(&SECRET_THEN_GATE.replace("echo after", "echo {{ secrets.token | length }}"));
    let mut first = sb.command(["run", "runbook.yaml", "--no-progress", "--run-id", "r1"]);
    first.env("RB_RESUME_TOKEN", "s3cr3t-value");
    assert_eq!(
        first.output().expect("runbook starts").status.code(),
        Some(3)
    );
    let refused = runbook(&sb, &["resume", "r1", "--approve", "gate", "--no-progress"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("RB_RESUME_TOKEN"),
        "a step still to run needs it: {}",
        refused.stderr
    );
}

const PARAM_AFTER_GATE: &str = r#"
name: late-param
params:
  early: { type: string, default: one }
  late: { type: string, enum: [blue, green], default: blue }
steps:
  - id: first
    run: "echo first {{ params.early }} >> trace"
  - id: gate
    manual: "Pick the colour"
  - id: switch
    run: "echo switch {{ params.late }} >> trace"
"#;

#[test]
fn set_on_resume_reaches_steps_not_run_yet_and_is_refused_for_params_finished_steps_read() {
    let sb = Sandbox::new();
    sb.runbook(PARAM_AFTER_GATE);
    sb.run(&["--run-id", "r1"]).expect_code(3);

    let used = runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "gate",
            "--set",
            "early=two",
            "--no-progress",
        ],
    );
    used.expect_code(2);
    assert!(
        used.stderr
            .contains("param `early` was read by a step that finished: first"),
        "{}",
        used.stderr
    );
    let outside = runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "gate",
            "--set",
            "late=red",
            "--no-progress",
        ],
    );
    outside.expect_code(2);
    assert!(outside.stderr.contains("`red`"), "{}", outside.stderr);
    assert_eq!(trace(&sb), ["first one"], "nothing ran on a refused resume");

    runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "gate",
            "--set",
            "late=green",
            "--as",
            "carol",
            "--no-progress",
        ],
    )
    .expect_code(0);
    assert_eq!(trace(&sb), ["first one", "switch green"]);
    let changed: Vec<Value> = journal(&sb, "r1")
        .into_iter()
        .filter(|r| kind(r) == "params_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["params"], serde_json::json!({"late": "green"}));
    assert_eq!(changed[0]["by"], "carol");
    let text = runbook(&sb, &["show", "r1"]);
    assert!(
        text.stdout.contains("params changed by carol at ")
            && text.stdout.contains("{\"late\":\"green\"}"),
        "{}",
        text.stdout
    );
}
