//! How a `run:` script reaches its process: a simple command is executed directly (one exec,
//! the program is its process group's leader) with the same output, exit status and errors the
//! shell would give; any other script reaches its shell without its text on a command line; the
//! variables secrets are read from are not passed on.

use crate::run_support::Sandbox;

/// `pid pgrp` of a `cat /proc/self/stat` line.
fn pid_and_group(stat: &str) -> (String, String) {
    let after_comm = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_comm.split(' ').collect();
    let pid = stat.split(' ').next().unwrap_or_default().to_owned();
    // After `(comm)`: state, ppid, pgrp.
    (pid, fields.get(2).copied().unwrap_or_default().to_owned())
}

#[test]
fn a_simple_command_is_executed_without_a_shell_and_as_the_shell_would() {
    let sb = Sandbox::new();
    sb.write("no-shebang", "echo from a file without a shebang\n");
    std::fs::set_permissions(
        sb.join("no-shebang"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    sb.runbook(
        r#"
name: direct
steps:
  - id: direct
    run: /bin/cat /proc/self/stat
  - id: shelled
    run: /bin/cat /proc/self/stat; true
  - id: words
    run: "/bin/echo  a   b=c  %41 "
  - id: on_path
    run: env
  - id: without_shebang
    run: ./no-shebang
  - id: missing_file
    run: ./not-here
    allow_failure: true
  - id: missing_program
    run: no-such-program-anywhere --flag
    allow_failure: true
  - id: exit_status
    run: /bin/false
    allow_failure: true
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    let (pid, group) = pid_and_group(run.printed("direct")[0]);
    assert_eq!(
        pid, group,
        "the program leads its own group: no shell before it"
    );
    let (pid, group) = pid_and_group(run.printed("shelled")[0]);
    assert_ne!(pid, group, "a list goes through the shell, which forks cat");
    assert_eq!(run.printed("words"), ["a b=c %41"]);
    let env = run.printed("on_path");
    assert!(
        env.iter().any(|l| l.starts_with("RUNBOOK_STEP=on_path")),
        "{env:?}"
    );
    assert!(
        env.iter().all(|l| !l.starts_with("RUNBOOK_SCRIPT=")),
        "{env:?}"
    );
    assert_eq!(
        run.printed("without_shebang"),
        ["from a file without a shebang"]
    );
    for (id, said) in [
        (
            "missing_file",
            "missing_file ! sh: 1: eval: ./not-here: not found",
        ),
        (
            "missing_program",
            "missing_program ! sh: 1: eval: no-such-program-anywhere: not found",
        ),
    ] {
        assert!(run.has_line_starting(said), "{id}: {}", run.stdout);
    }
    let shown = sb.cli(&["show", run.run_id().expect("a run id"), "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    let reason = |id: &str| {
        shown["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id))
            .map(|s| s["reason"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(reason("missing_file"), "exited with code 127");
    assert_eq!(reason("missing_program"), "exited with code 127");
    assert_eq!(reason("exit_status"), "exited with code 1");
}

#[test]
fn a_script_reaches_its_shell_off_the_command_line_in_any_posix_shell() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: hidden
steps:
  - id: dash
    run: |
      tr '\0' ' ' < /proc/$$/cmdline; echo
      echo "script var: ${RUNBOOK_SCRIPT:-unset}"
      set -- one "two words"; echo "$# $2"
  - id: bash
    shell: bash
    run: |
      [[ -n "$BASH_VERSION" ]] && echo "bash $0"
      tr '\0' ' ' < /proc/$$/cmdline; echo
      exit 7
    allow_failure: true
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    let dash = run.printed("dash");
    assert!(
        !dash[0].contains("echo"),
        "the script is not in argv: {dash:?}"
    );
    assert_eq!(dash[1..], ["script var: unset", "2 two words"]);
    let bash = run.printed("bash");
    assert_eq!(bash[0], "bash bash");
    assert!(!bash[1].contains("BASH_VERSION"), "{bash:?}");
    assert!(run.stdout.contains("exited with code 7"), "{}", run.stdout);
}

#[test]
fn the_variables_secrets_are_read_from_are_not_passed_on_unless_a_step_asks() {
    let sb = Sandbox::new().env("RB_SOURCE_OF_SECRET", "s3cr3t-from-env");
    sb.runbook(
        r#"
name: sources
secrets:
  token: { env: RB_SOURCE_OF_SECRET }
steps:
  - id: inherited
    run: env
  - id: asked
    env: { RB_SOURCE_OF_SECRET: "{{ secrets.token }}" }
    run: 'test "$RB_SOURCE_OF_SECRET" = s3cr3t-from-env && echo given'
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert!(
        run.printed("inherited")
            .iter()
            .all(|l| !l.starts_with("RB_SOURCE_OF_SECRET=")),
        "{}",
        run.stdout
    );
    assert_eq!(run.printed("asked"), ["given"]);
}
