//! `notify:` end to end against a local HTTP listener (wiremock): a notification arrives when a
//! run pauses for a person and when it fails, naming the run, its status, the step waiting and
//! the command that continues it, with no secret in its body; a notification that cannot be
//! delivered is reported and journaled, and the run's outcome is unchanged.

use std::time::Instant;

use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::run_support::{Run, Sandbox};

const SECRET: &str = "tok-5ecr3t-value";

/// A runbook that uses a secret, asks a person, then fails unless `fixed` holds something;
/// it notifies `base` on `paused` and `failed`, authenticating with the secret in a header.
const RUNBOOK: &str = r#"
name: notified
params:
  base: { type: string, required: true }
secrets:
  token: { env: NOTIFY_TOKEN }
notify:
  - on: [paused, failed]
    http:
      url: "{{ params.base }}/hooks/runbook"
      headers: { Authorization: "Bearer {{ secrets.token }}" }
  - on: succeeded
    http:
      method: POST
      url: "{{ params.base }}/hooks/done"
      json: { text: "{{ run.name }} {{ run.id }} {{ run.status }} with {{ secrets.token }}" }
steps:
  - id: prepare
    run: echo using {{ secrets.token }}
  - id: approve
    manual: Is the standby ready?
  - id: switch
    run: test -s fixed
"#;

async fn cli(sb: &Sandbox, args: Vec<String>) -> Run {
    let mut cmd = sb.command(args);
    cmd.env("NOTIFY_TOKEN", SECRET);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the blocking task completes")
        .expect("the runbook binary starts");
    Run::new(&output, started.elapsed())
}

fn bodies(requests: &[wiremock::Request], route: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.url.path() == route)
        .map(|r| {
            let text = String::from_utf8_lossy(&r.body);
            assert!(!text.contains(SECRET), "a secret in the body: {text}");
            serde_json::from_str(&text).expect("the body is JSON")
        })
        .collect()
}

#[tokio::test]
async fn notifications_arrive_when_a_run_pauses_and_when_it_fails_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {SECRET}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/done"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    sb.runbook(RUNBOOK);
    let base = format!("base={}", server.uri());
    let run = cli(
        &sb,
        [
            "run",
            "runbook.yaml",
            "--no-progress",
            "--run-id",
            "n1",
            "--set",
            &base,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    run.expect_code(3);
    assert!(
        run.stdout.contains("/hooks/runbook (paused): HTTP 204"),
        "{}",
        run.stdout
    );
    let requests = server.received_requests().await.expect("requests are kept");
    let paused = bodies(&requests, "/hooks/runbook");
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0]["run_id"], "n1");
    assert_eq!(paused[0]["runbook"], "notified");
    assert_eq!(paused[0]["status"], "paused");
    assert_eq!(paused[0]["waiting_for"], serde_json::json!(["approve"]));
    assert_eq!(
        paused[0]["resume_command"],
        "runbook resume n1 --approve approve"
    );

    let run = cli(
        &sb,
        ["resume", "n1", "--approve", "approve"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    run.expect_code(1);
    let requests = server.received_requests().await.expect("requests are kept");
    let all = bodies(&requests, "/hooks/runbook");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["status"], "failed");
    assert_eq!(all[1]["resume_command"], "runbook resume n1");
    assert_eq!(all[1]["waiting_for"], serde_json::json!([]));

    sb.write("fixed", "yes");
    let run = cli(&sb, ["resume", "n1"].map(String::from).to_vec()).await;
    run.expect_code(0);
    let requests = server.received_requests().await.expect("requests are kept");
    let done = bodies(&requests, "/hooks/done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["text"], "notified n1 succeeded with ***");

    let report = cli(
        &sb,
        ["report", "n1", "--format", "json"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    report.expect_code(0);
    let evidence: Value = serde_json::from_str(&report.stdout).expect("JSON");
    let sent: Vec<(&str, bool)> = evidence["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| (n["on"].as_str().unwrap_or_default(), n["delivered"] == true))
        .collect();
    assert_eq!(
        sent,
        [("paused", true), ("failed", true), ("succeeded", true)]
    );
}

#[tokio::test]
async fn a_notification_that_fails_is_reported_and_never_fails_the_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/runbook"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    sb.write("fixed", "yes");
    sb.runbook(RUNBOOK);
    let base = format!("base={}", server.uri());
    let run = cli(
        &sb,
        [
            "run",
            "runbook.yaml",
            "--no-progress",
            "--run-id",
            "n2",
            "--set",
            &base,
            "--approve-all",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    // Approved by --approve-all, nothing pauses or fails: the `succeeded` hook gets a 404 from the mock.
    run.expect_code(0);
    assert!(
        run.stdout.contains("notification of succeeded to")
            && run
                .stdout
                .contains("failed (the run goes on): got HTTP 404"),
        "{}",
        run.stdout
    );
    let report = cli(
        &sb,
        ["report", "n2", "--format", "md"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(
        report.stdout.contains("## Notifications"),
        "{}",
        report.stdout
    );
    assert!(report.stdout.contains("| succeeded |"), "{}", report.stdout);
    assert!(!report.stdout.contains(SECRET));
}

#[test]
fn a_rehearsal_sends_nothing() {
    let sb = Sandbox::new();
    sb.runbook(RUNBOOK);
    // Nothing listens on port 9: a notification would be reported as failed.
    let mut cmd = sb.command([
        "run",
        "runbook.yaml",
        "--no-progress",
        "--dry-run",
        "--set",
        "base=http://127.0.0.1:9",
    ]);
    cmd.env("NOTIFY_TOKEN", SECRET);
    let output = cmd.output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains("notification") && !stdout.contains("notified http"),
        "{stdout}"
    );
}
