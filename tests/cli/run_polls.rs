//! `runbook run` end to end, polling and results: a poll stops early on a known failure
//! (`fail_when`), waits before its first attempt (`delay`), `result.json` of output that is not
//! JSON is an error that says so, an `env` entry that renders to none is left out, and `result.stdout` has no newline the command
//! did not print.

use std::time::{Duration, Instant};

use crate::run_support::{Run, Sandbox};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn run_against(sb: &Sandbox, server: &MockServer) -> Run {
    let base = format!("base={}", server.uri());
    let mut cmd = sb.command(["run", "runbook.yaml", "--no-progress", "--set", &base]);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the blocking task completes")
        .expect("the runbook binary starts");
    Run::new(&output, started.elapsed())
}

#[tokio::test]
async fn fail_when_stops_polling_at_a_known_failure_well_before_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/job"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "running"})))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/job"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "failed"})))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: job
params:
  base: { type: string, required: true }
steps:
  - id: wait_job
    http: { url: "{{ params.base }}/job" }
    until: result.json.status == "done"
    fail_when: result.json.status == "failed"
    interval: 100ms
    timeout: 5m
"#,
    );
    let run = run_against(&sb, &server).await;
    run.expect_code(1);
    assert!(run.elapsed < Duration::from_mins(1), "{:?}", run.elapsed);
    assert!(
        run.stdout
            .contains("`fail_when: result.json.status == \"failed\"` holds after 3 polls"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("result.json.status = \"failed\""),
        "the values are shown: {}",
        run.stdout
    );
}

#[test]
fn delay_waits_before_the_first_attempt() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: delayed
steps:
  - id: mark
    run: "date +%s.%N > before"
  - id: later
    delay: 1s
    run: "date +%s.%N > after"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    let read = |name: &str| -> f64 {
        sb.read(name)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let waited = read("after") - read("before");
    assert!(waited >= 1.0, "the first attempt started {waited}s later");
    assert!(
        run.has_line_starting("wait later: waiting 1s before the first attempt"),
        "{}",
        run.stdout
    );
}

#[test]
fn result_json_of_output_that_is_not_json_is_an_error_quoting_the_output() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: not-json
steps:
  - id: probe
    run: "echo not json"
    outputs:
      x: "{{ result.json.x }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    let failure = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("FAILED probe"))
        .unwrap_or_else(|| panic!("no failure in {}", run.stdout))
        .to_owned();
    assert!(failure.contains("result.json"), "{failure}");
    assert!(failure.contains("not JSON: `not json`"), "{failure}");
}

#[test]
fn result_json_is_defined_tells_json_from_text() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: json-or-not
steps:
  - id: text
    run: "echo plain"
    outputs:
      is_json: "{{ 'json' if result.json is defined else 'text' }}"
  - id: data
    run: "echo '{\"a\": 1}'"
    outputs:
      is_json: "{{ 'json' if result.json is defined else 'text' }}"
  - id: show
    run: "echo {{ steps.text.outputs.is_json }} {{ steps.data.outputs.is_json }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(run.printed("show"), ["text json"]);
}

#[test]
fn an_env_entry_that_renders_to_none_is_left_out() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: env-none
params:
  profile: { type: string, default: "" }
env:
  PROFILE: default
steps:
  - id: show
    env:
      PROFILE: "{{ params.profile or none }}"
      KEPT: "yes"
    run: "echo profile=${PROFILE-unset} kept=$KEPT"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(run.printed("show"), ["profile=unset kept=yes"]);
}

#[test]
fn result_stdout_has_no_newline_the_command_did_not_print() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: stdout
steps:
  - id: printed
    run: "printf 200"
    until: result.stdout == "200"
    interval: 100ms
    timeout: 2s
  - id: echoed
    run: "echo 200; echo; echo"
    until: result.stdout == "200"
    interval: 100ms
    timeout: 2s
  - id: inner
    run: "printf 'a\n\nb\n'"
    outputs:
      text: "{{ result.stdout | to_json }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    let shown = sb.cli(&["show", run.run_id().expect("a run id"), "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("show is JSON");
    let inner = shown["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "inner"))
        .expect("inner is shown");
    assert_eq!(
        inner["outputs"]["text"],
        json!("\"a\\n\\nb\""),
        "trailing newlines go, as with $(…); inner ones stay"
    );
}
