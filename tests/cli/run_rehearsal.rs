//! `runbook run --dry-run` end to end: the rehearsal is honest. A read-only step that needs
//! values known only at run time is not run with placeholders in it; a list known only at run
//! time reads as unknown, not as an invented item; a failed probe is marked and the rest of the
//! plan is still shown; names are rendered; a destructive call is flagged and confirmed; the items
//! of a fan-out inside a call are listed in order.

use crate::run_support::Sandbox;

#[test]
fn a_safe_step_that_needs_run_time_values_is_not_run_in_the_rehearsal() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: honest
steps:
  - id: a
    run: "echo value"
    outputs:
      v: "{{ result.stdout }}"
  - id: probe
    safe: true
    run: "echo got {{ steps.a.outputs.v }} >> ran"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert!(
        !sb.exists("ran"),
        "the probe ran with a placeholder in its command"
    );
    assert!(
        run.stdout.contains("needs values known at run time"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_rehearsal_shows_items_known_only_at_run_time_as_unknown() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: honest
steps:
  - id: list
    run: "echo '[1, 2]'"
    outputs:
      xs: "{{ result.json }}"
  - id: each
    for_each: steps.list.outputs.xs
    run: "echo {{ item }}"
  - id: count
    run: "echo {{ steps.each.items }}"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("echo <steps.each.items>"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_rehearsal_goes_on_after_a_failed_probe_and_ends_failed() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: honest
steps:
  - id: probe
    safe: true
    run: "echo broken; exit 3"
    outputs:
      version: "{{ result.stdout }}"
  - id: upgrade
    run: "echo upgrading from {{ steps.probe.outputs.version }}"
  - id: verify
    assert: "1 == 1"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(1);
    assert!(run.has_line_starting("FAILED probe"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("echo upgrading from <steps.probe.outputs.version>"),
        "what needs the probe is shown, with its value unknown: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("3. verify"),
        "the whole plan is shown: {}",
        run.stdout
    );
}

#[test]
fn a_step_name_is_rendered() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: names
params:
  service: { type: string, default: nginx }
steps:
  - id: stop
    name: "Stop {{ params.service }}"
    run: "echo stop"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("1. stop — Stop nginx"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failed_until_shows_the_values_it_read() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: until-values
steps:
  - id: wait
    run: "echo '{\"state\": \"starting\"}'"
    until: result.json.state == "ready"
    interval: 100ms
    timeout: 300ms
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("result.json.state = \"starting\""),
        "{}",
        run.stdout
    );
}

const DESTRUCTIVE_CALL: &str = r#"
name: caller
steps:
  - id: before
    run: "echo before >> trace"
  - id: wipe
    destructive: true
    call: wipe.yaml
"#;

const WIPE: &str = r#"
name: wipe
steps:
  - id: rm
    run: "echo rm >> trace"
"#;

#[test]
fn a_destructive_call_is_flagged_in_the_rehearsal_and_confirmed_before_it_runs() {
    let sb = Sandbox::new();
    sb.runbook(DESTRUCTIVE_CALL);
    sb.write("wipe.yaml", WIPE);
    let rehearsal = sb.run(&["--dry-run"]);
    rehearsal.expect_code(0);
    assert!(
        rehearsal
            .stdout
            .contains("2. wipe [DESTRUCTIVE: asks first]"),
        "{}",
        rehearsal.stdout
    );

    // Without a terminal nobody can be asked: nothing runs, not even the steps before it.
    let refused = sb.run(&[]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("this runbook has destructive steps (wipe)"),
        "{}",
        refused.stderr
    );
    assert_eq!(sb.read("trace"), "", "nothing ran");

    sb.run(&["--yes"]).expect_code(0);
    assert_eq!(sb.read("trace"), "before\nrm\n");
}

#[test]
fn the_items_of_a_fan_out_inside_a_call_are_listed_in_order() {
    let sb = Sandbox::new();
    sb.runbook(
        "
name: caller
steps:
  - id: group
    call: each.yaml
",
    );
    sb.write(
        "each.yaml",
        r#"
name: each
params:
  xs: { type: list, default: [a, b, c, d, e, f, g, h, i, j, k, l] }
steps:
  - id: each
    for_each: "{{ params.xs }}"
    run: "echo {{ item }}"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    let items: Vec<&str> = run
        .lines()
        .into_iter()
        .filter_map(|l| l.split_once(". group.each[").map(|(_, rest)| rest))
        .collect();
    let expected: Vec<String> = (0..12).map(|i| format!("{i}]")).collect();
    assert_eq!(items, expected, "{}", run.stdout);
}
