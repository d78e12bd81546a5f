//! `runbook run --dry-run` end to end: the rehearsal is honest. A read-only step that needs
//! values known only at run time is not run with placeholders in it; a list known only at run
//! time reads as unknown, not as an invented item; a failed probe is marked and the rest of the
//! plan is still shown; names are rendered.

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
