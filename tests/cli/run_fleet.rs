//! `runbook run` end to end, fan-outs as fleet procedures: batches in order, a gate between
//! batches, a failure budget, per-item `finally` of a fanned-out call, hosts from a step's
//! output. (Over real SSH hosts in `tests/drills/`; here the items are local commands.)

use crate::run_support::Sandbox;

/// The lines of `trace`, each `START item` or `END item`.
fn trace(sb: &Sandbox) -> Vec<String> {
    sb.read("trace").lines().map(str::to_owned).collect()
}

/// `runbook show ID --format json`, parsed.
fn show(sb: &Sandbox, id: &str) -> serde_json::Value {
    let output = sb
        .command(["show", id, "--format", "json"])
        .output()
        .expect("runbook starts");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("show --format json is JSON")
}

const TRACED: &str = "echo START {{ item }} >> trace; sleep 0.2; echo END {{ item }} >> trace";

#[test]
fn batches_of_one_then_half_run_in_order_each_ending_before_the_next() {
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r#"
name: rolling
steps:
  - id: restart
    for_each: [n1, n2, n3, n4, n5]
    batch: [1, "50%"]
    run: "{TRACED}"
"#
    ));
    let run = sb.run(&[]);
    run.expect_code(0);
    let lines = trace(&sb);
    // Batches: [n1], [n2, n3, n4] (50% of 5, rounded up), [n5].
    let position = |line: &str| {
        lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line} missing: {lines:?}"))
    };
    assert!(position("END n1") < position("START n2"), "{lines:?}");
    for n in ["n2", "n3", "n4"] {
        assert!(
            position(&format!("END {n}")) < position("START n5"),
            "{lines:?}"
        );
        assert!(
            position(&format!("START {n}")) > position("END n1"),
            "{lines:?}"
        );
    }
    let starts_of_second: Vec<usize> = ["n2", "n3", "n4"]
        .iter()
        .map(|n| position(&format!("START {n}")))
        .collect();
    let ends_of_second: Vec<usize> = ["n2", "n3", "n4"]
        .iter()
        .map(|n| position(&format!("END {n}")))
        .collect();
    assert!(
        starts_of_second.iter().max() < ends_of_second.iter().min(),
        "the second batch runs side by side: {lines:?}"
    );
    assert!(
        run.has_line_starting("batch 2 of 3 of restart: n2, n3, n4"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_gate_that_does_not_hold_stops_the_remaining_batches() {
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r#"
name: gated
steps:
  - id: restart
    for_each: [n1, n2, n3]
    batch: 1
    run: "{TRACED}"
    gate:
      run: "cat health 2>/dev/null || echo red"
      until: result.stdout == "green"
      interval: 100ms
      timeout: 1s
  - id: after
    run: "echo after >> trace"
"#
    ));
    sb.write("health", "red\n");
    let run = sb.run(&[]);
    run.expect_code(1);
    let lines = trace(&sb);
    assert_eq!(lines, ["START n1", "END n1"], "no batch after the gate");
    assert!(
        run.stdout
            .contains("the gate after batch 1 did not hold: `until: result.stdout == \"green\"` did not hold within 1s"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("result.stdout = \"red\""),
        "{}",
        run.stdout
    );
}

#[test]
fn a_gate_that_holds_lets_the_next_batch_start() {
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r#"
name: gated
steps:
  - id: restart
    for_each: [n1, n2]
    batch: 1
    run: "{TRACED}"
    gate:
      run: "echo green"
      until: result.stdout == "green"
"#
    ));
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(trace(&sb), ["START n1", "END n1", "START n2", "END n2"]);
    assert!(
        run.has_line_starting(
            "ok gate of restart after batch 1: `result.stdout == \"green\"` held after 1 poll"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failure_budget_of_one_tolerates_one_failed_item_and_fails_on_the_second() {
    let sb = Sandbox::new();
    let book = |fail: &str| {
        format!(
            r#"
name: budget
steps:
  - id: patch
    for_each: [n1, n2, n3, n4]
    max_parallel: 1
    max_failures: 1
    run: "echo {{{{ item }}}} >> trace; case ' {fail} ' in *' {{{{ item }}}} '*) exit 1;; esac"
  - id: after
    run: "echo after >> trace"
"#
        )
    };
    sb.runbook(&book("n2"));
    let run = sb.run(&["--run-id", "one"]);
    run.expect_code(0);
    assert_eq!(trace(&sb), ["n1", "n2", "n3", "n4", "after"]);
    let shown = show(&sb, "one");
    let patch = shown["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "patch"))
        .unwrap_or_else(|| panic!("patch in {shown:#}"));
    assert_eq!(patch["status"], "succeeded", "{patch:#}");
    assert_eq!(patch["items"][1]["status"], "failed", "{patch:#}");
    assert!(
        patch["reason"]
            .as_str()
            .is_some_and(|r| r.contains("within the step's failure budget")),
        "{patch:#}"
    );

    std::fs::remove_file(sb.join("trace")).expect("the trace can be removed");
    sb.runbook(&book("n2 n3"));
    let run = sb.run(&["--run-id", "two"]);
    run.expect_code(1);
    assert_eq!(trace(&sb), ["n1", "n2", "n3"], "n4 never starts");
    assert!(run.stdout.contains("2 of 4 items failed"), "{}", run.stdout);
}

#[test]
fn each_item_of_a_fanned_out_call_runs_its_finally_even_when_it_failed() {
    let sb = Sandbox::new();
    sb.write(
        "node.yaml",
        r#"
name: node
params:
  node: { type: string, required: true }
steps:
  - id: upgrade
    run: "echo upgrade {{ params.node }} >> trace; test {{ params.node }} != n2"
finally:
  - id: rejoin
    run: "echo rejoin {{ params.node }} {{ run.status }} >> trace"
"#,
    );
    sb.runbook(
        r#"
name: rolling
steps:
  - id: nodes
    for_each: [n1, n2, n3]
    as: node
    max_parallel: 1
    max_failures: 1
    call: node.yaml
    with: { node: "{{ node }}" }
"#,
    );
    sb.run(&[]).expect_code(0);
    assert_eq!(
        trace(&sb),
        [
            "upgrade n1",
            "rejoin n1 succeeded",
            "upgrade n2",
            "rejoin n2 failed",
            "upgrade n3",
            "rejoin n3 succeeded"
        ]
    );
}

#[test]
fn hosts_known_only_at_run_time_fan_out_by_name() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: discovered
steps:
  - id: members
    safe: true
    run: "echo '[\"db1.example\", \"db2.example\"]'"
    outputs:
      hosts: "{{ result.json }}"
  - id: greet
    on: "{{ steps.members.outputs.hosts }}"
    batch: 1
    run: "hostname"
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert!(run.stdout.contains("greet[db1.example]"), "{}", run.stdout);
    assert!(
        run.stdout.contains("batch 2 of 2 of greet: db2.example"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_empty_host_list_skips_the_step() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: nobody
params:
  hosts: { type: list, default: [] }
steps:
  - id: greet
    on: "{{ params.hosts }}"
    run: "hostname"
  - id: after
    run: "echo after"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert!(run.has_line_starting("skipped greet in"), "{}", run.stdout);
    assert!(run.stdout.contains("no hosts"), "{}", run.stdout);
    assert_eq!(run.printed("after"), ["after"]);
}

#[test]
fn a_call_fans_out_over_a_list_known_only_at_run_time() {
    let sb = Sandbox::new();
    sb.write(
        "node.yaml",
        r#"
name: node
params:
  node: { type: string, required: true }
steps:
  - id: drain
    run: "echo drain {{ params.node }} >> trace"
  - id: restart
    run: "echo restart {{ params.node }} >> trace"
finally:
  - id: undrain
    run: "echo undrain {{ params.node }} >> trace"
"#,
    );
    sb.runbook(
        r#"
name: rolling
steps:
  - id: members
    run: "echo '[\"n1\", \"n2\"]'"
    outputs:
      nodes: "{{ result.json }}"
  - id: roll
    for_each: steps.members.outputs.nodes
    as: node
    max_parallel: 1
    call: node.yaml
    with: { node: "{{ node }}" }
  - id: after
    run: "echo after {{ steps.roll.status }} {{ steps.roll.items | length }} >> trace"
"#,
    );
    let run = sb.run(&["--run-id", "dyn"]);
    run.expect_code(0);
    assert_eq!(
        trace(&sb),
        [
            "drain n1",
            "restart n1",
            "undrain n1",
            "drain n2",
            "restart n2",
            "undrain n2",
            "after succeeded 2"
        ]
    );
    let shown = show(&sb, "dyn");
    let ids: Vec<&str> = shown["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for id in ["roll[0].drain", "roll[1].undrain", "roll[0]", "roll"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
}

#[test]
fn a_called_runbook_fans_a_call_out_over_its_own_params() {
    let sb = Sandbox::new();
    sb.write(
        "leaf.yaml",
        "name: leaf\nparams:\n  x: { type: string, required: true }\nsteps:\n  - id: say\n    run: \"echo {{ params.x }} >> trace\"\n",
    );
    sb.write(
        "middle.yaml",
        r#"
name: middle
params:
  xs: { type: list, required: true }
steps:
  - id: each
    for_each: params.xs
    call: leaf.yaml
    with: { x: "{{ item }}" }
"#,
    );
    sb.runbook(
        "name: top\nsteps:\n  - id: mid\n    call: middle.yaml\n    with: { xs: [a, b, c] }\n",
    );
    let validated = sb
        .command(["validate", "runbook.yaml"])
        .output()
        .expect("runs");
    assert!(validated.status.success(), "{validated:?}");
    sb.run(&[]).expect_code(0);
    let mut said = trace(&sb);
    said.sort();
    assert_eq!(said, ["a", "b", "c"]);
}

#[test]
fn a_retried_call_runs_again_only_what_failed_or_never_ran() {
    let sb = Sandbox::new();
    sb.write(
        "part.yaml",
        r#"
name: part
steps:
  - id: once
    run: "echo once >> trace"
  - id: flaky
    run: "echo flaky >> trace; test -f ready || { touch ready; exit 1; }"
  - id: after
    run: "echo after >> trace"
finally:
  - id: cleanup
    run: "echo cleanup >> trace"
"#,
    );
    sb.runbook(
        "
name: retried
steps:
  - id: part
    call: part.yaml
    retry: { attempts: 2, delay: 100ms }
",
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(
        trace(&sb),
        ["once", "flaky", "flaky", "after", "cleanup"],
        "the succeeded step is not run again; finally runs once, at the end"
    );
    assert!(
        run.stdout.contains("retry part: attempt 1 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_calls_timeout_bounds_the_whole_call() {
    let sb = Sandbox::new();
    sb.write(
        "slow.yaml",
        r#"
name: slow
steps:
  - id: one
    run: "sleep 0.3; echo one >> trace"
  - id: two
    run: "sleep 30; echo two >> trace"
  - id: three
    run: "echo three >> trace"
finally:
  - id: cleanup
    run: "echo cleanup {{ run.status }} >> trace"
"#,
    );
    sb.runbook(
        "
name: bounded
steps:
  - id: slow
    call: slow.yaml
    timeout: 1s
",
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert_eq!(trace(&sb), ["one", "cleanup failed"]);
    assert!(
        run.elapsed < std::time::Duration::from_secs(20),
        "{:?}",
        run.elapsed
    );
    assert!(
        run.stdout.contains("its time limit (1s) passed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_call_whose_when_is_false_skips_every_step_of_it() {
    let sb = Sandbox::new();
    sb.write(
        "part.yaml",
        "name: part\nsteps:\n  - id: a\n    run: \"echo a >> trace\"\nfinally:\n  - id: f\n    run: \"echo f >> trace\"\n",
    );
    sb.runbook(
        "name: top\nsteps:\n  - id: part\n    call: part.yaml\n    when: \"false\"\n  - id: after\n    run: \"echo after >> trace\"\n",
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(trace(&sb), ["after"]);
    assert!(run.has_line_starting("skipped part in"), "{}", run.stdout);
}

#[test]
fn a_block_runs_its_steps_as_a_group_with_its_own_finally_per_item() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: blocks
params:
  nodes: { type: list, default: [n1, n2, n3] }
steps:
  - id: version
    run: "echo 7.2"
    outputs:
      v: "{{ result.stdout }}"
  - id: upgrade
    for_each: params.nodes
    as: node
    max_parallel: 1
    max_failures: 1
    block:
      - id: drain
        run: "echo drain {{ node }} >> trace"
      - id: install
        run: "echo install {{ steps.version.outputs.v }} on {{ node }} >> trace; test {{ node }} != n2"
    finally:
      - id: undrain
        run: "echo undrain {{ node }} {{ run.status }} >> trace"
  - id: after
    run: "echo after {{ steps.upgrade.status }} >> trace"
"#,
    );
    let run = sb.run(&["--run-id", "b"]);
    run.expect_code(0);
    assert_eq!(
        trace(&sb),
        [
            "drain n1",
            "install 7.2 on n1",
            "undrain n1 succeeded",
            "drain n2",
            "install 7.2 on n2",
            "undrain n2 failed",
            "drain n3",
            "install 7.2 on n3",
            "undrain n3 succeeded",
            "after succeeded"
        ]
    );
    let shown = show(&sb, "b");
    let ids: Vec<&str> = shown["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(ids.contains(&"upgrade[1].install"), "{ids:?}");
}

#[test]
fn a_block_whose_when_is_false_skips_all_its_steps() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: blocks
params:
  upgrade: { type: bool, default: false }
steps:
  - id: maybe
    when: params.upgrade
    block:
      - id: one
        run: "echo one >> trace"
      - id: two
        run: "echo two >> trace"
  - id: after
    run: "echo after >> trace"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(trace(&sb), ["after"]);
    assert!(
        run.has_line_starting("skipped maybe.one in"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_fan_out_in_a_groups_finally_runs_every_item() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: finally-fan
steps:
  - id: grp
    block:
      - id: work
        run: "exit 1"
    finally:
      - id: undo
        for_each: [a, b]
        run: "echo undo {{ item }} >> trace"
      - id: note
        run: "echo note >> trace"
"#,
    );
    sb.run(&[]).expect_code(1);
    let mut lines = trace(&sb);
    lines.sort();
    assert_eq!(lines, ["note", "undo a", "undo b"]);
}

#[test]
fn a_fan_out_over_a_list_that_turns_out_empty_ends_with_no_items() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: empty
params:
  none: { type: list, default: [] }
steps:
  - id: list
    run: "echo '[]'"
    outputs:
      xs: "{{ result.json }}"
  - id: each
    for_each: steps.list.outputs.xs
    run: "echo {{ item }} >> trace"
  - id: each_param
    for_each: params.none
    run: "echo {{ item }} >> trace"
  - id: after
    run: "echo after {{ steps.each.status }} {{ steps.each_param.status }} {{ steps.each.items | length }} >> trace"
"#,
    );
    sb.run(&[]).expect_code(0);
    assert_eq!(trace(&sb), ["after succeeded succeeded 0"]);
}

#[test]
fn a_failed_fan_out_inside_a_group_runs_the_group_and_run_finally() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: group-fan
steps:
  - id: grp
    block:
      - id: fan
        for_each: [1, 2]
        run: "exit 1"
      - id: later
        run: "echo later >> trace"
    finally:
      - id: cleanup
        run: "echo group cleanup >> trace"
finally:
  - id: report
    run: "echo run report {{ run.status }} >> trace"
"#,
    );
    sb.run(&[]).expect_code(1);
    assert_eq!(trace(&sb), ["group cleanup", "run report failed"]);
}

#[test]
fn a_probes_own_host_inside_a_called_runbook_is_the_host_its_caller_declares() {
    let sb = Sandbox::new();
    sb.write(
        "part.yaml",
        r#"
name: part
steps:
  - id: migrate
    check: { on: db, run: "test -f /var/lib/app/migrated" }
    run: "echo migrating"
"#,
    );
    sb.runbook(
        r#"
name: caller
hosts:
  db: { ssh: "admin@10.9.9.9", port: 2200 }
steps:
  - id: part
    call: part.yaml
"#,
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert!(
        run.all()
            .contains("[db: admin@10.9.9.9:2200] test -f /var/lib/app/migrated"),
        "{}",
        run.all()
    );
}
