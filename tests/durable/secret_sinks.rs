//! Secrets that cannot leak: canaries (a single-line token from the environment, a multi-line
//! PEM key and a value with quotes, spaces and percent signs from files) are planted in a run,
//! printed as is and encoded, quoted in a failure, and searched for in every sink: the
//! terminal (a PTY) and piped output, every file of the state dir (journal, logs), `show`
//! (text and JSON), `logs`, and the argv and environment of the step's processes, read from
//! `/proc` while the step runs.

use std::path::Path;
use std::time::Duration;

use crate::durable_support::{Background, descendants_of, runbook};
use crate::run_support::{Sandbox, files_below};

const TOKEN: &str = "tok-7Qx9canary1e2";
const TOKEN_VAR: &str = "RB_CANARY_TOKEN";
const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7
qZ9y2kLmN3pR7sT1uV4wX6yZ8aB0cD2eF4gH6iJ8kL0mN2oP4qR6
-----END PRIVATE KEY-----";
const ODD: &str = r#"Sp3c"ial\x sp ace %41 it's"#;

/// What must never be seen: each canary, and each line of the key.
fn canaries() -> Vec<String> {
    let mut all = vec![TOKEN.to_owned(), ODD.to_owned(), PEM.to_owned()];
    all.extend(PEM.lines().skip(1).take(2).map(str::to_owned));
    // Distinctive parts, in case a canary is shown cut or differently quoted.
    all.extend([
        "7Qx9canary".to_owned(),
        "Sp3c".to_owned(),
        "qZ9y2kLmN3".to_owned(),
    ]);
    all
}

#[track_caller]
fn assert_clean(sink: &str, text: &str) {
    for canary in canaries() {
        assert!(
            !text.contains(&canary),
            "{sink} shows the secret {canary:?}:\n{text}"
        );
    }
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new().env(TOKEN_VAR, TOKEN);
    sb.write("secrets/key.pem", &format!("{PEM}\n"));
    sb.write("secrets/odd", ODD);
    sb.runbook(
        r#"
name: canaries
secrets:
  token: { env: RB_CANARY_TOKEN }
  pem: { file: secrets/key.pem }
  odd: { file: secrets/odd }
steps:
  - id: print
    run: |
      echo "token={{ secrets.token }}"
      printf '%s\n' {{ secrets.pem | quote }}
      printf '%s\n' {{ secrets.odd | quote }} >&2
      printf '%s' {{ secrets.odd | quote }} | base64
      printf 'user:%s' {{ secrets.token | quote }} | base64
    outputs:
      shown: "{{ result.stdout }}"
  - id: hold
    needs: [print]
    run: |
      key={{ secrets.pem | quote }}; odd={{ secrets.odd | quote }}; token={{ secrets.token }}
      echo "$$" > hold.pid
      sleep 30 &
      echo "$!" > child.pid
      wait
  - id: request
    needs: [hold]
    http:
      url: "http://127.0.0.1:9/x?k={{ secrets.odd }}&t={{ secrets.token }}"
      timeout: 1s
    allow_failure: true
  - id: fail
    needs: [request]
    run: 'echo "failing with {{ secrets.odd | quote }}" >&2; exit 3'
"#,
    );
    sb
}

/// The text of `/proc/PID/FILE`, NULs as spaces.
fn proc_text(pid: &str, file: &str) -> String {
    std::fs::read(Path::new("/proc").join(pid).join(file))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Every process whose environment names this run: the step's processes.
fn processes_of_run(run_id: &str) -> Vec<String> {
    let needle = format!("RUNBOOK_RUN_ID={run_id} ");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|pid| pid.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| format!("{} ", proc_text(pid, "environ")).contains(&needle))
        .collect()
}

#[test]
fn secret_canaries_reach_no_sink_and_no_command_line() {
    let sb = sandbox();
    let mut engine = Background::start(
        &sb,
        "engine",
        &["run", "runbook.yaml", "--run-id", "canary", "--no-progress"],
    );
    engine.wait_until("the hold step's child", Duration::from_secs(30), || {
        !sb.read("child.pid").trim().is_empty()
    });
    let hold: String = sb.read("hold.pid").trim().to_owned();
    let processes = processes_of_run("canary");
    assert!(
        processes.contains(&hold) && processes.contains(&sb.read("child.pid").trim().to_owned()),
        "the step's shell {hold} and its child are found: {processes:?}"
    );
    // The engine's own helpers too: the dead man's switch (a shell and its awk).
    let helpers: Vec<String> = descendants_of(engine.pid())
        .iter()
        .map(i32::to_string)
        .filter(|pid| !processes.contains(pid))
        .collect();
    assert!(
        helpers
            .iter()
            .any(|pid| proc_text(pid, "cmdline").contains("trap '' HUP")),
        "the dead man's switch is found among the engine's processes: {:?}",
        helpers
            .iter()
            .map(|pid| proc_text(pid, "cmdline"))
            .collect::<Vec<_>>()
    );
    for pid in &helpers {
        let environ = proc_text(pid, "environ");
        assert!(
            !environ.contains(TOKEN_VAR),
            "the engine's helper {pid} ({}) inherited the variable a secret is read from: {environ}",
            proc_text(pid, "cmdline")
        );
    }
    for pid in &processes {
        let argv = proc_text(pid, "cmdline");
        assert_clean(&format!("the argv of {pid} ({argv})"), &argv);
        let environ = proc_text(pid, "environ");
        assert!(
            !environ.contains(TOKEN_VAR),
            "{pid} inherited the variable a secret is read from: {environ}"
        );
        if *pid == hold {
            // The script's own shell read it from RUNBOOK_SCRIPT, which only its user (and
            // root) can read, as its memory; it unset it before running anything.
            continue;
        }
        assert_clean(&format!("the environment of {pid} ({argv})"), &environ);
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sb.read("child.pid").trim().parse().expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    );
    let run = engine.wait(Duration::from_mins(1));
    run.expect_code(1);
    assert_clean("piped output", &run.all());
    assert!(run.stdout.contains("token=***"), "{}", run.stdout);
    assert!(
        run.stdout.contains("k=***"),
        "the URL-encoded form: {}",
        run.stdout
    );

    for file in files_below(&sb.join(".runbook")) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        assert_clean(&file.display().to_string(), &text);
    }
    for args in [
        vec!["show", "canary"],
        vec!["show", "canary", "--format", "json"],
        vec!["logs", "canary", "print"],
        vec!["logs", "canary", "fail"],
        vec!["logs", "canary", "request"],
    ] {
        let shown = runbook(&sb, &args);
        assert_clean(&args.join(" "), &shown.all());
    }
    let logged = runbook(&sb, &["logs", "canary", "print"]);
    assert!(
        logged.stdout.matches("***").count() >= 6,
        "every line of the key, the token and the encoded forms are masked:\n{}",
        logged.stdout
    );
}

#[test]
fn secret_canaries_do_not_reach_a_terminal() {
    let sb = sandbox();
    // The `hold` step waits for its child; the test lets it go at once.
    sb.runbook(&sb.read("runbook.yaml").replace("sleep 30 &", "sleep 0 &"));
    let binary = assert_cmd::cargo::cargo_bin("runbook");
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "{} run runbook.yaml --run-id tty",
            binary.display()
        ))
        .arg("/dev/null")
        .current_dir(sb.path())
        .env("RUNBOOK_STATE_DIR", sb.join(".runbook"))
        .env(TOKEN_VAR, TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("canaries"), "the run was shown:\n{shown}");
    assert_clean("the terminal", &shown);
    assert_clean("stderr", &String::from_utf8_lossy(&output.stderr));
}
