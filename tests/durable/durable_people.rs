//! People in the loop, across processes: `--yes` confirms destructive steps (recorded) and
//! never approves a manual step; `--approve STEP`, `--approve-all` and the identity of who
//! decided (`--as`, else user@host); a manual step's `timeout` (fail closed, `finally` runs),
//! `approvers: N` (distinct people) and `inputs` (values a person supplies, read by later
//! steps); the time a person took, kept apart from the step's own.

use std::time::Duration;

use crate::durable_support::{journal, kind, runbook, show, step};
use crate::run_support::Sandbox;

fn trace(sb: &Sandbox) -> Vec<String> {
    sb.read("trace").lines().map(str::to_owned).collect()
}

/// The approvals `show --format json` lists.
fn approvals(sb: &Sandbox, run: &str) -> Vec<serde_json::Value> {
    show(sb, run)["approvals"]
        .as_array()
        .cloned()
        .expect("approvals are listed")
}

/// The approvals of one step.
fn approvals_of(sb: &Sandbox, run: &str, id: &str) -> Vec<serde_json::Value> {
    approvals(sb, run)
        .into_iter()
        .filter(|a| a["id"] == id)
        .collect()
}

const WIPE_THEN_INSPECT: &str = r#"
name: recover
steps:
  - id: wipe
    destructive: true
    run: "echo wipe >> trace"
  - id: inspect
    manual: "Inspect the database; if it is not the desired state, go back."
  - id: promote
    run: "echo promote >> trace"
finally:
  - id: note
    run: "echo note {{ run.status }} >> trace"
"#;

#[test]
fn yes_confirms_destructive_steps_and_never_approves_a_manual_step() {
    let sb = Sandbox::new();
    sb.runbook(WIPE_THEN_INSPECT);
    let paused = sb.run(&["--run-id", "r1", "--yes"]);
    paused.expect_code(3);
    assert_eq!(
        trace(&sb),
        ["wipe"],
        "the destructive step ran, nothing after"
    );
    assert!(
        paused.stdout.contains("waiting for an approval")
            && paused
                .stdout
                .contains("runbook resume r1 --approve inspect"),
        "{}",
        paused.stdout
    );
    assert!(
        approvals_of(&sb, "r1", "inspect").is_empty(),
        "nobody approved the manual step"
    );
    // The destructive step's confirmation is a decision too, recorded with who gave it.
    let confirmed = approvals_of(&sb, "r1", "wipe");
    assert_eq!(confirmed.len(), 1, "{confirmed:#?}");
    assert_eq!(
        (&confirmed[0]["approved"], &confirmed[0]["how"]),
        (&true.into(), &"yes".into())
    );
    assert!(
        confirmed[0]["by"]
            .as_str()
            .is_some_and(|by| by.contains('@')),
        "user@host by default: {confirmed:#?}"
    );

    // A resume with --yes alone does not approve it either.
    runbook(&sb, &["resume", "r1", "--yes", "--no-progress"]).expect_code(3);
    assert_eq!(trace(&sb), ["wipe"]);
}

#[test]
fn approve_all_continues_a_paused_run_and_is_recorded_as_such() {
    let sb = Sandbox::new();
    sb.runbook(WIPE_THEN_INSPECT);
    sb.run(&["--run-id", "r1", "--yes"]).expect_code(3);
    runbook(&sb, &["resume", "r1", "--approve-all", "--no-progress"]).expect_code(0);
    assert_eq!(trace(&sb), ["wipe", "promote", "note succeeded"]);
    let approvals = approvals_of(&sb, "r1", "inspect");
    assert_eq!(approvals.len(), 1, "{approvals:#?}");
    assert_eq!(approvals[0]["id"], "inspect");
    assert_eq!(approvals[0]["how"], "approve_all");
    let by = approvals[0]["by"].as_str().expect("who approved");
    let (user, host) = by.split_once('@').expect("user@host by default");
    assert!(!user.is_empty() && !host.is_empty(), "{by}");
    let text = runbook(&sb, &["show", "r1"]);
    assert!(
        text.stdout
            .contains(&format!("inspect approved by {by} with --approve-all at ")),
        "{}",
        text.stdout
    );
}

#[test]
fn approve_on_run_approves_the_step_when_it_is_reached_as_the_named_person() {
    let sb = Sandbox::new();
    sb.runbook(WIPE_THEN_INSPECT);
    let run = sb.run(&[
        "--run-id",
        "r1",
        "--yes",
        "--approve",
        "inspect",
        "--as",
        "alice",
    ]);
    run.expect_code(0);
    assert_eq!(trace(&sb), ["wipe", "promote", "note succeeded"]);
    assert!(
        run.stdout
            .contains("approved inspect by alice with --approve"),
        "{}",
        run.stdout
    );
    let approvals = approvals_of(&sb, "r1", "inspect");
    assert_eq!(approvals.len(), 1, "{approvals:#?}");
    assert_eq!(
        (&approvals[0]["by"], &approvals[0]["how"]),
        (&"alice".into(), &"option".into())
    );
    assert_eq!(
        approvals_of(&sb, "r1", "wipe")[0]["by"],
        "alice",
        "--as names who confirmed with --yes too"
    );
    let shown = show(&sb, "r1");
    assert_eq!(
        step(&shown, "inspect")["reason"],
        "approved by alice with --approve"
    );
}

#[test]
fn approve_names_only_manual_steps_and_nothing_runs_otherwise() {
    let sb = Sandbox::new();
    sb.runbook(WIPE_THEN_INSPECT);
    let wrong = sb.run(&["--yes", "--approve", "wipe", "--approve", "inspcet"]);
    wrong.expect_code(2);
    assert!(
        wrong.stderr.contains("`--approve wipe`: not a manual step"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("did you mean `inspect`?"),
        "{}",
        wrong.stderr
    );
    assert!(trace(&sb).is_empty(), "nothing ran");
}

#[test]
fn a_manual_timeout_fails_the_step_closed_and_runs_finally() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: timed
steps:
  - id: inspect
    manual:
      instructions: "Inspect the database"
      timeout: 2s
  - id: promote
    run: "echo promote >> trace"
finally:
  - id: note
    run: "echo note {{ run.status }} >> trace"
"#,
    );
    let paused = sb.run(&["--run-id", "r1"]);
    paused.expect_code(3);
    assert!(
        paused.stdout.contains("no decision by ") && paused.stdout.contains("fails it"),
        "the pause says until when: {}",
        paused.stdout
    );
    std::thread::sleep(Duration::from_millis(2200));
    // Approving after the deadline is too late: the step failed closed.
    let late = runbook(
        &sb,
        &["resume", "r1", "--approve", "inspect", "--no-progress"],
    );
    late.expect_code(1);
    assert_eq!(trace(&sb), ["note failed"]);
    let shown = show(&sb, "r1");
    let inspect = step(&shown, "inspect");
    assert_eq!(inspect["status"], "failed");
    assert_eq!(inspect["reason"], "no decision within 2s: failed closed");
    assert_eq!(step(&shown, "promote")["status"], "pending");
    assert!(
        approvals(&sb, "r1").is_empty(),
        "the late approval is not recorded"
    );
}

const TWO_PERSON: &str = r#"
name: two-person
steps:
  - id: drop_replica
    manual:
      instructions: "Drop the old replica"
      approvers: 2
  - id: done
    run: "echo done >> trace"
"#;

#[test]
fn two_approvers_need_two_distinct_identities() {
    let sb = Sandbox::new();
    sb.runbook(TWO_PERSON);
    sb.run(&["--run-id", "r1"]).expect_code(3);
    let approve = |who: &str| {
        runbook(
            &sb,
            &[
                "resume",
                "r1",
                "--approve",
                "drop_replica",
                "--as",
                who,
                "--no-progress",
            ],
        )
    };
    let first = approve("alice");
    first.expect_code(3);
    assert!(
        first
            .stdout
            .contains("1 more approval by another person (approved so far by alice; 2 needed)"),
        "{}",
        first.stdout
    );
    assert_eq!(show(&sb, "r1")["status"], "paused");
    approve("alice").expect_code(3);
    assert!(trace(&sb).is_empty(), "the same person twice counts once");
    approve("bob").expect_code(0);
    assert_eq!(trace(&sb), ["done"]);
    let by: Vec<serde_json::Value> = approvals(&sb, "r1")
        .iter()
        .map(|a| a["by"].clone())
        .collect();
    assert_eq!(by, ["alice", "bob"]);
    let shown = show(&sb, "r1");
    assert_eq!(
        step(&shown, "drop_replica")["reason"],
        "approved by alice with --approve, bob with --approve"
    );
}

const INPUTS: &str = r#"
name: with-inputs
steps:
  - id: confirm
    manual:
      instructions: "Pick the snapshot to restore"
      inputs:
        snapshot_id: { type: string, description: the snapshot to restore }
        replicas: { type: int, enum: [1, 3] }
  - id: restore
    run: "echo restore {{ steps.confirm.outputs.snapshot_id }} x{{ steps.confirm.outputs.replicas }} >> trace"
"#;

#[test]
fn inputs_reach_later_steps_and_are_journaled() {
    let sb = Sandbox::new();
    sb.runbook(INPUTS);
    let paused = sb.run(&["--run-id", "r1", "--approve", "confirm", "--as", "alice"]);
    paused.expect_code(3);
    assert!(
        paused
            .stdout
            .contains("waiting for inputs `snapshot_id`, `replicas`")
            && paused
                .stdout
                .contains("--input confirm.snapshot_id=… --input confirm.replicas=…"),
        "the pause names the missing inputs: {}",
        paused.stdout
    );

    let refused = runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "confirm",
            "--input",
            "confirm.replicas=2",
            "--no-progress",
        ],
    );
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("`--input confirm.replicas=2`: `2` is not one of 1, 3"),
        "{}",
        refused.stderr
    );

    runbook(
        &sb,
        &[
            "resume",
            "r1",
            "--approve",
            "confirm",
            "--as",
            "bob",
            "--input",
            "confirm.snapshot_id=s-42",
            "--input",
            "confirm.replicas=3",
            "--no-progress",
        ],
    )
    .expect_code(0);
    assert_eq!(trace(&sb), ["restore s-42 x3"]);
    let shown = show(&sb, "r1");
    assert_eq!(
        step(&shown, "confirm")["outputs"],
        serde_json::json!({"snapshot_id": "s-42", "replicas": 3})
    );
    let approval = journal(&sb, "r1")
        .into_iter()
        .rfind(|r| kind(r) == "approval")
        .expect("the approval is journaled");
    assert_eq!(approval["by"], "bob");
    assert_eq!(
        approval["inputs"],
        serde_json::json!({"snapshot_id": "s-42", "replicas": 3})
    );
}

#[test]
fn a_steps_time_does_not_include_the_wait_for_a_person() {
    let sb = Sandbox::new();
    sb.runbook(TWO_PERSON.replace("approvers: 2", "approvers: 1").as_str());
    sb.run(&["--run-id", "r1"]).expect_code(3);
    std::thread::sleep(Duration::from_millis(1500));
    let approved = runbook(
        &sb,
        &["resume", "r1", "--approve", "drop_replica", "--no-progress"],
    );
    approved.expect_code(0);
    assert!(
        approved.stdout.contains("waiting for a person"),
        "the wait is shown apart: {}",
        approved.stdout
    );
    let shown = show(&sb, "r1");
    let gate = step(&shown, "drop_replica");
    assert!(
        gate["waited_ms"].as_u64().is_some_and(|w| w >= 1500),
        "{gate:#}"
    );
    assert!(
        gate["duration_ms"].as_u64().is_some_and(|d| d < 1000),
        "its own time is not the wait: {gate:#}"
    );
    let text = runbook(&sb, &["show", "r1"]);
    assert!(text.stdout.contains("waited"), "{}", text.stdout);
}

/// A runbook run on a terminal: `script` gives it a pseudo-terminal, and what a person types is
/// written to it when the question is on screen.
struct AtTerminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl AtTerminal {
    fn run(sb: &Sandbox, args: &str) -> Self {
        use std::io::Read as _;
        let binary = assert_cmd::cargo::cargo_bin("runbook");
        let mut child = std::process::Command::new("script")
            .args(["-qec", &format!("{} {args}", binary.display()), "/dev/null"])
            .current_dir(sb.path())
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE_DIR", sb.join(".runbook"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("`script` (util-linux) runs the binary on a pseudo-terminal");
        let input = child.stdin.take().expect("stdin is piped");
        let mut output = child.stdout.take().expect("stdout is piped");
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shown = std::sync::Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                shown
                    .lock()
                    .expect("the screen is readable")
                    .push_str(&text);
            }
        });
        Self {
            child,
            input,
            screen,
        }
    }

    fn screen(&self) -> String {
        self.screen.lock().expect("the screen is readable").clone()
    }

    /// Waits until `question` is on screen (its `nth` time), then types `line` after `pause`.
    fn answer(&mut self, question: &str, nth: usize, pause: Duration, line: &str) {
        use std::io::Write as _;
        crate::durable_support::wait_until(question, Duration::from_secs(20), || {
            self.screen().matches(question).count() >= nth
        });
        std::thread::sleep(pause);
        writeln!(self.input, "{line}").expect("the terminal takes input");
        self.input.flush().expect("the terminal takes input");
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("script ends");
        (status.code(), self.screen())
    }
}

#[test]
fn at_a_terminal_a_person_decides_and_the_time_they_take_is_kept_apart() {
    let sb = Sandbox::new();
    sb.write(
        "wipe.yaml",
        "name: wipe\nsteps:\n  - id: rm\n    run: \"echo rm >> trace\"\n",
    );
    sb.runbook(
        r#"
name: at-terminal
steps:
  - id: wipe
    destructive: true
    call: wipe.yaml
  - id: inspect
    manual:
      instructions: "Inspect the data"
      inputs:
        colour: { type: string, enum: [blue, green] }
  - id: after
    run: "echo after {{ steps.inspect.outputs.colour }} >> trace"
"#,
    );
    let mut term = AtTerminal::run(&sb, "run runbook.yaml --no-progress --run-id r1 --as dora");
    let pause = Duration::from_millis(1200);
    term.answer("Run it?", 1, pause, "wipe");
    // An Enter on its own decides nothing; then an approval, and a value outside the enum.
    term.answer("Approve? [yes/no]", 1, pause, "");
    term.answer("please answer yes or no", 1, Duration::ZERO, "y");
    term.answer("colour (string: blue | green)", 1, Duration::ZERO, "red");
    term.answer("colour (string: blue | green)", 2, Duration::ZERO, "green");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(trace(&sb), ["rm", "after green"], "{screen}");

    let shown = show(&sb, "r1");
    for id in ["wipe", "inspect"] {
        let s = step(&shown, id);
        assert!(
            s["waited_ms"].as_u64().is_some_and(|w| w >= 1000),
            "the wait at {id}'s prompt is kept: {s:#}"
        );
        assert!(
            s["duration_ms"].as_u64().is_some_and(|d| d < 1000),
            "and is not {id}'s own time: {s:#}"
        );
    }
    assert_eq!(
        step(&shown, "inspect")["outputs"],
        serde_json::json!({"colour": "green"})
    );
    let approvals = approvals(&sb, "r1");
    let decided: Vec<(&serde_json::Value, &serde_json::Value, &serde_json::Value)> = approvals
        .iter()
        .map(|a| (&a["id"], &a["by"], &a["how"]))
        .collect();
    assert_eq!(
        decided,
        [
            (&"wipe".into(), &"dora".into(), &"prompt".into()),
            (&"inspect".into(), &"dora".into(), &"prompt".into())
        ],
        "both decisions at the terminal are recorded with who made them"
    );
}
