//! Text that is not what a runbook author meant to write, through the real binary: characters
//! of more than one byte where a parser reports a column, bytes that are not UTF-8, files that
//! cannot be read. Each ends in exit 2 with a located message (or the OS's reason), never a
//! panic.

use crate::run_support::Sandbox;

/// Writes `runbook.yaml` as raw bytes.
fn write_bytes(sandbox: &Sandbox, bytes: &[u8]) {
    std::fs::write(sandbox.join("runbook.yaml"), bytes).expect("the file can be written");
}

/// Checks that `validate` and `run --dry-run` both refuse the sandbox's runbook with exit 2 and
/// report `header` first; returns what `validate` printed.
#[track_caller]
fn refused_at(sandbox: &Sandbox, header: &str) -> String {
    let validate = sandbox.cli(&["validate", "runbook.yaml"]);
    validate.expect_code(2);
    assert!(
        validate.stderr.starts_with(header),
        "expected `{header}`:\n{}",
        validate.stderr
    );
    let dry = sandbox.cli(&["run", "runbook.yaml", "--dry-run", "--no-progress"]);
    dry.expect_code(2);
    assert!(dry.stderr.starts_with(header), "{}", dry.stderr);
    validate.stderr
}

const STEP: &str = "name: t\nsteps:\n  - id: a\n";

#[test]
fn an_en_dash_in_a_value_does_not_panic() {
    let sandbox = Sandbox::new();
    // Copied from documentation: an en dash, then a `: ` that YAML does not allow there.
    sandbox.runbook(&format!("{STEP}    run: echo 1–2: x\n"));
    let stderr = refused_at(
        &sandbox,
        "runbook.yaml:4:18: error: invalid YAML: mapping values are not allowed in this context",
    );
    assert!(stderr.contains("must be quoted"), "{stderr}");

    sandbox.runbook(&format!("{STEP}    run: echo 1–2\n"));
    let run = sandbox.cli(&["run", "runbook.yaml", "--dry-run", "--no-progress"]);
    run.expect_code(0);
    assert!(run.stdout.contains("echo 1–2"), "{}", run.stdout);
}

#[test]
fn an_accented_letter_followed_by_a_nul_is_located_by_character() {
    let sandbox = Sandbox::new();
    write_bytes(&sandbox, format!("{STEP}    run: echo é\0x\n").as_bytes());
    refused_at(&sandbox, "runbook.yaml:4:16: error: invalid YAML:");
}

#[test]
fn a_line_separator_in_a_value_is_located_by_character() {
    let sandbox = Sandbox::new();
    sandbox.runbook(&format!("{STEP}    run: echo \u{2028} x: y\n"));
    refused_at(&sandbox, "runbook.yaml:4:18: error: invalid YAML:");
    sandbox.runbook(&format!("{STEP}    run: \"echo \u{2028}x\"\n"));
    sandbox.cli(&["validate", "runbook.yaml"]).expect_code(0);
}

#[test]
fn lone_carriage_returns_end_lines_as_yaml_says() {
    let sandbox = Sandbox::new();
    sandbox.runbook("name: t\rsteps:\r  - id: a\r    run: echo é x: y\r");
    refused_at(&sandbox, "runbook.yaml:4:18: error: invalid YAML:");
}

#[test]
fn a_latin1_file_names_the_first_bad_byte_by_line_and_column() {
    let sandbox = Sandbox::new();
    write_bytes(
        &sandbox,
        b"name: t\nsteps:\n  - id: a\n    run: echo caf\xE9\n",
    );
    let stderr = refused_at(
        &sandbox,
        "runbook.yaml:4:18: error: the file is not UTF-8 text: byte 0xE9 cannot appear here",
    );
    assert!(
        stderr.contains("iconv -f WINDOWS-1252 -t UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: 1 mistake in 1 of 1 file\n"),
        "{stderr}"
    );
}

#[test]
fn a_utf16_file_names_the_encoding() {
    let sandbox = Sandbox::new();
    let text = format!("{STEP}    run: echo hi\n");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    write_bytes(&sandbox, &bytes);
    let stderr = refused_at(
        &sandbox,
        "runbook.yaml:1:1: error: the file is UTF-16LE text; runbooks are UTF-8",
    );
    assert!(stderr.contains("byte order mark"), "{stderr}");
    // The snippet shows the text as it was meant.
    assert!(stderr.contains("1 │ name: t"), "{stderr}");

    let mut bytes = Vec::new();
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    write_bytes(&sandbox, &bytes);
    refused_at(
        &sandbox,
        "runbook.yaml:1:1: error: the file is UTF-16BE text; runbooks are UTF-8",
    );
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let sandbox = Sandbox::new();
    write_bytes(
        &sandbox,
        format!("\u{feff}{STEP}    run: echo hi\n").as_bytes(),
    );
    sandbox.cli(&["validate", "runbook.yaml"]).expect_code(0);
}

#[test]
fn a_missing_file_is_refused_with_the_os_reason_once() {
    let sandbox = Sandbox::new();
    let expected = "error: failed to read nope.yaml: No such file or directory (os error 2)\n";
    let validate = sandbox.cli(&["validate", "nope.yaml"]);
    validate.expect_code(2);
    assert_eq!(
        validate.stderr,
        format!("{expected}error: 1 mistake in 1 of 1 file\n")
    );
    for command in ["run", "graph"] {
        let run = sandbox.cli(&[command, "nope.yaml"]);
        run.expect_code(2);
        assert_eq!(run.stderr, expected, "{command}");
    }
}

#[test]
fn a_folder_passed_as_a_runbook_is_refused_with_the_os_reason() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.join("folder.yaml")).expect("a folder can be made");
    let run = sandbox.cli(&["run", "folder.yaml", "--dry-run"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr,
        "error: failed to read folder.yaml: Is a directory (os error 21)\n"
    );
}

#[test]
fn a_called_runbook_that_is_not_utf8_is_located_in_its_own_file() {
    let sandbox = Sandbox::new();
    sandbox.runbook("name: t\nsteps:\n  - id: a\n    call: part.yaml\n");
    std::fs::write(
        sandbox.join("part.yaml"),
        b"name: part\nsteps:\n  - id: b\n    run: echo \xFF\n",
    )
    .expect("the file can be written");
    let validate = sandbox.cli(&["validate", "runbook.yaml"]);
    validate.expect_code(2);
    assert!(
        validate
            .stderr
            .starts_with("part.yaml:4:15: error: the file is not UTF-8 text: byte 0xFF"),
        "{}",
        validate.stderr
    );
}
