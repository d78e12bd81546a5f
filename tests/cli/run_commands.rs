//! `runbook run` end to end, command steps: how a command is started (shell or argv, env, cwd),
//! what it prints, and how time limits, retries and polls treat it.

use std::io::{BufRead as _, BufReader};
use std::time::{Duration, Instant};

use crate::run_support::{Sandbox, processes_gone, unique, unstamped};

#[test]
fn a_script_runs_through_the_steps_shell() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: shells
defaults: { shell: bash }
steps:
  - id: default_shell
    run: |
      [[ "bash" == b* ]] && echo "bash features work"
      echo "one" | tr o 0
  - id: own_shell
    shell: sh
    run: 'echo "shell=$0"'
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.printed("default_shell"),
        ["bash features work", "0ne"],
        "{}",
        run.stdout
    );
    assert_eq!(run.printed("own_shell"), ["shell=sh"], "{}", run.stdout);
}

#[test]
fn an_argv_runs_the_program_without_a_shell() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: argv
steps:
  - id: direct
    run: [printf, "<%s>", "$HOME", "a; touch injected", "*"]
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.printed("direct"),
        ["<$HOME><a; touch injected><*>"],
        "{}",
        run.stdout
    );
    assert!(!sb.exists("injected"));
}

#[test]
fn env_and_cwd_reach_the_command() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.join("work")).unwrap();
    sb.runbook(
        r#"
name: env-cwd
env: { FROM_RUNBOOK: runbook-wide, OVERRIDDEN: runbook }
steps:
  - id: show
    env: { FROM_STEP: "step {{ 1 + 1 }}", OVERRIDDEN: step }
    cwd: work
    run: |
      echo "$FROM_RUNBOOK/$FROM_STEP/$OVERRIDDEN"
      basename "$(pwd)"
      touch made-here
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.printed("show"),
        ["runbook-wide/step 2/step", "work"],
        "{}",
        run.stdout
    );
    assert!(sb.exists("work/made-here"));
}

#[test]
fn output_is_streamed_as_it_is_printed() {
    let sb = Sandbox::new();
    sb.runbook(
        r"
name: stream
steps:
  - id: talk
    run: |
      echo first
      echo to-stderr >&2
      sleep 2
      echo second
",
    );
    let started = Instant::now();
    let mut child = sb
        .command(["run", "runbook.yaml", "--no-progress"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen: Vec<(Duration, String)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        seen.push((started.elapsed(), unstamped(&line).to_owned()));
    }
    assert!(child.wait().unwrap().success());
    let at = |text: &str| {
        seen.iter()
            .find(|(_, l)| l == text)
            .map_or_else(|| panic!("no line {text:?} in {seen:?}"), |(t, _)| *t)
    };
    assert!(seen.iter().any(|(_, l)| l == "talk ! to-stderr"));
    // The first line is shown while the step still sleeps, not when it ends.
    assert!(
        at("talk | second").saturating_sub(at("talk | first")) >= Duration::from_secs(1),
        "{seen:?}"
    );
}

#[test]
fn output_beyond_the_capture_limit_is_truncated_and_the_step_still_succeeds() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: big
steps:
  - id: big
    run: "head -c 2000000 /dev/zero | tr '\\0' x | fold -w 100"
    outputs:
      truncated: "{{ result.truncated }}"
      kept: "{{ result.stdout | length }}"
  - id: report
    run: "echo truncated={{ steps.big.outputs.truncated | to_json }} kept={{ steps.big.outputs.kept }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    // Every line is still shown live; only the captured `result` is capped.
    assert_eq!(run.printed("big").len(), 20_000);
    let report = run.printed("report");
    assert_eq!(report.len(), 1, "{report:?}");
    let kept: usize = report[0]
        .strip_prefix("truncated=true kept=")
        .unwrap_or_else(|| panic!("unexpected report {report:?}"))
        .parse()
        .unwrap();
    assert!(kept <= 1 << 20 && kept > 1 << 19, "kept {kept} bytes");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "500");
    // A duration no other process uses, so pgrep finds only this test's sleeps.
    let marker = format!("300.{}", unique());
    sb.runbook(&format!(
        r#"
name: timeout
steps:
  - id: hang
    timeout: 1s
    run: "sleep {marker} & sleep {marker} & wait"
  - id: after
    run: touch after
"#
    ));
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("hang in") && run.stdout.contains("timed out after 1s"),
        "{}",
        run.stdout
    );
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
    let left = processes_gone(&format!("sleep {marker}"), Duration::from_secs(3));
    assert!(left.is_empty(), "still running: {left:?}");
    assert!(!sb.exists("after"));
}

#[test]
fn retries_wait_by_the_backoff_schedule() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: retry
steps:
  - id: flaky
    retry: { attempts: 4, delay: 200ms, backoff: 2 }
    run: |
      date +%s.%N >> times
      n=$(( $(cat count 2>/dev/null || echo 0) + 1 ))
      echo "$n" > count
      [ "$n" -ge 4 ]
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(sb.read("count").trim(), "4");
    let times: Vec<f64> = sb
        .read("times")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(times.len(), 4, "{times:?}");
    for (i, wanted) in [0.2, 0.4, 0.8].into_iter().enumerate() {
        let gap = times[i + 1] - times[i];
        assert!(
            gap >= wanted * 0.9,
            "gap {i} was {gap:.3}s, wanted about {wanted}s: {times:?}"
        );
    }
    assert_eq!(
        run.lines()
            .iter()
            .filter(|l| l.starts_with("retry flaky: attempt"))
            .count(),
        3,
        "{}",
        run.stdout
    );
}

#[test]
fn until_gives_up_at_its_timeout() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: poll-timeout
steps:
  - id: never
    run: "echo not-yet >> polls"
    until: result.stdout | trim == "ready"
    interval: 200ms
    timeout: 1s
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}",
        run.elapsed
    );
    let failure = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("FAILED never"))
        .unwrap_or_else(|| panic!("no failure line in {}", run.stdout))
        .to_owned();
    assert!(
        failure.contains("`until: result.stdout | trim == \"ready\"` did not hold within 1s"),
        "{failure}"
    );
    let polls = sb.read("polls").lines().count();
    assert!((2..=8).contains(&polls), "{polls} polls");
}

#[test]
fn an_explicit_interval_wins_over_defaults_interval() {
    // The step waits 5s between polls, as written: within its 1s timeout that is one poll. The
    // runbook's default of 100ms would make it about ten.
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: interval
defaults: { interval: 100ms }
steps:
  - id: never
    run: "echo poll >> polls"
    until: "false"
    interval: 5s
    timeout: 1s
"#,
    );
    sb.run(&[]).expect_code(1);
    assert_eq!(sb.read("polls").lines().count(), 1, "{}", sb.read("polls"));
}

#[test]
fn defaults_interval_applies_when_a_step_names_none() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: interval
defaults: { interval: 100ms }
steps:
  - id: never
    run: "echo poll >> polls"
    until: "false"
    timeout: 1s
"#,
    );
    sb.run(&[]).expect_code(1);
    let polls = sb.read("polls").lines().count();
    assert!(polls >= 3, "{polls} polls in 1s at 100ms apart");
}

#[test]
fn until_gives_up_at_its_timeout_even_while_an_attempt_hangs() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "500");
    let marker = format!("300.{}", unique());
    sb.runbook(&format!(
        r#"
name: poll-hang
steps:
  - id: stuck
    run: "sleep {marker}"
    until: result.exit_code == 0
    interval: 200ms
    timeout: 1s
"#
    ));
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stdout
            .contains("`until: result.exit_code == 0` did not hold within 1s"),
        "{}",
        run.stdout
    );
    let left = processes_gone(&format!("sleep {marker}"), Duration::from_secs(3));
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn until_stops_polling_when_the_condition_holds() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: poll-ok
steps:
  - id: job
    run: |
      n=$(( $(cat count 2>/dev/null || echo 0) + 1 ))
      echo "$n" > count
      if [ "$n" -ge 3 ]; then state=done; else state=busy; fi
      printf '{"state": "%s", "poll": %d}\n' "$state" "$n"
    until: result.json.state == "done"
    interval: 100ms
    timeout: 30s
    outputs:
      poll: "{{ result.json.poll }}"
  - id: show
    run: "echo finished at poll {{ steps.job.outputs.poll }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(sb.read("count").trim(), "3");
    assert_eq!(
        run.printed("show"),
        ["finished at poll 3"],
        "{}",
        run.stdout
    );
}

#[test]
fn an_interrupt_stops_the_running_step_and_exits_130() {
    let sb = Sandbox::new().env("RUNBOOK_KILL_GRACE_MS", "500");
    let marker = format!("300.{}", unique());
    sb.runbook(&format!(
        r"
name: interrupted
steps:
  - id: long
    run: 'sleep {marker}'
  - id: after
    run: touch after-ran
finally:
  - id: cleanup
    run: touch finally-ran
"
    ));
    let mut child = sb
        .command(["run", "runbook.yaml", "--no-progress"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until the step runs, then press Ctrl-C.
    for line in lines.by_ref() {
        if unstamped(&line.unwrap()).starts_with("start long") {
            break;
        }
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    let left = processes_gone(&format!("sleep {marker}"), Duration::from_secs(3));
    assert!(left.is_empty(), "still running: {left:?}");
    // `resume` continues an interrupted run, so neither later steps nor `finally` ran.
    assert!(!sb.exists("after-ran"));
    assert!(!sb.exists("finally-ran"));
}
