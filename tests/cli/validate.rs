//! `runbook validate` on the fixture runbooks, through the real binary.
//!
//! - `tests/fixtures/valid/`: every runbook passes.
//! - `tests/fixtures/invalid/`: every runbook is rejected (exit 2), what it prints is the snapshot
//!   `tests/cli/snapshots/invalid/<name>.snap`, and it is reported at the places its first line
//!   promises: `# <the mistake> — expect LINE:COL[, LINE:COL…]`, one place per mistake. A
//!   snapshot alone could be accepted with a wrong location; the comment cannot.
//!
//! To review changed output: `INSTA_UPDATE=always cargo test --test cli validate::`, then read the
//! `.snap` files in `git diff`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The fixture folders, relative to the repository root (as paths are shown in diagnostics).
const VALID: &str = "tests/fixtures/valid";
const INVALID: &str = "tests/fixtures/invalid";

/// What one `runbook validate …` run printed.
struct Validation {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Validation {
    /// The `FILE:LINE:COL: error:` header lines, in order.
    fn diagnostics(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with([' ', '\t']) && !l.starts_with("error:"))
            .filter(|l| l.contains(": error: "))
            .collect()
    }
}

/// Runs `runbook validate ARGS…` from the repository root, without colors.
fn validate<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Validation {
    let output = Command::cargo_bin("runbook")
        .expect("the runbook binary is built")
        .arg("validate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("runbook starts");
    Validation {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// The `.yaml` files of a fixture folder, sorted, as paths relative to the repository root.
fn fixtures(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| Path::new(folder).join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {folder}");
    files
}

/// A path with `/` separators, as the binary prints it.
fn shown(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// What an invalid fixture's first line promises: the mistake, and where each one is reported.
struct Expectation {
    mistake: String,
    locations: Vec<String>,
}

fn expectation(path: &Path) -> Expectation {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let first = text.lines().next().unwrap_or_default();
    let (mistake, locations) = first
        .strip_prefix("# ")
        .and_then(|c| c.rsplit_once(" — expect "))
        .unwrap_or_else(|| {
            panic!(
                "{}: the first line must be `# <the mistake> — expect LINE:COL[, LINE:COL…]`",
                path.display()
            )
        });
    let locations: Vec<String> = locations.split(',').map(|l| l.trim().to_owned()).collect();
    for l in &locations {
        let valid = l
            .split_once(':')
            .is_some_and(|(line, col)| line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok());
        assert!(valid, "{}: `{l}` is not LINE:COL", path.display());
    }
    Expectation {
        mistake: mistake.to_owned(),
        locations,
    }
}

/// Checks one invalid fixture; `Err` says what is wrong with its output.
fn check_invalid(path: &Path) -> Result<(), String> {
    let file = shown(path);
    let expected = expectation(path);
    let run = validate(&[path]);
    if run.code != Some(2) {
        return Err(format!("exit code {:?}, expected 2", run.code));
    }
    if !run.stdout.is_empty() {
        return Err(format!("printed on stdout:\n{}", run.stdout));
    }
    for location in &expected.locations {
        let header = format!("{file}:{location}: error: ");
        if !run.stderr.contains(&header) {
            return Err(format!("no diagnostic at {file}:{location}"));
        }
    }
    let count = run.diagnostics().len();
    if count != expected.locations.len() {
        return Err(format!(
            "{count} diagnostics for {} mistake(s): {:#?}",
            expected.locations.len(),
            run.diagnostics()
        ));
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("a UTF-8 file name");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/invalid");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.set_description(expected.mistake);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(stem, run.stderr));
    Ok(())
}

#[test]
fn every_valid_fixture_passes() {
    for path in fixtures(VALID) {
        let run = validate(&[&path]);
        assert_eq!(
            run.code,
            Some(0),
            "{} was rejected:\n{}",
            path.display(),
            run.stderr
        );
        assert!(
            run.stdout.starts_with(&format!("ok: {} (", shown(&path))),
            "{}: unexpected output: {}",
            path.display(),
            run.stdout
        );
        assert_eq!(run.stderr, "", "{}: printed on stderr", path.display());
    }
}

/// One fixture, one snapshot, like `insta::glob!` (whose `glob` feature this crate does not
/// enable): every fixture is checked, and the failures are listed together at the end.
#[test]
fn every_invalid_fixture_is_rejected_where_its_first_line_says() {
    let files = fixtures(INVALID);
    assert!(
        files.len() >= 40,
        "only {} invalid fixtures; the catalogue of mistakes has shrunk",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        match std::panic::catch_unwind(|| check_invalid(path)) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{}: {why}", path.display())),
            Err(_) => failures.push(format!("{}: snapshot differs (see above)", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn several_files_in_one_call_are_each_reported() {
    let files = [
        "tests/fixtures/valid/step-kinds.yaml",
        "tests/fixtures/invalid/needs-typo.yaml",
        "tests/fixtures/invalid/kebab-id.yaml",
    ];
    let run = validate(&files);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("ok: tests/fixtures/valid/step-kinds.yaml ("),
        "{}",
        run.stdout
    );
    let diagnostics = run.diagnostics();
    assert_eq!(diagnostics.len(), 2, "{}", run.stderr);
    assert!(diagnostics[0].starts_with("tests/fixtures/invalid/needs-typo.yaml:8:13: error: "));
    assert!(diagnostics[1].starts_with("tests/fixtures/invalid/kebab-id.yaml:5:9: error: "));
    assert!(
        run.stderr.ends_with("error: 2 mistakes in 2 of 3 files\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_folder_is_searched_for_runbooks() {
    let run = validate(&[VALID]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let ok: Vec<&str> = run.stdout.lines().collect();
    let expected: Vec<String> = fixtures(VALID)
        .iter()
        .map(|p| format!("ok: {} (", shown(p)))
        .collect();
    assert_eq!(ok.len(), expected.len(), "{}", run.stdout);
    for (line, start) in ok.iter().zip(&expected) {
        assert!(
            line.starts_with(start),
            "`{line}` should start with `{start}`"
        );
    }

    let run = validate(&[INVALID]);
    assert_eq!(run.code, Some(2));
    let files = fixtures(INVALID);
    for path in &files {
        assert!(
            run.stderr.contains(&format!("{}:", shown(path))),
            "{} is not reported",
            path.display()
        );
    }
    assert!(
        run.stderr.ends_with(&format!("of {} files\n", files.len())),
        "{}",
        run.stderr.lines().last().unwrap_or_default()
    );
}

#[test]
fn a_missing_file_is_a_clear_error_and_the_others_are_still_checked() {
    let run = validate(&[
        "tests/fixtures/invalid/no-such-runbook.yaml",
        "tests/fixtures/valid/hosts.yaml",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: failed to read tests/fixtures/invalid/no-such-runbook.yaml: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("No such file"), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("ok: tests/fixtures/valid/hosts.yaml ("),
        "{}",
        run.stdout
    );
}

#[test]
fn a_file_with_three_mistakes_gets_three_diagnostics() {
    let path = "tests/fixtures/invalid/several-template-mistakes.yaml";
    let run = validate(&[path]);
    assert_eq!(run.code, Some(2));
    let headers: Vec<&str> = run
        .diagnostics()
        .iter()
        .map(|d| d.split(": error: ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        headers,
        [
            format!("{path}:8:34"),
            format!("{path}:13:32"),
            format!("{path}:14:28")
        ],
        "in reading order:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with("error: 3 mistakes in 1 of 1 file\n"),
        "{}",
        run.stderr
    );
}
