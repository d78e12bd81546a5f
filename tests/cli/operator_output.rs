//! What a run and the history commands show the operator: everything in plan order, normal
//! checks and polls shown quietly, `-q`/`-v`, errors that keep their context, help that says
//! what each command does.

use crate::run_support::Sandbox;

/// The rows of a run's summary table: (step, status, attempts), and the table's lines.
fn summary_rows(stdout: &str) -> (Vec<(String, String, String)>, Vec<String>) {
    let lines: Vec<&str> = stdout.lines().map(crate::run_support::unstamped).collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("step ") && l.contains("attempts"))
        .unwrap_or_else(|| panic!("a summary table:\n{stdout}"));
    let table: Vec<String> = lines[header..]
        .iter()
        .take_while(|l| !l.is_empty() && !l.starts_with("succeeded") && !l.starts_with("failed"))
        .map(|l| (*l).to_owned())
        .collect();
    let rows = table[1..]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.split("  ").filter(|c| !c.trim().is_empty()).collect();
            (
                cells[0].trim().to_owned(),
                cells[1].trim().to_owned(),
                cells[2].trim().to_owned(),
            )
        })
        .collect();
    (rows, table)
}

const ORDERED: &str = r#"
name: ordered
steps:
  - id: fan
    for_each: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    as: n
    max_parallel: 12
    run: |
      sleep "$(printf '0.%02d' $(( 60 - {{ n }} * 5 )))"
      echo item {{ n }}
  - id: broken
    run: exit 1
  - id: never
    run: echo never
finally:
  - id: note
    run: echo note
"#;

#[test]
fn summaries_and_logs_list_steps_in_plan_order_with_never_run_steps() {
    let sb = Sandbox::new();
    sb.runbook(ORDERED);
    let run = sb.run(&["--run-id", "o1"]);
    run.expect_code(1);
    let (rows, _) = summary_rows(&run.stdout);
    let ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    // The fan-out's own row (how long all its items took), then its items by index, though
    // the last items finished first.
    let mut expected = vec!["fan".to_owned()];
    expected.extend((0..12).map(|i| format!("fan[{i}]")));
    expected.extend(["broken", "never", "note"].map(str::to_owned));
    assert_eq!(ids, expected, "{}", run.stdout);
    let never = &rows[14];
    assert_eq!((never.1.as_str(), never.2.as_str()), ("not run", "-"));

    // `show` too: the pending main step above the `finally` step that ran.
    let shown = sb.cli(&["show", "o1", "--format", "json"]);
    shown.expect_code(0);
    let document: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    let shown_ids: Vec<&str> = document["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(shown_ids, expected, "{}", shown.stdout);

    let logs = sb.cli(&["logs", "o1"]);
    logs.expect_code(0);
    let headers: Vec<&str> = logs
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("=== "))
        .collect();
    assert_eq!(headers, expected, "{}", logs.stdout);
    let fan3 = logs
        .stdout
        .split("=== ")
        .find(|block| block.starts_with("fan[3]\n"))
        .expect("fan[3]'s log");
    assert!(fan3.contains("\nitem 3\n"), "{}", logs.stdout);
}

#[test]
fn the_summary_columns_line_up() {
    let sb = Sandbox::new();
    sb.runbook(
        r"
name: columns
steps:
  - id: a_rather_long_step_name
    run: echo one
  - id: b
    run: exit 1
  - id: c
    run: echo never
",
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    let (_, table) = summary_rows(&run.stdout);
    let header = &table[0];
    let status = header.find("status").expect("a status column");
    let attempts_end = header.find("attempts").expect("an attempts column") + "attempts".len();
    for row in &table[1..] {
        let chars: Vec<char> = row.chars().collect();
        assert!(
            chars[status - 1] == ' ' && chars[status] != ' ',
            "each status starts under its header: {table:#?}"
        );
        assert!(
            chars[attempts_end - 1] != ' ' && chars.get(attempts_end) == Some(&' '),
            "each attempt count ends under its header: {table:#?}"
        );
    }
}

const QUIETLY: &str = r#"
name: quietly
steps:
  - id: start_service
    check: { run: "echo 'curl: (7) Failed to connect' >&2; exit 7" }
    run: echo starting
  - id: health
    run: |
      n=$(( $(cat polls 2>/dev/null || echo 0) + 1 ))
      echo "$n" > polls
      if [ "$n" -lt 3 ]; then echo "curl: (7) Connection refused" >&2; exit 7; fi
      echo healthy
    until: result.exit_code == 0
    interval: 100ms
    timeout: 30s
"#;

#[test]
fn a_successful_run_prints_no_error_looking_lines_for_checks_and_polls() {
    let sb = Sandbox::new();
    sb.runbook(QUIETLY);
    let run = sb.run(&["--run-id", "q1"]);
    run.expect_code(0);
    // (The script, shown as the step starts, has the words; what it printed is marked `!`.)
    for noise in ["Failed to connect", "start_service !", "health !"] {
        assert!(!run.stdout.contains(noise), "{noise}:\n{}", run.stdout);
    }
    assert!(
        run.lines()
            .iter()
            .any(|l| l.starts_with("ok health in") && l.contains("held after 3 polls")),
        "{}",
        run.stdout
    );
    assert!(
        run.has_line_starting("wait health: not yet after poll 2"),
        "{}",
        run.stdout
    );
    // The details are in the steps' logs.
    let check = sb.cli(&["logs", "q1", "start_service"]);
    assert!(
        check.stdout.contains("Failed to connect"),
        "{}",
        check.stdout
    );
    let polls = sb.cli(&["logs", "q1", "health"]);
    assert!(
        polls.stdout.contains("Connection refused"),
        "{}",
        polls.stdout
    );
}

#[test]
fn verbose_shows_what_checks_and_polls_printed_and_quiet_only_the_verdict() {
    let sb = Sandbox::new();
    sb.runbook(QUIETLY);
    let verbose = sb.run(&["-v"]);
    verbose.expect_code(0);
    assert!(
        verbose
            .stdout
            .contains("start_service ! curl: (7) Failed to connect"),
        "{}",
        verbose.stdout
    );
    assert!(
        verbose
            .stdout
            .contains("health ! curl: (7) Connection refused"),
        "{}",
        verbose.stdout
    );
    assert!(
        verbose.stdout.contains("is not true yet"),
        "{}",
        verbose.stdout
    );

    std::fs::remove_file(sb.join("polls")).expect("the poll counter is there");
    let quiet = sb.run(&["--quiet"]);
    quiet.expect_code(0);
    let lines = quiet.lines();
    assert_eq!(lines.len(), 1, "only the verdict: {}", quiet.stdout);
    assert!(lines[0].starts_with("succeeded in"), "{}", quiet.stdout);

    let failing = Sandbox::new();
    failing.runbook(
        "name: f\nsteps:\n  - id: fine\n    run: echo fine\n  - id: broken\n    run: exit 3\n",
    );
    let quiet = failing.run(&["-q"]);
    quiet.expect_code(1);
    assert!(quiet.has_line_starting("FAILED broken"), "{}", quiet.stdout);
    assert!(!quiet.stdout.contains("fine"), "{}", quiet.stdout);
    assert!(quiet.stdout.contains("broken failed: "), "{}", quiet.stdout);
}

#[test]
fn errors_keep_their_context() {
    let sb = Sandbox::new();
    let missing = sb.cli(&["run", "nope.yaml"]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("nope.yaml")
            && missing.stderr.contains("No such file or directory"),
        "{}",
        missing.stderr
    );

    std::fs::create_dir(sb.join("runbooks")).expect("a folder");
    let folder = sb.cli(&["run", "runbooks/"]);
    folder.expect_code(2);
    assert!(
        folder.stderr.contains("runbooks") && folder.stderr.contains("Is a directory"),
        "{}",
        folder.stderr
    );

    sb.runbook(
        "name: p\nparams:\n  size: { type: int, default: 1 }\n  snapshot: { type: string, required: true }\nsteps:\n  - id: a\n    run: echo {{ params.size }}\n",
    );
    sb.write(
        "prod.yaml",
        "# production\nsnapshot: nightly\nsize: large\n",
    );
    let bad = sb.cli(&[
        "run",
        "runbook.yaml",
        "--params",
        "prod.yaml",
        "--no-progress",
    ]);
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("prod.yaml:3:") && bad.stderr.contains("size"),
        "names the file and line: {}",
        bad.stderr
    );

    let malformed = sb.cli(&["run", "runbook.yaml", "--set", "snapshot", "--no-progress"]);
    malformed.expect_code(2);
    let errors: Vec<&str> = malformed
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error: {}", malformed.stderr);
    assert!(errors[0].contains("--set snapshot"), "{}", malformed.stderr);
}

#[test]
fn each_command_has_its_own_help() {
    let sb = Sandbox::new();
    for command in ["runs", "show"] {
        let help = sb.cli(&[command, "--help"]);
        help.expect_code(0);
        assert!(
            !help.stdout.contains("rehearsal"),
            "{command} --help speaks of the rehearsal: {}",
            help.stdout
        );
        assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
    }
    for command in [
        "list",
        "describe",
        "stop",
        "prune",
        "completions",
        "man",
        "validate",
    ] {
        let help = sb.cli(&[command, "--help"]);
        help.expect_code(0);
        assert!(
            help.stdout.contains("Examples:\n  ") && help.stdout.contains("runbook "),
            "{command} --help has examples: {}",
            help.stdout
        );
    }
}

#[test]
fn stdout_and_stderr_lines_keep_the_order_they_were_printed_in() {
    // Two readers, each woken on its own, swapped these lines for about one item in twenty.
    const ITEMS: usize = 200;
    let sb = Sandbox::new();
    sb.runbook(&format!(
        r#"
name: interleaved
steps:
  - id: fail
    for_each: "{{{{ range({ITEMS}) | list }}}}"
    max_parallel: 8
    allow_failure: true
    run: echo about to fail; echo "disk full" >&2; exit 1
"#
    ));
    let run = sb.run(&["--run-id", "i1"]);
    run.expect_code(0);
    let logs = sb.cli(&["logs", "i1"]);
    logs.expect_code(0);
    for i in 0..ITEMS {
        let id = format!("fail[{i}]");
        // Shown as it ran: one sequence for both streams, each line tagged.
        let shown: Vec<&str> = run
            .lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(format!("{id} ").as_str()))
            .filter(|l| l.starts_with("| ") || l.starts_with("! "))
            .collect();
        assert_eq!(shown, ["| about to fail", "! disk full"], "{}", run.stdout);
        // And stored so.
        let log = logs
            .stdout
            .split("=== ")
            .find(|block| block.starts_with(&format!("{id}\n")))
            .unwrap_or_else(|| panic!("{id}'s log: {}", logs.stdout));
        let printed: Vec<&str> = log
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("--- "))
            .collect();
        assert_eq!(printed, ["about to fail", "! disk full"], "{log}");
    }
}

#[test]
fn a_step_that_printed_nothing_has_no_log_file_and_logs_shows_its_start_and_end_from_the_journal() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: quiet
steps:
  - id: silent
    run: "true"
  - id: talk
    run: echo hello
  - id: again
    run: test -f tried || { touch tried; exit 1; }
    retry: { attempts: 2, delay: 0s }
  - id: broken
    run: exit 3
"#,
    );
    sb.run(&["--run-id", "q1"]).expect_code(1);
    let logs = ".runbook/runs/q1/logs";
    assert!(
        !sb.exists(&format!("{logs}/silent.log")),
        "no file for a silent step"
    );
    assert!(
        !sb.exists(&format!("{logs}/broken.log")),
        "nor for a silent failure"
    );
    assert!(sb.exists(&format!("{logs}/talk.log")));
    assert!(
        sb.exists(&format!("{logs}/again.log")),
        "a retry is something to tell"
    );

    let one = |step: &str| {
        let shown = sb.cli(&["logs", "q1", step]);
        shown.expect_code(0);
        crate::run_support::log_lines(&shown.stdout)
    };
    assert_eq!(one("silent"), ["--- attempt 1: true", "--- succeeded"]);
    assert_eq!(
        one("broken"),
        ["--- attempt 1: exit 3", "--- failed: exited with code 3"]
    );
    assert_eq!(
        one("talk"),
        ["--- attempt 1: echo hello", "hello", "--- succeeded"]
    );
    let again = one("again");
    assert_eq!(
        again.first().map(String::as_str),
        Some("--- attempt 1: test -f tried || { touch tried; exit 1; }")
    );
    assert_eq!(again.last().map(String::as_str), Some("--- succeeded"));

    // Every step, in plan order, each under its `=== ID` line, as before.
    let all = sb.cli(&["logs", "q1"]);
    all.expect_code(0);
    let headers: Vec<&str> = all
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("=== "))
        .collect();
    assert_eq!(
        headers,
        ["silent", "talk", "again", "broken"],
        "{}",
        all.stdout
    );
    assert!(all.stdout.contains("attempt 1: true\n"), "{}", all.stdout);

    // The report of the failure quotes the failed step's lines as well.
    let report = sb.cli(&["report", "q1", "--format", "md"]);
    report.expect_code(0);
    assert!(
        report.stdout.contains("failed: exited with code 3"),
        "{}",
        report.stdout
    );
}
