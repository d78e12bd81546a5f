//! `runbook run` end to end, HTTP steps against a wiremock server: what the request carries,
//! which statuses succeed, JSON replies into outputs, and polling until a job is done.

use std::time::Instant;

use crate::run_support::{Run, Sandbox};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// Runs `runbook run runbook.yaml --no-progress --set base=URI` off the async runtime, so the
/// mock server keeps answering.
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

/// Writes `runbook.yaml`: a runbook named `name` whose `base` param is the mock server's URI (as
/// `run_against` sets it), with these steps.
fn runbook_with_base(sb: &Sandbox, name: &str, steps: &str) {
    sb.runbook(&format!(
        "name: {name}\nparams:\n  base: {{ type: string, required: true }}\nsteps:{steps}"
    ));
}

/// A mock of `GET route`.
fn get(route: &str) -> MockBuilder {
    Mock::given(method("GET")).and(path(route))
}

#[tokio::test]
async fn a_request_carries_its_method_headers_and_json_and_its_reply_becomes_outputs() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_snapshot/backups/nightly"))
        .and(header("x-api-key", "k-123"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({ "indices": ["orders", "customers"], "partial": false }),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "snapshot": { "uuid": "u-42" } })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: http-post
params:
  base: { type: string, required: true }
  indices: { type: list, default: [orders, customers] }
steps:
  - id: snapshot
    http:
      method: POST
      url: "{{ params.base }}/_snapshot/backups/nightly"
      headers: { x-api-key: k-123 }
      json: { indices: "{{ params.indices }}", partial: false }
      expect: { status: [201] }
    outputs:
      uuid: "{{ result.json.snapshot.uuid }}"
      status: "{{ result.status }}"
  - id: show
    run: "echo uuid={{ steps.snapshot.outputs.uuid }} status={{ steps.snapshot.outputs.status }}"
"#,
    );
    let run = run_against(&sb, &server).await;
    run.expect_code(0);
    assert_eq!(
        run.printed("show"),
        ["uuid=u-42 status=201"],
        "{}",
        run.stdout
    );
    // Dropping the server verifies `expect(1)`: exactly one matching request arrived.
}

#[tokio::test]
async fn expect_status_decides_which_replies_succeed() {
    let server = MockServer::start().await;
    get("/gone")
        .respond_with(ResponseTemplate::new(404).set_body_string("no such index"))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    // A probe of `/gone` with these extra settings, then a step that leaves a file.
    let write_probe = |expect: &str| {
        runbook_with_base(
            &sb,
            "http-expect",
            &format!(
                r#"
  - id: probe
    http: {{ url: "{{{{ params.base }}}}/gone"{expect} }}
  - id: after
    run: touch after-ran
"#
            ),
        );
    };

    write_probe(", expect: { status: [404] }");
    run_against(&sb, &server).await.expect_code(0);
    assert!(sb.exists("after-ran"));
    std::fs::remove_file(sb.join("after-ran")).unwrap();

    // Without `expect`, only a 2xx succeeds.
    write_probe("");
    let run = run_against(&sb, &server).await;
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("got HTTP 404, expected a 2xx status: no such index"),
        "{}",
        run.stdout
    );
    assert!(!sb.exists("after-ran"));
}

#[tokio::test]
async fn a_poll_waits_through_errors_and_pending_states_until_the_job_succeeds() {
    let server = MockServer::start().await;
    // Mocks answer in the order they were mounted, each until its count is used up.
    get("/jobs/7")
        .respond_with(ResponseTemplate::new(503).set_body_string("warming up"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    get("/jobs/7")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "state": "PROCESSING" })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    get("/jobs/7")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "state": "SUCCESS", "restored": 12 })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    runbook_with_base(
        &sb,
        "http-poll",
        r#"
  - id: wait_job
    http: { url: "{{ params.base }}/jobs/7" }
    until: result.json.state == "SUCCESS"
    interval: 100ms
    timeout: 30s
    outputs:
      restored: "{{ result.json.restored }}"
  - id: show
    run: "echo restored {{ steps.wait_job.outputs.restored }} indices"
"#,
    );
    let run = run_against(&sb, &server).await;
    run.expect_code(0);
    assert_eq!(
        run.printed("show"),
        ["restored 12 indices"],
        "{}",
        run.stdout
    );
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 4, "one request per poll");
}

#[tokio::test]
async fn a_poll_can_wait_for_an_error_status() {
    let server = MockServer::start().await;
    get("/old-index")
        .respond_with(ResponseTemplate::new(200).set_body_string("still deleting"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    get("/old-index")
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    runbook_with_base(
        &sb,
        "http-gone",
        r#"
  - id: wait_gone
    http: { url: "{{ params.base }}/old-index" }
    until: result.status == 404
    interval: 100ms
    timeout: 30s
  - id: after
    run: touch after-ran
"#,
    );
    let run = run_against(&sb, &server).await;
    run.expect_code(0);
    assert!(sb.exists("after-ran"));
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "one request per poll");
}

#[tokio::test]
async fn a_polls_timeout_also_bounds_a_request_that_hangs() {
    let server = MockServer::start().await;
    get("/slow")
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(20)))
        .mount(&server)
        .await;
    let sb = Sandbox::new();
    runbook_with_base(
        &sb,
        "http-hang",
        r#"
  - id: wait_slow
    http: { url: "{{ params.base }}/slow" }
    until: result.status == 200
    interval: 200ms
    timeout: 1s
"#,
    );
    let run = run_against(&sb, &server).await;
    run.expect_code(1);
    assert!(
        run.elapsed < std::time::Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stdout
            .contains("`until: result.status == 200` did not hold within 1s"),
        "{}",
        run.stdout
    );
}
