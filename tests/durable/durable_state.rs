//! What a run leaves in the state dir, end to end: the lock that lets one process drive a run,
//! a journal damaged by a crash, secrets kept out of every stored file, and what `runs`,
//! `show` and `logs` make of it all.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::durable_support::{
    Background, alive, journal, kill_group, kind, run_dir, runbook, show, step, wait_until,
};
use crate::run_support::{Sandbox, files_below};

const START: Duration = Duration::from_secs(20);
const END: Duration = Duration::from_secs(30);

fn trace(sb: &Sandbox) -> Vec<String> {
    sb.read("trace").lines().map(str::to_owned).collect()
}

/// `runbook runs --format json`, parsed.
fn runs(sb: &Sandbox) -> Vec<serde_json::Value> {
    let listed = runbook(sb, &["runs", "--format", "json"]);
    listed.expect_code(0);
    serde_json::from_str(&listed.stdout).unwrap_or_else(|e| panic!("{e}: {}", listed.stdout))
}

#[test]
fn a_second_process_never_drives_a_run_and_a_dead_holder_never_blocks() {
    // A dead engine's dead man's switch stops its steps' groups (SIGTERM, SIGKILL after the
    // grace period): this step ignores SIGTERM and the grace period is long, so that it outlives
    // its engine, as a step whose group cannot be stopped would.
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "120000");
    sb.runbook(
        r#"
name: locked
steps:
  - id: hold
    run: "trap '' TERM; echo $$ > hold.pid; test -e fast || sleep 30"
  - id: after
    run: "echo after >> trace"
"#,
    );
    let holder = Background::start(
        &sb,
        "holder",
        &["run", "runbook.yaml", "--run-id", "l1", "--no-progress"],
    );
    wait_until("the step to start", START, || {
        !sb.read("hold.pid").is_empty()
    });
    let pid = holder.pid().to_string();
    assert_eq!(
        std::fs::read_to_string(run_dir(&sb, "l1").join("lock")).unwrap_or_default(),
        pid,
        "the lock file holds the driver's pid"
    );

    let second = runbook(&sb, &["resume", "l1", "--yes", "--no-progress"]);
    second.expect_code(4);
    assert!(
        second.stderr.contains(&format!("pid {pid}")),
        "names the holder: {}",
        second.stderr
    );
    let again = runbook(
        &sb,
        &[
            "run",
            "runbook.yaml",
            "--run-id",
            "l1",
            "--yes",
            "--no-progress",
        ],
    );
    again.expect_code(4);
    assert!(
        again.stderr.contains(&format!("pid {pid}")),
        "names the holder: {}",
        again.stderr
    );
    assert_eq!(runs(&sb)[0]["status"], "running");
    let shown = show(&sb, "l1");
    assert_eq!(shown["status"], "running");
    assert_eq!(step(&shown, "hold")["status"], "running");

    holder.kill();
    let step_pid: i32 = sb.read("hold.pid").trim().parse().expect("a pid");
    // The dead driver's step still runs: a resume must not start it a second time beside it.
    let beside = runbook(&sb, &["resume", "l1", "--yes", "--no-progress"]);
    beside.expect_code(4);
    assert!(
        beside.stderr.contains("of step hold")
            && beside.stderr.contains(&format!("kill -TERM -{step_pid}")),
        "names the leftover step and how to stop it: {}",
        beside.stderr
    );
    kill_group(step_pid);
    assert!(!alive(pid.parse().expect("a pid")));
    let listed = runs(&sb);
    assert_eq!(
        listed[0]["status"], "interrupted",
        "a run whose driver died is not running: {listed:#?}"
    );
    let table = runbook(&sb, &["runs"]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("l1 ") && l.contains("interrupted")),
        "{}",
        table.stdout
    );
    let exists = runbook(
        &sb,
        &["run", "runbook.yaml", "--run-id", "l1", "--no-progress"],
    );
    exists.expect_code(2);
    assert!(
        exists.stderr.contains("runbook resume l1"),
        "an unlocked run that exists is resumed, not run again: {}",
        exists.stderr
    );

    sb.write("fast", "");
    runbook(&sb, &["resume", "l1", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["after"]);
    assert_eq!(runs(&sb)[0]["status"], "succeeded");
}

const FAILING: &str = r#"
name: torn
steps:
  - id: first
    run: "echo first >> trace"
  - id: second
    run: "echo second >> trace; test -e fixed"
"#;

#[test]
fn a_torn_last_journal_line_is_tolerated_and_repaired() {
    let sb = Sandbox::new();
    sb.runbook(FAILING);
    sb.run(&["--run-id", "t1"]).expect_code(1);
    let path = run_dir(&sb, "t1").join("journal.jsonl");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(br#"{"type":"step_finished","id":"sec"#))
        .expect("the journal can be appended to");

    let shown = show(&sb, "t1");
    assert_eq!(shown["status"], "failed");
    assert_eq!(step(&shown, "second")["status"], "failed");
    assert_eq!(runs(&sb)[0]["status"], "failed");

    sb.write("fixed", "");
    let resumed = runbook(&sb, &["resume", "t1", "--no-progress"]);
    resumed.expect_code(0);
    assert_eq!(trace(&sb), ["first", "second", "second"]);
    // What the resume appended did not stick to the torn line: every line is a record.
    let text = std::fs::read_to_string(&path).expect("the journal is there");
    for (i, line) in text.lines().enumerate() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "line {} is damaged: {line}",
            i + 1
        );
    }
    assert!(text.ends_with('\n'));
    assert_eq!(show(&sb, "t1")["status"], "succeeded");
}

#[test]
fn a_damaged_journal_line_is_an_error_naming_the_file_and_line() {
    let sb = Sandbox::new();
    sb.runbook(FAILING);
    sb.run(&["--run-id", "t1"]).expect_code(1);
    let path = run_dir(&sb, "t1").join("journal.jsonl");
    let text = std::fs::read_to_string(&path).expect("the journal is there");
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 3, "{text}");
    lines[2] = r#"{"type":"step_started","id":"#;
    std::fs::write(&path, lines.join("\n") + "\n").expect("the journal can be written");

    for args in [
        vec!["show", "t1"],
        vec!["show", "t1", "--format", "json"],
        vec!["resume", "t1", "--no-progress"],
        vec!["logs", "t1"],
    ] {
        let run = runbook(&sb, &args);
        assert_ne!(run.code, 0, "{args:?} fails");
        assert!(
            run.stderr.contains("journal.jsonl:3:"),
            "{args:?} names the file and line: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert_eq!(trace(&sb), ["first", "second"], "nothing ran");
    let listed = runbook(&sb, &["runs"]);
    listed.expect_code(0);
    assert!(
        listed.stderr.contains("t1") && listed.stderr.contains("journal.jsonl:3:"),
        "`runs` warns about the damaged run and lists the others: {}",
        listed.stderr
    );
}

const CANARY: &str = "canary-7f3e9b21d4c6";

/// A one-thread HTTP server that answers every request with the request itself as the body.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port can be bound");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                request.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&request);
        }
    });
    port
}

#[test]
fn a_secret_is_stored_nowhere_in_the_state_dir() {
    let sb = Sandbox::new().env("RB_CANARY", CANARY);
    let port = echo_server();
    sb.runbook(&format!(
        r#"
name: canary
secrets:
  token: {{ env: RB_CANARY }}
env:
  TOKEN_ENV: "{{{{ secrets.token }}}}"
steps:
  - id: prints
    run: "echo token={{{{ secrets.token }}}} env=$TOKEN_ENV; echo on stderr $TOKEN_ENV >&2"
    outputs:
      seen: "{{{{ result.stdout | trim }}}}"
  - id: request
    http:
      url: "http://127.0.0.1:{port}/x?t={{{{ secrets.token }}}}"
      headers: {{ Authorization: "Bearer {{{{ secrets.token }}}}" }}
    outputs:
      echoed: "{{{{ result.body }}}}"
  - id: probed
    check: {{ run: "test -e fixed && echo probe {{{{ secrets.token }}}}" }}
    retry: {{ attempts: 2, delay: 0s }}
    run: "echo failing with {{{{ secrets.token }}}} >&2; exit 1"
  - id: after
    run: "echo after $TOKEN_ENV"
finally:
  - id: bye
    run: "echo bye {{{{ secrets.token }}}} {{{{ run.status }}}}"
"#
    ));
    let first = sb.run(&["--run-id", "c1"]);
    first.expect_code(1);
    sb.write("fixed", "");
    let resumed = runbook(&sb, &["resume", "c1", "--no-progress"]);
    resumed.expect_code(0);

    let state = sb.join(".runbook");
    let files = files_below(&state);
    assert!(files.len() > 5, "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).expect("a state file can be read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the secret is stored in {}:\n{}",
            file.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
    let mut printed = first.all() + &resumed.all();
    for args in [
        vec!["show", "c1"],
        vec!["show", "c1", "--format", "json"],
        vec!["logs", "c1"],
        vec!["runs", "--format", "json"],
    ] {
        let run = runbook(&sb, &args);
        run.expect_code(0);
        printed += &run.all();
    }
    assert!(
        !printed.contains(CANARY),
        "the secret was printed:\n{printed}"
    );

    let log = runbook(&sb, &["logs", "c1", "prints"]).stdout;
    assert!(log.contains("token=*** env=***"), "{log}");
    assert!(log.contains("! on stderr ***"), "{log}");
    let log = runbook(&sb, &["logs", "c1", "request"]).stdout;
    assert!(log.contains("t=***"), "{log}");
    let shown = show(&sb, "c1");
    assert_eq!(
        step(&shown, "prints")["outputs"]["seen"],
        "token=*** env=***"
    );
    let echoed = step(&shown, "request")["outputs"]["echoed"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(echoed.contains("authorization: bearer ***"), "{echoed}");
    assert_eq!(step(&shown, "probed")["status"], "succeeded");
}

#[test]
fn runs_and_show_speak_json_and_a_finished_run_has_nothing_to_resume() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: shapes
steps:
  - id: measure
    run: "echo 42"
    outputs:
      size: "{{ result.stdout | trim | int }}"
  - id: fan
    for_each: [a, b]
    run: "echo {{ item }} >> trace"
"#,
    );
    sb.run(&["--run-id", "s1"]).expect_code(0);
    sb.write(
        "other.yaml",
        "name: other\nsteps:\n  - id: breaks\n    run: exit 1\n",
    );
    sb.run_file("other.yaml", &["--run-id", "s2"])
        .expect_code(1);

    let listed = runs(&sb);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let by_id = |id: &str| {
        listed
            .iter()
            .find(|r| r["run_id"] == id)
            .unwrap_or_else(|| panic!("{id} listed: {listed:#?}"))
    };
    assert_eq!(by_id("s1")["runbook"], "shapes");
    assert_eq!(by_id("s1")["status"], "succeeded");
    assert_eq!(by_id("s2")["runbook"], "other");
    assert_eq!(by_id("s2")["status"], "failed");
    for r in &listed {
        assert!(
            r["started_at"].is_string() && r["finished_at"].is_string(),
            "{r}"
        );
    }

    let shown = show(&sb, "s1");
    assert_eq!(shown["run_id"], "s1");
    assert_eq!(shown["runbook"], "shapes");
    assert_eq!(shown["status"], "succeeded");
    let mut ids: Vec<&str> = shown["steps"]
        .as_array()
        .expect("steps is a list")
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default())
        .collect();
    // In the order they started (the items run side by side); the fan-out has its own entry.
    ids[1..].sort_unstable();
    assert_eq!(ids, ["measure", "fan", "fan[0]", "fan[1]"]);
    for s in shown["steps"].as_array().into_iter().flatten() {
        for key in [
            "id",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "outputs",
        ] {
            assert!(s.get(key).is_some(), "step has `{key}`: {s}");
        }
        assert_eq!(s["status"], "succeeded");
        assert_eq!(s["attempts"], 1);
        let started: jiff::Timestamp = s["started_at"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .expect("RFC 3339");
        let finished: jiff::Timestamp = s["finished_at"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .expect("RFC 3339");
        assert!(started <= finished, "{s}");
    }
    assert_eq!(step(&shown, "measure")["outputs"]["size"], 42);

    let again = runbook(&sb, &["resume", "s1", "--no-progress"]);
    again.expect_code(0);
    assert!(
        again.stdout.contains("already succeeded"),
        "{}",
        again.all()
    );
    assert_eq!(trace(&sb).len(), 2, "nothing ran again");
    assert_eq!(
        journal(&sb, "s1")
            .iter()
            .filter(|r| kind(r) == "resumed")
            .count(),
        0
    );
}

#[test]
fn logs_follow_prints_as_the_run_goes_and_returns_when_it_ends() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: follow
steps:
  - id: talk
    run: "echo early; while ! test -e go; do sleep 0.05; done; echo late"
  - id: after
    run: "echo after"
"#,
    );
    let run = Background::start(
        &sb,
        "run",
        &["run", "runbook.yaml", "--run-id", "f1", "--no-progress"],
    );
    wait_until("the step to print", START, || {
        std::fs::read_to_string(run_dir(&sb, "f1").join("logs/talk.log"))
            .is_ok_and(|l| l.contains("early"))
    });
    let follow = Background::start(&sb, "follow", &["logs", "f1", "--follow"]);
    std::thread::sleep(Duration::from_millis(400));
    sb.write("go", "");
    run.wait(END).expect_code(0);
    let followed = follow.wait(Duration::from_secs(5));
    followed.expect_code(0);
    let out = followed.stdout;
    let early = out.find("early").expect("the early line");
    // One format from the first line to the last (`logs` without --follow prints the same).
    let late = out
        .find("\nlate\n")
        .unwrap_or_else(|| panic!("the late line, as it came: {out}"));
    assert!(early < late, "{out}");
    assert!(!out.contains(" | "), "{out}");
    let after = out.find("=== after\n").expect("the next step's header");
    assert!(late < after && out[after..].contains("\nafter\n"), "{out}");

    // On a run that ended, --follow prints what there is and returns.
    let done = runbook(&sb, &["logs", "f1", "talk", "--follow"]);
    done.expect_code(0);
    assert!(done.stdout.contains("late"), "{}", done.stdout);
}

#[test]
fn a_run_folder_whose_creation_was_killed_is_neither_listed_nor_in_the_way() {
    let sb = Sandbox::new();
    sb.runbook("name: made\nsteps:\n  - id: one\n    run: \"echo one >> trace\"\n");
    // What a process killed while creating run `m1` leaves: a hidden, half-filled folder.
    sb.write(".runbook/runs/.new-m1-4242/meta.json", "{}");
    let listed = runbook(&sb, &["runs"]);
    listed.expect_code(0);
    assert!(!listed.all().contains("new-m1"), "{}", listed.all());
    sb.run(&["--run-id", "m1"]).expect_code(0);
    let listed = runs(&sb);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["run_id"], "m1");
    assert_eq!(listed[0]["status"], "succeeded");
    let hidden = runbook(&sb, &["show", ".new-m1-4242"]);
    assert_ne!(hidden.code, 0);
}
