//! `runbook run` end to end, what must never leak or be misread: quoted params stay one literal
//! argument, and secrets never appear in anything printed, for real or in a rehearsal; a
//! secret too short to mask is refused before anything runs.

use crate::run_support::Sandbox;

#[test]
fn a_quoted_param_arrives_as_one_literal_argument() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: quoting
params:
  label: { type: string, required: true }
steps:
  - id: show
    run: |
      set -- {{ params.label | quote }}
      echo "argc=$#"
      printf '<%s>\n' "$1"
"#,
    );
    let hostile = "'; touch PWNED #";
    let run = sb.run(&["--set", &format!("label={hostile}")]);
    run.expect_code(0);
    assert!(!sb.exists("PWNED"));
    assert_eq!(
        run.printed("show"),
        ["argc=1".to_owned(), format!("<{hostile}>")],
        "{}",
        run.stdout
    );
}

const TOKEN: &str = "tok-3f9a7c61e2";
const FILE_SECRET: &str = "file-secret-b81d44";

fn with_secrets() -> Sandbox {
    let sb = Sandbox::new().env("RB_E2E_TOKEN", TOKEN);
    sb.write("secrets/db_password", &format!("{FILE_SECRET}\n"));
    sb.runbook(
        r#"
name: secrets
secrets:
  token: { env: RB_E2E_TOKEN }
  db_password: { file: secrets/db_password }
steps:
  - id: leak
    env: { TOKEN: "{{ secrets.token }}" }
    run: |
      echo "token=$TOKEN"
      echo "password={{ secrets.db_password }}"
      echo "to stderr: $TOKEN" >&2
    outputs:
      echoed: "{{ result.stdout }}"
  - id: probe
    http:
      url: "http://127.0.0.1:9/{{ secrets.token }}"
      headers: { Authorization: "Bearer {{ secrets.token }}" }
      timeout: 1s
    allow_failure: true
"#,
    );
    sb
}

#[track_caller]
fn assert_masked(text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(FILE_SECRET),
        "a secret leaked:\n{text}"
    );
}

#[test]
fn secrets_are_masked_in_everything_a_run_prints() {
    let sb = with_secrets();
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_masked(&run.all());
    assert_eq!(
        run.printed("leak"),
        ["token=***", "password=***"],
        "{}",
        run.stdout
    );
    assert!(
        run.has_line_starting("leak ! to stderr: ***"),
        "{}",
        run.stdout
    );
    // The request failed; its description and error are masked too.
    assert!(run.stdout.contains("Bearer ***"), "{}", run.stdout);
}

#[test]
fn secrets_are_masked_in_a_rehearsal() {
    let sb = with_secrets();
    let run = sb.run(&["--dry-run"]);
    run.expect_code(0);
    assert_masked(&run.all());
    assert!(
        run.stdout.contains(r#"echo "password=***""#),
        "{}",
        run.stdout
    );

    let json = sb
        .command(["run", "runbook.yaml", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert!(json.status.success());
    assert_masked(&String::from_utf8_lossy(&json.stdout));
    assert_masked(&String::from_utf8_lossy(&json.stderr));
}

#[test]
fn a_secret_quoted_in_a_failure_message_is_masked_on_screen_and_on_disk() {
    let sb = Sandbox::new().env("RB_E2E_TOKEN", TOKEN);
    sb.runbook(
        r#"
name: failing-secret
secrets:
  token: { env: RB_E2E_TOKEN }
steps:
  - id: capture
    run: "echo session=$TOKEN"
    env: { TOKEN: "{{ secrets.token }}" }
    outputs:
      # regex_capture's error quotes the text it searched: the secret, before masking.
      id: "{{ result.stdout | regex_capture('no such (thing)') }}"
"#,
    );
    let run = sb.run(&["--run-id", "leaky"]);
    run.expect_code(1);
    assert!(run.all().contains("does not match"), "{}", run.all());
    assert!(!run.all().contains(TOKEN), "{}", run.all());
    assert!(run.all().contains("***"), "{}", run.all());
    for file in crate::run_support::files_below(&sb.join(".runbook")) {
        let stored = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&stored).contains(TOKEN),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn a_secret_too_short_to_mask_is_refused_before_anything_runs() {
    let sb = Sandbox::new().env("RB_SHORT", "x");
    sb.runbook(
        r#"
name: short
secrets:
  key: { env: RB_SHORT }
steps:
  - id: probe
    run: "pgrep -x nginx >> trace || echo none >> trace"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("secret `key` is 1 character long: too short to be masked"),
        "{}",
        run.stderr
    );
    assert!(!sb.exists("trace"), "nothing ran");
    assert!(!run.all().contains("***"), "{}", run.all());
}
