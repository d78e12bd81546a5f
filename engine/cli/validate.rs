//! `runbook validate FILE…`: static checks of runbook files and folders, every mistake located;
//! for people (snippets), programs (`--format json`) or GitHub workflows (`--format github`
//! annotations on the lines at fault).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;

use super::error::CliError;
use super::terminal::{self, Stream};
use crate::compile::{CompileError, compile};
use crate::diagnostic::{self, Diagnostic};
use crate::drive::Outcome;
use crate::spec::source::display_path;

/// What `validate` takes.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Runbook files or folders.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How mistakes are told.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ValidateFormat,
}

/// How `validate` tells what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidateFormat {
    /// `FILE:LINE:COL: error: …` with a source snippet and a hint.
    Text,
    /// One JSON document on stdout: every file, and every mistake with its file, line and column.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`): annotations on the
    /// lines at fault.
    Github,
}

/// What one file came to.
enum Checked {
    /// It compiles, with this many steps.
    Valid(usize),
    /// Located mistakes.
    Invalid(Vec<Diagnostic>),
    /// It could not be read: the error, with its reasons.
    Unreadable(String),
}

/// Checks every file named (folders: every `.yaml`/`.yml` below), and says how it went.
pub fn execute(args: &ValidateArgs) -> Result<Outcome, CliError> {
    let files = super::files::expand(&args.files);
    if files.is_empty() {
        let named: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Usage(format!(
            "no runbook files found in {}",
            named.join(", ")
        )));
    }
    let text = args.format == ValidateFormat::Text;
    let mut checked = Vec::with_capacity(files.len());
    for file in &files {
        let path = display_path(file);
        let result = check(file);
        if text {
            tell(&path, &result)?;
        }
        checked.push((path, result));
    }
    let mistakes: usize = checked
        .iter()
        .map(|(_, c)| match c {
            Checked::Valid(_) => 0,
            Checked::Invalid(d) => d.len(),
            Checked::Unreadable(_) => 1,
        })
        .sum();
    let text = match args.format {
        ValidateFormat::Text => String::new(),
        ValidateFormat::Json => json_document(&checked, mistakes),
        ValidateFormat::Github => github(&checked),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    if mistakes > 0 {
        if args.format == ValidateFormat::Text {
            let bad_files = checked
                .iter()
                .filter(|(_, c)| !matches!(c, Checked::Valid(_)))
                .count();
            eprintln!(
                "error: {mistakes} mistake{} in {bad_files} of {} file{}",
                if mistakes == 1 { "" } else { "s" },
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
        }
        return Err(CliError::Invalid { count: mistakes });
    }
    Ok(Outcome::Succeeded)
}

fn check(file: &std::path::Path) -> Checked {
    match compile(file, None) {
        Ok(plan) => Checked::Valid(plan.graph.node_count()),
        Err(CompileError::Invalid { diagnostics, .. }) => Checked::Invalid(diagnostics),
        Err(unreadable) => Checked::Unreadable(crate::state::store::with_reasons(&unreadable)),
    }
}

/// A file checked, as soon as it is: `ok: FILE (N steps)` on stdout, mistakes with their
/// snippets on stderr.
fn tell(path: &str, checked: &Checked) -> Result<(), CliError> {
    match checked {
        Checked::Valid(steps) => writeln!(
            std::io::stdout().lock(),
            "ok: {path} ({steps} step{})",
            if *steps == 1 { "" } else { "s" }
        )
        .map_err(CliError::Output),
        Checked::Invalid(diagnostics) => {
            let color = terminal::colors(Stream::Stderr);
            eprint!("{}", diagnostic::render_all(diagnostics, color));
            Ok(())
        }
        Checked::Unreadable(error) => {
            eprintln!("error: {error}");
            Ok(())
        }
    }
}

fn json_document(checked: &[(String, Checked)], mistakes: usize) -> String {
    let files: Vec<serde_json::Value> = checked
        .iter()
        .map(|(path, c)| match c {
            Checked::Valid(steps) => json!({ "path": path, "valid": true, "steps": steps }),
            Checked::Invalid(diagnostics) => json!({
                "path": path,
                "valid": false,
                "mistakes": diagnostics.iter().map(|d| {
                    let (file, line, column) = located(d);
                    json!({
                        "file": file,
                        "line": line,
                        "column": column,
                        "message": d.message,
                        "label": d.label,
                        "hint": d.hint,
                    })
                }).collect::<Vec<_>>(),
            }),
            Checked::Unreadable(error) => json!({
                "path": path,
                "valid": false,
                "mistakes": [{ "file": path, "message": error }],
            }),
        })
        .collect();
    let document = json!({ "valid": mistakes == 0, "mistakes": mistakes, "files": files });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// One workflow command per mistake; valid files say nothing.
fn github(checked: &[(String, Checked)]) -> String {
    let mut out = String::new();
    for (path, c) in checked {
        match c {
            Checked::Valid(_) => {}
            Checked::Invalid(diagnostics) => {
                for d in diagnostics {
                    let (file, line, column) = located(d);
                    let mut message = d.message.clone();
                    if let Some(hint) = &d.hint {
                        message.push_str("\nhelp: ");
                        message.push_str(hint);
                    }
                    let _ = writeln!(
                        out,
                        "::error file={},line={line},col={column},title=runbook validate::{}",
                        property(&file),
                        data(&message)
                    );
                }
            }
            Checked::Unreadable(error) => {
                let _ = writeln!(
                    out,
                    "::error file={},title=runbook validate::{}",
                    property(path),
                    data(error)
                );
            }
        }
    }
    out
}

/// A diagnostic's file, line and column.
fn located(d: &Diagnostic) -> (String, usize, usize) {
    let (line, column) = d.at.file.line_col(d.at.span.offset);
    (d.at.file.display_path(), line, column)
}

/// A workflow command's message, escaped as GitHub reads it.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value, escaped as GitHub reads it.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_what_github_reads_specially() {
        assert_eq!(data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(property("a,b:c.yaml"), "a%2Cb%3Ac.yaml");
    }
}
