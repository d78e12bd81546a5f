//! Runbooks as a catalogue: `runbook list` (each runbook found, its description and params) and
//! `runbook describe` (one runbook's params and steps), for people and, as JSON, for programs.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::spec::{ForEachItems, Param, Runbook, Step, StepKind};

/// A runbook file found by `list`.
#[derive(Debug)]
pub struct Entry {
    /// The file, as it is shown.
    pub path: String,
    /// The runbook, or how many mistakes keep it from loading.
    pub runbook: Result<Runbook, usize>,
}

/// Every runbook found: its file and name, its description, and its params (type, required or
/// default, description).
pub fn list_text(entries: &[Entry]) -> String {
    let mut out = String::new();
    for entry in entries {
        match &entry.runbook {
            Ok(runbook) => {
                let _ = writeln!(out, "{}  {}", entry.path, runbook.name);
                if let Some(description) = &runbook.description {
                    let _ = writeln!(out, "    {}", first_line(description));
                }
                for line in param_lines(&runbook.params) {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Err(mistakes) => {
                let _ = writeln!(
                    out,
                    "{}  ({mistakes} mistake{}: runbook validate {})",
                    entry.path,
                    if *mistakes == 1 { "" } else { "s" },
                    entry.path
                );
            }
        }
    }
    out
}

/// The runbooks found, as JSON.
pub fn list_json(entries: &[Entry]) -> String {
    let list: Vec<Value> = entries
        .iter()
        .map(|entry| match &entry.runbook {
            Ok(runbook) => json!({
                "path": entry.path,
                "name": runbook.name,
                "description": runbook.description,
                "params": runbook.params.iter().map(param_json).collect::<Vec<_>>(),
                "valid": true,
            }),
            Err(mistakes) => json!({ "path": entry.path, "valid": false, "mistakes": mistakes }),
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

/// One runbook: its name, description and params, then its steps in order (each with its
/// title, kind and what it waits for or goes over; a block's steps under it), then `finally`.
pub fn describe_text(path: &str, runbook: &Runbook) -> String {
    let mut out = format!("{} ({path})\n", runbook.name);
    if let Some(description) = &runbook.description {
        let _ = writeln!(out, "{}", description.trim_end());
    }
    if !runbook.params.is_empty() {
        let _ = writeln!(out, "\nparams:");
        for line in param_lines(&runbook.params) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "\nsteps:");
    steps_text(&mut out, &runbook.steps, 1);
    if !runbook.finally.is_empty() {
        let _ = writeln!(out, "\nfinally:");
        steps_text(&mut out, &runbook.finally, 1);
    }
    out
}

/// One runbook, as JSON.
pub fn describe_json(path: &str, runbook: &Runbook) -> String {
    let document = json!({
        "path": path,
        "name": runbook.name,
        "description": runbook.description,
        "params": runbook.params.iter().map(param_json).collect::<Vec<_>>(),
        "steps": runbook.steps.iter().map(|s| step_json(s)).collect::<Vec<_>>(),
        "finally": runbook.finally.iter().map(|s| step_json(s)).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// One line per param: `name  type  required|default V  description`, aligned.
fn param_lines(params: &[Param]) -> Vec<String> {
    let width = params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let cells: Vec<(String, String)> = params
        .iter()
        .map(|p| {
            let given = match (&p.default, p.required) {
                (_, true) => "required".to_owned(),
                (Some(default), false) => format!("default {}", short_value(default)),
                (None, false) => "optional".to_owned(),
            };
            (format!("{:6}  {given}", p.ty.name()), p.name.clone())
        })
        .collect();
    let middle = cells.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    params
        .iter()
        .zip(cells)
        .map(|(p, (kind, name))| {
            let line = format!("{name:width$}  {kind:middle$}");
            match &p.description {
                Some(d) => format!("{line}  {}", first_line(d)),
                None => line.trim_end().to_owned(),
            }
        })
        .collect()
}

fn param_json(p: &Param) -> Value {
    json!({
        "name": p.name,
        "type": p.ty.name(),
        "required": p.required,
        "default": p.default,
        "description": p.description,
    })
}

fn steps_text(out: &mut String, steps: &[std::sync::Arc<Step>], depth: usize) {
    let indent = "  ".repeat(depth);
    let width = steps.iter().map(|s| s.id.0.len()).max().unwrap_or(0);
    for (i, step) in steps.iter().enumerate() {
        let title = step
            .name
            .as_deref()
            .map(|n| format!("  {n}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "{indent}{:>2}. {:width$}  [{}]{title}",
            i + 1,
            step.id.0,
            step.kind.key()
        );
        for mark in marks(step) {
            let _ = write!(out, " {mark}");
        }
        out.push('\n');
        let notes = notes(step);
        if !notes.is_empty() {
            let _ = writeln!(out, "{indent}    {}", notes.join("; "));
        }
        if let StepKind::Block(block) = &step.kind {
            steps_text(out, &block.steps, depth + 2);
            if !block.finally.is_empty() {
                let _ = writeln!(out, "{indent}    finally:");
                steps_text(out, &block.finally, depth + 2);
            }
        }
    }
}

/// What a step asks of the operator: `DESTRUCTIVE`, `MANUAL`, `SAFE`.
fn marks(step: &Step) -> Vec<&'static str> {
    let mut marks = Vec::new();
    if step.destructive {
        marks.push("DESTRUCTIVE");
    }
    if matches!(step.kind, StepKind::Manual(_)) {
        marks.push("MANUAL");
    }
    if step.safe {
        marks.push("SAFE");
    }
    marks
}

/// What a step waits for, goes over, and how it runs: `needs`, `for_each`, `when`, `until`,
/// `check`, the runbook it calls.
fn notes(step: &Step) -> Vec<String> {
    let mut notes = Vec::new();
    if let StepKind::Call(call) = &step.kind {
        notes.push(format!("calls {}", call.path));
    }
    if let Some(needs) = &step.needs {
        let names: Vec<&str> = needs.iter().map(|(id, _)| id.0.as_str()).collect();
        notes.push(if names.is_empty() {
            "needs nothing".to_owned()
        } else {
            format!("needs {}", names.join(", "))
        });
    }
    if let Some(each) = &step.for_each {
        let items = match &each.items {
            ForEachItems::List(values) => format!("{} items", values.len()),
            ForEachItems::Expr(expr) => expr.text.clone(),
        };
        notes.push(format!("for each {} in {items}", each.as_name));
    }
    if let Some(when) = &step.when {
        notes.push(format!("when {}", when.text));
    }
    if let Some(poll) = &step.poll {
        notes.push(format!("until {}", poll.until.text));
    }
    if step.check.is_some() {
        notes.push("skipped when its check finds it in place".to_owned());
    }
    notes
}

fn step_json(step: &Step) -> Value {
    let mut value = json!({
        "id": step.id.0,
        "name": step.name,
        "kind": step.kind.key(),
        "description": step.description,
        "destructive": step.destructive,
        "safe": step.safe,
        "needs": step.needs.as_ref().map(|n| n.iter().map(|(id, _)| id.0.clone()).collect::<Vec<_>>()),
    });
    if let StepKind::Block(block) = &step.kind {
        value["steps"] = block.steps.iter().map(|s| step_json(s)).collect();
        value["finally"] = block.finally.iter().map(|s| step_json(s)).collect();
    }
    value
}

/// A value in one short line (`[8080, 8181]`, `"nightly"`).
fn short_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}
