//! `runbook runs`, `show` and `logs`: a run's history for people (tables) and machines (JSON).

use std::fmt::Write as _;

use crate::spec::duration::Human;
use crate::state::{RunDir, RunRecord};

/// One line per run: id, runbook, status, started, duration.
pub fn runs_table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs yet (runbook run FILE starts one)\n".to_owned();
    }
    let width = runs
        .iter()
        .map(|r| r.run_id.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let book = runs
        .iter()
        .map(|r| r.runbook.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{:width$}  {:book$}  {:11}  {:20}  {:>9}\n",
        "run", "runbook", "status", "started", "duration"
    );
    for r in runs {
        let started = r.started_at.as_deref().map(short_time).unwrap_or_default();
        let duration = r
            .duration()
            .map_or_else(|| "-".to_owned(), |d| Human(d).to_string());
        let _ = writeln!(
            out,
            "{:width$}  {:book$}  {:11}  {:20}  {:>9}",
            r.run_id,
            r.runbook,
            r.status.as_str(),
            started,
            duration
        );
    }
    out
}

/// The runs as JSON.
pub fn runs_json(runs: &[RunRecord]) -> String {
    let list: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "run_id": r.run_id,
                "runbook": r.runbook,
                "status": r.status,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "duration_ms": r.duration().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

/// A run's steps as a table, with approvals and failures.
pub fn show_text(run: &RunRecord) -> String {
    let mut out = format!(
        "run {} of {}: {}\n",
        run.run_id,
        run.runbook,
        run.status.as_str()
    );
    if let Some(s) = &run.started_at {
        let _ = writeln!(
            out,
            "started {}{}",
            short_time(s),
            run.finished_at
                .as_deref()
                .map(|f| format!(", ended {}", short_time(f)))
                .unwrap_or_default()
        );
    }
    let width = run
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "\n{:width$}  {:9}  {:>8}  {:20}  outputs",
        "step", "status", "attempts", "finished"
    );
    for s in &run.steps {
        let outputs = if s.outputs.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&s.outputs).unwrap_or_default()
        };
        let finished = s.finished_at.as_deref().map(short_time).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:width$}  {:9}  {:>8}  {:20}  {outputs}",
            s.id,
            s.status.as_str(),
            s.attempts,
            finished
        );
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "{:width$}  {reason}", "");
        }
    }
    for a in &run.approvals {
        let verb = if a.approved { "approved" } else { "rejected" };
        let _ = writeln!(
            out,
            "\n{} {verb} by {} at {}{}",
            a.id,
            a.by,
            short_time(&a.at),
            a.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    for p in &run.paused {
        let _ = writeln!(
            out,
            "\nwaiting for approval: {p}\n  runbook resume {} --approve {p}",
            run.run_id
        );
    }
    out
}

/// SPEC §5's JSON shape, plus approvals.
pub fn show_json(run: &RunRecord) -> String {
    serde_json::to_string_pretty(run).unwrap_or_default() + "\n"
}

/// A step's log, or every step's log in journal order.
pub fn logs(dir: &RunDir, run: &RunRecord, step: Option<&str>) -> Result<String, String> {
    let ids: Vec<&str> = match step {
        Some(id) => {
            if run.get(id).is_none() && !dir.log_of(id).is_file() {
                let known: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).collect();
                let hint = crate::spec::suggest::did_you_mean(id, known.iter().copied())
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                return Err(format!("run {} has no step `{id}`{hint}", run.run_id));
            }
            vec![id]
        }
        None => run.steps.iter().map(|s| s.id.as_str()).collect(),
    };
    let mut out = String::new();
    for id in ids {
        let text = std::fs::read_to_string(dir.log_of(id)).unwrap_or_default();
        if step.is_none() {
            let _ = writeln!(out, "=== {id}");
        }
        out.push_str(&text);
    }
    Ok(out)
}

fn short_time(rfc3339: &str) -> String {
    rfc3339.parse::<jiff::Timestamp>().map_or_else(
        |_| rfc3339.to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
