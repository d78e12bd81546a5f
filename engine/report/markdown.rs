//! The evidence of a run as Markdown, for pasting into a ticket: the facts an auditor reads
//! first, then processes, params, steps, approvals, failures with their logs, notifications.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::evidence::Evidence;
use super::evidence::model::StepFacts;
use crate::spec::duration::Human;

/// A duration in milliseconds, as a person reads it (`1m4s`, `2.5s`).
pub fn duration(ms: u64) -> String {
    Human(Duration::from_millis(ms)).to_string()
}

/// A moment, in UTC to the second.
pub fn time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional moment (`-` when unknown).
pub fn maybe_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// A value as short text: strings as they are, anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A step's outputs as `name=value` pairs.
pub fn outputs_text(step: &StepFacts) -> String {
    step.outputs
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text made safe for a table cell: pipes escaped, lines joined.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Text as inline code (backticks inside are fenced with more backticks).
fn code(text: &str) -> String {
    let text = cell(text);
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// The evidence as a Markdown document.
pub fn render(e: &Evidence) -> String {
    let mut out = String::new();
    header(e, &mut out);
    processes(e, &mut out);
    params(e, &mut out);
    steps(e, &mut out);
    approvals(e, &mut out);
    failures(e, &mut out);
    if !e.notifications.is_empty() {
        out.push_str("\n## Notifications\n\n| status | to | at | result |\n|---|---|---|---|\n");
        for n in &e.notifications {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                n.on,
                code(&n.url),
                time(n.at),
                cell(&format!(
                    "{}: {}",
                    if n.delivered { "delivered" } else { "failed" },
                    n.detail
                ))
            );
        }
    }
    if !e.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for note in &e.notes {
            let _ = writeln!(out, "- {}", cell(note));
        }
    }
    out
}

fn header(e: &Evidence, out: &mut String) {
    let _ = writeln!(out, "# Run {} of {}\n", e.run.id, e.runbook.name);
    if let Some(d) = &e.runbook.description {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    let t = &e.totals;
    let mut version = format!("sha256 {}", code(&e.runbook.sha256));
    if let Some(commit) = &e.runbook.commit {
        let _ = write!(
            version,
            ", git commit {}{}",
            code(commit),
            if e.runbook.modified {
                " (the file had uncommitted changes)"
            } else {
                ""
            }
        );
    }
    if e.runbook.changed_during_run {
        version.push_str("; a resume went on with a changed runbook");
    }
    let who: Vec<String> = e
        .processes
        .iter()
        .map(|p| match &p.host {
            Some(h) => format!("{}@{h}", p.user),
            None => p.user.clone(),
        })
        .fold(Vec::new(), |mut seen, w| {
            if !seen.contains(&w) {
                seen.push(w);
            }
            seen
        });
    let rows = [
        ("status", format!("**{}**", e.run.status)),
        (
            "runbook",
            format!("{} ({})", code(&e.runbook.source), version),
        ),
        ("run by", cell(&who.join(", "))),
        ("started", maybe_time(e.run.started_at)),
        ("ended", maybe_time(e.run.ended_at)),
        (
            "time to recovery",
            t.time_to_recovery_ms
                .map_or_else(|| "not recovered".to_owned(), duration),
        ),
        ("elapsed", duration(t.elapsed_ms)),
        ("waiting for people", duration(t.waiting_for_people_ms)),
        ("in polls and gates", duration(t.polling_ms)),
        ("delays before attempts", duration(t.delays_ms)),
        ("stopped between processes", duration(t.stopped_ms)),
    ];
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    if !e.run.waiting_for.is_empty() {
        let _ = writeln!(
            out,
            "\nWaiting for a person at: {}.",
            e.run
                .waiting_for
                .iter()
                .map(|w| code(w))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(command) = &e.run.resume_command {
        let _ = writeln!(out, "\nTo continue: {}", code(command));
    }
}

fn processes(e: &Evidence, out: &mut String) {
    out.push_str(
        "\n## Processes\n\n| # | how | who | where | pid | from | to | outcome |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in &e.processes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.number,
            p.kind,
            cell(&p.user),
            cell(p.host.as_deref().unwrap_or("-")),
            p.pid,
            time(p.started_at),
            time(p.last_seen_at),
            p.outcome
        );
    }
}

fn params(e: &Evidence, out: &mut String) {
    if e.params.is_empty() {
        return;
    }
    out.push_str("\n## Params\n\n| name | value |\n|---|---|\n");
    for p in &e.params {
        let value = if p.secret {
            "`***` (secret)".to_owned()
        } else {
            code(&value_text(&p.value))
        };
        let _ = writeln!(out, "| {} | {value} |", p.name);
    }
}

fn steps(e: &Evidence, out: &mut String) {
    out.push_str(
        "\n## Steps\n\n| step | what | status | attempts | started | work | waiting | outputs |\n|---|---|---|---|---|---|---|---|\n",
    );
    for s in &e.steps {
        let what = match &s.name {
            Some(name) => format!("{} ({})", cell(name), s.kind),
            None => s.kind.clone(),
        };
        let mut status = s.status.clone();
        if let Some(reason) = &s.reason {
            let _ = write!(status, ": {}", cell(reason));
        }
        let outputs = outputs_text(s);
        let _ = writeln!(
            out,
            "| {} | {what}{} | {status} | {} | {} | {} | {} | {} |",
            code(&s.id),
            if s.phase == "finally" {
                " · finally"
            } else {
                ""
            },
            s.attempt_count,
            maybe_time(s.started_at),
            duration(s.work_ms),
            if s.waiting_ms > 0 {
                duration(s.waiting_ms)
            } else {
                "-".to_owned()
            },
            if outputs.is_empty() {
                String::new()
            } else {
                code(&outputs)
            }
        );
    }
    for s in e.steps.iter().filter(|s| !s.batches.is_empty()) {
        let _ = writeln!(out, "\nBatches of {}:\n", code(&s.id));
        for b in &s.batches {
            let gate = match &b.gate {
                Some(g) => format!(
                    "; gate {}",
                    match g.held {
                        Some(true) => "held",
                        Some(false) => "did not hold",
                        None => "not finished",
                    }
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "- batch {} of {} at {}: {}{gate}",
                b.number,
                b.of,
                time(b.started_at),
                cell(&b.items.join(", "))
            );
        }
    }
}

fn approvals(e: &Evidence, out: &mut String) {
    if e.approvals.is_empty() && e.waits_for_people.is_empty() {
        return;
    }
    out.push_str("\n## Approvals\n\n| step | decision | by | where | at | how | waited |\n|---|---|---|---|---|---|---|\n");
    for a in &e.approvals {
        let waited = e
            .waited_for(a)
            .map_or_else(|| "-".to_owned(), |w| duration(w.duration_ms));
        let _ = writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | {} | {waited} |",
            code(&a.step),
            a.decision,
            a.reason
                .as_ref()
                .map(|r| format!(": {}", cell(r)))
                .unwrap_or_default(),
            cell(&a.by),
            cell(a.host.as_deref().unwrap_or("-")),
            time(a.at),
            code(&a.how),
        );
    }
    for w in e.waits_for_people.iter().filter(|w| w.until.is_none()) {
        let _ = writeln!(
            out,
            "| {} | waiting | - | - | since {} | - | {} |",
            code(&w.step),
            time(w.from),
            duration(w.duration_ms)
        );
    }
}

fn failures(e: &Evidence, out: &mut String) {
    if e.failures.is_empty() {
        return;
    }
    out.push_str("\n## Failures\n");
    for f in &e.failures {
        let now = if f.status == "failed" {
            "failed".to_owned()
        } else {
            format!("failed, then {}", f.status)
        };
        let _ = writeln!(out, "\n### {} ({now})\n", code(&f.step));
        if let Some(reason) = &f.reason {
            let _ = writeln!(out, "{}\n", cell(reason));
        }
        if !f.log_tail.is_empty() {
            let fence = if f.log_tail.iter().any(|l| l.contains("```")) {
                "~~~~"
            } else {
                "```"
            };
            let _ = writeln!(out, "{fence}text\n{}\n{fence}", f.log_tail.join("\n"));
        }
    }
}
