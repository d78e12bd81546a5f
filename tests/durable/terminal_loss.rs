//! A dropped terminal and a dead engine: the engine runs under a PTY (`script`) whose master is
//! closed mid-run. With SIGHUP (a closed SSH session) the run stops as `interrupted`, its step's
//! process group stopped, and can be resumed; started with SIGHUP ignored (`nohup`), it goes on
//! with its output only in the logs, and writes that fail (EIO) do not crash it. An engine that
//! dies without stopping its steps (SIGKILL) takes their process groups with it, except a
//! daemon a step starts in a session of its own.

use std::time::Duration;

use crate::durable_support::{alive, group_members, journal, kind, run_dir, runbook, show, step};
use crate::run_support::Sandbox;

const START: Duration = Duration::from_secs(30);

/// `runbook ARGS…` on a PTY of its own (`script`), with `prelude` run by the shell first.
fn on_terminal(sb: &Sandbox, prelude: &str, args: &str) -> std::process::Child {
    let binary = assert_cmd::cargo::cargo_bin("runbook");
    std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{prelude} exec {} {args}", binary.display()))
        .arg("/dev/null")
        .current_dir(sb.path())
        .env("RUNBOOK_STATE_DIR", sb.join(".runbook"))
        .env("RUNBOOK_KILL_GRACE_MS", "1000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script(1) runs")
}

/// Closes the terminal: `script` (the PTY's master side) is killed.
fn hang_up(mut terminal: std::process::Child) {
    let _ = terminal.kill();
    let _ = terminal.wait();
}

#[track_caller]
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + START;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process runs (a zombie that no init reaps does not).
fn running(pid: i32) -> bool {
    alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.to_owned()))
            .is_some_and(|rest| !rest.starts_with('Z'))
}

fn pid_in(sb: &Sandbox, file: &str) -> i32 {
    sb.read(file).trim().parse().expect("a pid")
}

fn finished(sb: &Sandbox, id: &str) -> Option<String> {
    journal(sb, id)
        .iter()
        .find(|r| kind(r) == "run_finished")
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
}

const LONG_STEP: &str = r#"
name: terminal
steps:
  - id: work
    run: |
      echo "$$" > work.pid
      sleep 30 &
      echo "$!" > child.pid
      i=0
      while [ $i -lt 30 ]; do echo "tick $i"; i=$((i + 1)); sleep 0.1; done
      test -e long || exit 0
      wait
  - id: after
    needs: [work]
    run: echo after > after.done
"#;

#[test]
fn a_hangup_stops_the_run_as_interrupted_and_resumable() {
    let sb = Sandbox::new();
    sb.runbook(LONG_STEP);
    sb.write("long", "");
    let terminal = on_terminal(&sb, "", "run runbook.yaml --run-id hup");
    wait_for("the step's child", || {
        !sb.read("child.pid").trim().is_empty()
    });
    let (work, child) = (pid_in(&sb, "work.pid"), pid_in(&sb, "child.pid"));
    hang_up(terminal);
    wait_for("the run to end", || finished(&sb, "hup").is_some());
    assert_eq!(finished(&sb, "hup").as_deref(), Some("interrupted"));
    wait_for("the step's process group to be stopped", || {
        group_members(work).is_empty()
    });
    assert!(!running(child), "the step's background child was stopped");
    assert!(!sb.exists("after.done"), "nothing started after the hangup");
    let shown = show(&sb, "hup");
    assert_eq!(shown["status"], "interrupted");

    std::fs::remove_file(sb.join("long")).expect("the marker is removed");
    let resumed = runbook(&sb, &["resume", "hup", "--yes", "--no-progress"]);
    resumed.expect_code(0);
    assert!(sb.exists("after.done"));
}

#[test]
fn with_sighup_ignored_a_lost_terminal_only_silences_the_run() {
    let sb = Sandbox::new();
    sb.runbook(LONG_STEP);
    let terminal = on_terminal(&sb, "trap '' HUP;", "run runbook.yaml --run-id eio");
    wait_for("the step's child", || {
        !sb.read("child.pid").trim().is_empty()
    });
    hang_up(terminal);
    // Every line shown from now on is a write to a closed terminal (EIO).
    wait_for("the run to end", || finished(&sb, "eio").is_some());
    assert_eq!(finished(&sb, "eio").as_deref(), Some("succeeded"));
    assert!(sb.exists("after.done"), "the run went on");
    let log =
        std::fs::read_to_string(run_dir(&sb, "eio").join("logs/work.log")).expect("the step's log");
    assert!(
        log.contains("tick 29"),
        "what was printed after the terminal closed is in the log:\n{log}"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid_in(&sb, "child.pid")),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(step(&show(&sb, "eio"), "after")["status"], "succeeded");
}

#[test]
fn a_killed_engine_takes_its_steps_process_groups_with_it_but_not_their_daemons() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "500");
    sb.runbook(
        r#"
name: orphans
steps:
  - id: work
    run: |
      echo "$$" > work.pid
      setsid sh -c 'echo $$ > daemon.pid; exec sleep 60' < /dev/null > /dev/null 2>&1 &
      trap '' TERM
      sh -c 'trap "" TERM; sleep 60' &
      echo "$!" > child.pid
      wait
"#,
    );
    let engine = crate::durable_support::Background::start(
        &sb,
        "engine",
        &[
            "run",
            "runbook.yaml",
            "--run-id",
            "orphans",
            "--no-progress",
        ],
    );
    wait_for("the step's child and daemon", || {
        !sb.read("child.pid").trim().is_empty() && !sb.read("daemon.pid").trim().is_empty()
    });
    let (work, child, daemon) = (
        pid_in(&sb, "work.pid"),
        pid_in(&sb, "child.pid"),
        pid_in(&sb, "daemon.pid"),
    );
    let killed = engine.kill();
    assert_eq!(killed.code, 137);
    // SIGTERM is ignored by everything in the group: SIGKILL follows after the grace period.
    wait_for("the dead engine's step group to be stopped", || {
        group_members(work).is_empty()
    });
    assert!(!running(child));
    assert!(
        running(daemon),
        "a daemon in a session of its own is left alone"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
}
