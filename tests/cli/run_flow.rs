//! `runbook run` end to end, the graph: what runs after a failure, `finally`, conditions, checks,
//! gates (manual, destructive), fan-out and calls.

use std::fmt::Write as _;

use crate::run_support::Sandbox;

#[test]
fn finally_runs_after_a_failure_and_sees_the_run_failed() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: failing
steps:
  - id: breaks
    run: "echo about to fail; exit 3"
  - id: dependent
    run: touch dependent-ran
finally:
  - id: cleanup
    run: "echo {{ run.status }} > final-status"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert_eq!(sb.read("final-status").trim(), "failed");
    assert!(!sb.exists("dependent-ran"), "{}", run.stdout);
    assert!(
        run.stdout.contains("breaks failed: exited with code 3"),
        "{}",
        run.stdout
    );
}

#[test]
fn finally_sees_the_run_succeeded() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: passing
steps:
  - id: works
    run: "true"
finally:
  - id: cleanup
    run: "echo {{ run.status }} > final-status"
"#,
    );
    sb.run(&[]).expect_code(0);
    assert_eq!(sb.read("final-status").trim(), "succeeded");
}

#[test]
fn a_step_whose_check_succeeds_is_not_run() {
    let sb = Sandbox::new();
    sb.write("already-there", "");
    sb.runbook(
        r#"
name: checked
steps:
  - id: create
    check: { run: "test -e already-there" }
    run: touch create-ran
  - id: create_missing
    check: { run: "test -e not-there" }
    run: touch create-missing-ran
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert!(!sb.exists("create-ran"));
    assert!(sb.exists("create-missing-ran"));
    let ok = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("ok create in"))
        .unwrap_or_else(|| panic!("no result line for `create` in {}", run.stdout))
        .to_owned();
    assert!(ok.contains("already in place"), "{ok}");
}

#[test]
fn a_false_when_skips_the_step_and_its_dependents_still_run() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: conditional
params:
  enabled: { type: bool, default: false }
steps:
  - id: optional
    when: params.enabled
    run: touch optional-ran
  - id: next
    run: "echo {{ steps.optional.status }} > optional-status"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert!(!sb.exists("optional-ran"));
    assert_eq!(sb.read("optional-status").trim(), "skipped");
    assert!(run.has_line_starting("skipped optional"), "{}", run.stdout);
}

#[test]
fn an_allowed_failure_does_not_fail_the_run() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: tolerant
steps:
  - id: best_effort
    allow_failure: true
    run: "exit 7"
  - id: next
    run: "echo {{ steps.best_effort.status }} > best-effort-status"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(sb.read("best-effort-status").trim(), "failed");
    assert!(
        run.has_line_starting("FAILED best_effort"),
        "{}",
        run.stdout
    );
}

const MANUAL: &str = r#"
name: with-manual
steps:
  - id: before
    run: touch before-ran
  - id: approve
    manual: "Check the dashboard, then continue."
  - id: after
    run: touch after-ran
"#;

#[test]
fn a_manual_step_without_a_terminal_pauses_the_run() {
    let sb = Sandbox::new();
    sb.runbook(MANUAL);
    let run = sb.run(&[]);
    run.expect_code(3);
    assert!(sb.exists("before-ran"));
    assert!(!sb.exists("after-ran"));
    assert!(
        run.stdout.contains("Check the dashboard, then continue."),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--approve approve"), "{}", run.stdout);
}

#[test]
fn a_manual_step_is_not_approved_by_yes_but_by_approve_all() {
    let sb = Sandbox::new();
    sb.runbook(MANUAL);
    sb.run(&["--yes"]).expect_code(3);
    assert!(!sb.exists("after-ran"));
    let approved = sb.run(&["--approve-all"]);
    approved.expect_code(0);
    assert!(sb.exists("after-ran"));
    assert!(
        approved.stdout.contains("approved approve by ")
            && approved.stdout.contains(" with --approve-all"),
        "{}",
        approved.stdout
    );
}

#[test]
fn a_destructive_step_without_yes_or_a_terminal_refuses_before_anything_runs() {
    let sb = Sandbox::new();
    sb.runbook(
        r"
name: dangerous
steps:
  - id: harmless
    run: touch harmless-ran
  - id: wipe
    destructive: true
    run: touch wipe-ran
",
    );
    let run = sb.run(&[]);
    run.expect_code(2);
    assert!(!sb.exists("harmless-ran"));
    assert!(!sb.exists("wipe-ran"));
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);

    sb.run(&["--yes"]).expect_code(0);
    assert!(sb.exists("wipe-ran"));
}

/// Each item appends `start ITEM` and `end ITEM` to `trace`, with a pause in between.
const TRACED: &str =
    r#"echo "start {{ item }}" >> trace; sleep 0.2; echo "end {{ item }}" >> trace"#;

/// The items of a trace, asserting that no item started before the previous one ended.
fn sequential_items(trace: &str) -> Vec<String> {
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len() % 2, 0, "{trace}");
    lines
        .chunks(2)
        .map(|pair| {
            let item = pair[0]
                .strip_prefix("start ")
                .unwrap_or_else(|| panic!("items overlap:\n{trace}"));
            assert_eq!(pair[1], format!("end {item}"), "items overlap:\n{trace}");
            item.to_owned()
        })
        .collect()
}

#[test]
fn for_each_over_a_literal_list_runs_one_node_per_item() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: literal
steps:
  - id: greet
    for_each: [alpha, beta, gamma]
    as: who
    run: "echo hello {{ who }}"
  - id: summary
    run: "echo {{ steps.greet.status }}: {{ steps.greet.items | map(attribute='item') | join(',') }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(run.printed("summary"), ["succeeded: alpha,beta,gamma"]);
    assert_eq!(run.printed("greet[0]"), ["hello alpha"]);
    assert_eq!(run.printed("greet[1]"), ["hello beta"]);
    assert_eq!(run.printed("greet[2]"), ["hello gamma"]);
    for i in 0..3 {
        assert!(
            run.has_line_starting(&format!("ok greet[{i}] in")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn for_each_over_a_param_list_respects_its_max_parallel() {
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r"
name: from-params
params:
  nodes: {{ type: list, required: true }}
steps:
  - id: visit
    for_each: params.nodes
    max_parallel: 1
    run: '{TRACED}'
"
    ));
    let run = sb.run(&["--set", "nodes=[a,b,c]", "--max-parallel", "8"]);
    run.expect_code(0);
    let mut items = sequential_items(&sb.read("trace"));
    items.sort();
    assert_eq!(items, ["a", "b", "c"]);
    for i in 0..3 {
        assert!(
            run.has_line_starting(&format!("start visit[{i}]")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn for_each_over_an_earlier_steps_output_is_expanded_at_run_time() {
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r#"
name: dynamic
steps:
  - id: discover
    run: "echo '[\"x\", \"y\", \"z\"]'"
    outputs:
      found: "{{{{ result.json }}}}"
  - id: visit
    for_each: steps.discover.outputs.found
    max_parallel: 1
    run: '{TRACED}'
  - id: summary
    run: "echo {{{{ steps.visit.items | map(attribute='item') | join(',') }}}}"
"#
    ));
    let run = sb.run(&["--max-parallel", "8"]);
    run.expect_code(0);
    let mut items = sequential_items(&sb.read("trace"));
    items.sort();
    assert_eq!(items, ["x", "y", "z"]);
    for i in 0..3 {
        assert!(
            run.has_line_starting(&format!("ok visit[{i}] in")),
            "{}",
            run.stdout
        );
    }
    assert_eq!(run.printed("summary"), ["x,y,z"], "{}", run.stdout);
}

#[test]
fn a_call_runs_the_other_runbooks_steps_with_its_params() {
    let sb = Sandbox::new();
    sb.write(
        "lib/greet.yaml",
        r#"
name: greet
params:
  who: { type: string, required: true }
  greeting: { type: string, default: hello }
steps:
  - id: say
    run: "echo {{ params.greeting }} {{ params.who }} > greeted-{{ params.who }}; echo said it"
    outputs:
      said: "{{ params.greeting }} {{ params.who }}"
"#,
    );
    sb.runbook(
        r#"
name: caller
steps:
  - id: welcome
    call: lib/greet.yaml
    with: { who: operator }
  - id: after
    run: "echo callee said {{ steps.welcome.status }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    // The callee's commands run in the caller's working directory.
    assert_eq!(sb.read("greeted-operator").trim(), "hello operator");
    assert_eq!(run.printed("welcome.say"), ["said it"], "{}", run.stdout);
    assert!(run.has_line_starting("ok welcome.say in"), "{}", run.stdout);
    assert_eq!(run.printed("after"), ["callee said succeeded"]);
}

#[test]
fn a_called_runbooks_finally_reports_its_own_procedure_and_is_skipped_when_never_called() {
    let sb = Sandbox::new();
    sb.write(
        "lib/part.yaml",
        r#"
name: part
params:
  tag: { type: string, required: true }
steps:
  - id: work
    run: "true"
finally:
  - id: report
    run: "echo {{ params.tag }} ended {{ run.status }} >> reports"
"#,
    );
    sb.runbook(
        r#"
name: caller
steps:
  - id: first
    call: lib/part.yaml
    with: { tag: first }
  - id: boom
    run: "exit 3"
  - id: second
    call: lib/part.yaml
    with: { tag: second }
finally:
  - id: overall
    run: "echo run ended {{ run.status }} >> reports"
"#,
    );
    sb.run(&[]).expect_code(1);
    let reports = sb.read("reports");
    let lines: Vec<&str> = reports.lines().collect();
    assert!(
        lines.contains(&"first ended succeeded"),
        "the first call's own procedure succeeded: {reports}"
    );
    assert!(lines.contains(&"run ended failed"), "{reports}");
    assert!(
        !reports.contains("second"),
        "the second call never started, so its finally is skipped: {reports}"
    );
}

#[test]
fn a_long_chain_of_steps_runs_in_time_linear_in_its_length() {
    // Each step's template context is built without copying every other step's state: 5 000
    // steps take well under a second here, where a quadratic context took minutes.
    let mut yaml = String::from("name: long\nsteps:\n  - id: s0\n    assert: \"true\"\n");
    for i in 1..5000 {
        let before = i - 1;
        let _ = write!(
            yaml,
            "  - id: s{i}\n    assert: steps.s{before}.status == 'succeeded'\n"
        );
    }
    let sb = Sandbox::new();
    sb.runbook(&yaml);
    let run = sb.run(&[]);
    run.expect_code(0);
    assert!(
        run.elapsed < std::time::Duration::from_secs(30),
        "took {:?}",
        run.elapsed
    );
}
