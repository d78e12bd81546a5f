//! Estimates from history: a runbook of `sleep` steps with a known critical path is run a few
//! times for real, then its rehearsal estimates the run within 10% of that path — with a branch
//! off the path, a fan-out capped by `max_parallel`, a manual step left out, and a step new to
//! the runbook named as having no history. `show` of a running run tells what is left.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run_support::Sandbox;

/// `slow` (600ms) and `quick` (200ms) both follow `first` (300ms); `fan` has 4 items of 200ms
/// two at a time (400ms); then `last` (200ms). Critical path: 300 + 600 + 400 + 200 = 1500ms.
const TIMED: &str = "\
name: timed
steps:
  - id: first
    sleep: 300ms
  - id: slow
    needs: [first]
    sleep: 600ms
  - id: quick
    needs: [first]
    sleep: 200ms
  - id: fan
    needs: [slow, quick]
    for_each: [1, 2, 3, 4]
    max_parallel: 2
    sleep: 200ms
  - id: last
    needs: [fan]
    sleep: 200ms
";

const CRITICAL_PATH_MS: f64 = 1500.0;

fn rehearsal_estimate(sb: &Sandbox) -> Value {
    let run = sb.run(&["--dry-run", "--format", "json"]);
    run.expect_code(0);
    let document: Value = serde_json::from_str(&run.stdout).expect("the rehearsal is JSON");
    document["estimate"].clone()
}

#[test]
fn the_estimate_from_past_runs_is_within_ten_percent_of_the_critical_path() {
    let sb = Sandbox::new();
    sb.runbook(TIMED);
    let estimate = rehearsal_estimate(&sb);
    assert_eq!(estimate["runs"], 0, "{estimate}");

    for _ in 0..3 {
        sb.run(&[]).expect_code(0);
    }
    let estimate = rehearsal_estimate(&sb);
    assert_eq!(estimate["runs"], 3, "{estimate}");
    let median = estimate["median_ms"].as_f64().expect("a median");
    let p90 = estimate["p90_ms"].as_f64().expect("a p90");
    let error = (median - CRITICAL_PATH_MS).abs() / CRITICAL_PATH_MS;
    assert!(
        error <= 0.10,
        "estimated {median}ms for a {CRITICAL_PATH_MS}ms critical path ({:.1}% off)",
        error * 100.0
    );
    assert!(p90 >= median, "{estimate}");
    assert_eq!(estimate["without_history"], serde_json::json!([]));

    let text = sb.run(&["--dry-run"]);
    text.expect_code(0);
    let last = text.lines().last().copied().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("estimated duration: 1.") && last.ends_with("from 3 past runs"),
        "{}",
        text.stdout
    );
}

#[test]
fn new_steps_are_named_and_manual_steps_are_shown_apart() {
    let sb = Sandbox::new();
    sb.runbook("name: grows\nsteps:\n  - id: a\n    sleep: 100ms\n");
    sb.run(&[]).expect_code(0);
    sb.runbook(
        "name: grows\nsteps:\n  - id: a\n    sleep: 100ms\n  - id: approve\n    manual: Go on?\n  - id: fresh\n    for_each: [1, 2]\n    sleep: 10ms\n  - id: newer\n    sleep: 10ms\n",
    );
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    let lines = run.lines();
    let at = lines
        .iter()
        .position(|l| l.starts_with("estimated duration: "))
        .unwrap_or_else(|| panic!("no estimate:\n{}", run.stdout));
    assert!(
        lines[at].ends_with("from 1 past run; no history for: fresh, newer"),
        "{}",
        lines[at]
    );
    assert_eq!(
        lines.get(at + 1).copied(),
        Some("  not counted, waiting for people: approve")
    );
}

#[test]
fn show_of_a_running_run_tells_the_expected_remaining_time() {
    let sb = Sandbox::new();
    sb.runbook("name: long\nsteps:\n  - id: a\n    sleep: 200ms\n  - id: b\n    sleep: 3s\n");
    sb.run(&[]).expect_code(0);
    let mut child = sb
        .command(["run", "runbook.yaml", "--no-progress", "--run-id", "live"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the run starts");
    let started = Instant::now();
    let mut remaining = None;
    while started.elapsed() < Duration::from_secs(3) {
        let show = sb.cli(&["show", "live"]);
        if let Some(line) = show
            .lines()
            .into_iter()
            .find(|l| l.starts_with("expected remaining: "))
        {
            remaining = Some(line.to_owned());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let json: serde_json::Value =
        serde_json::from_str(&sb.cli(&["show", "live", "--format", "json"]).stdout)
            .expect("show --format json prints JSON");
    let _ = child.wait();
    let line = remaining.expect("show of the running run tells what is left");
    assert!(line.ends_with("(medians of 1 past run)"), "{line}");
    let left = &json["expected_remaining"];
    assert_eq!(left["past_runs"], 1, "{json}");
    let ms = left["ms"].as_u64().expect("milliseconds left");
    assert!(ms > 0 && ms <= 3200, "at most the medians of a and b: {ms}");
    let done = sb.cli(&["show", "live"]);
    assert!(
        !done.stdout.contains("expected remaining"),
        "a finished run has nothing left:\n{}",
        done.stdout
    );
    let done: serde_json::Value =
        serde_json::from_str(&sb.cli(&["show", "live", "--format", "json"]).stdout)
            .expect("show --format json prints JSON");
    assert!(done.get("expected_remaining").is_none(), "{done}");
}

#[test]
fn a_rehearsal_of_part_of_a_runbook_estimates_only_that_part() {
    let sb = Sandbox::new();
    sb.runbook("name: part\nsteps:\n  - id: a\n    sleep: 600ms\n  - id: b\n    needs: [a]\n    sleep: 200ms\n");
    sb.run(&[]).expect_code(0);
    // Grown by a manual step and a step new to the runbook, neither of them asked for.
    sb.runbook(
        "name: part\nsteps:\n  - id: a\n    sleep: 600ms\n  - id: b\n    needs: [a]\n    sleep: 200ms\n  - id: approve\n    needs: [b]\n    manual: Go on?\n  - id: fresh\n    needs: [approve]\n    sleep: 10ms\n",
    );
    let run = sb.run(&["--dry-run", "--format", "json", "--only", "b", "--yes"]);
    run.expect_code(0);
    let document: Value = serde_json::from_str(&run.stdout).expect("the rehearsal is JSON");
    let estimate = &document["estimate"];
    let median = estimate["median_ms"].as_f64().expect("a median");
    assert!(
        (150.0..450.0).contains(&median),
        "only b (200ms) is estimated, not a before it: {estimate}"
    );
    assert_eq!(estimate["without_history"], serde_json::json!([]));
    assert_eq!(estimate["manual"], serde_json::json!([]));
}
