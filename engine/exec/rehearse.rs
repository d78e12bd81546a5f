//! The rehearsal of one step (`--dry-run`): what it would do, fully rendered, with its marks and
//! notes. Nothing with a side effect runs here: a step marked `safe` (read-only) runs for real,
//! through the same path as in a real run; an `assert` is evaluated when its values are known.
//! This is the one place a rehearsal is decided (the scheduler only reports it).

use serde_json::Value;

use super::attempt::{self, Job, Outcome};
use super::event::{Event, Marks, StepStatus};
use super::render::Scope;
use super::runtime::Runtime;
use crate::spec::StepKind;

/// Rehearses one step (or one item of it).
pub async fn step(rt: &Runtime, job: &Job) -> Outcome {
    let scope = Scope::from_value(job.context.clone());
    let step = &job.step;
    let mut notes = Vec::new();
    if let Some(description) = &step.description {
        notes.push(description.trim().to_owned());
    }
    if let Some(delay) = step.delay {
        notes.push(format!(
            "waits {} before its first attempt",
            crate::spec::duration::Human(delay)
        ));
    }
    if let Some(when) = &step.when {
        if scope.reads_unknown(&when.text) {
            notes.push(format!("only if {} (known at run time)", when.text));
        } else {
            match scope.eval(when, "when") {
                Ok(v) if v.is_true() => {}
                Ok(_) => return attempt::skipped_by(when),
                Err(e) => return Outcome::failed(0, e.message),
            }
        }
    }
    match &step.kind {
        StepKind::Manual(manual) => {
            let instructions = match scope.text(&manual.instructions, "manual") {
                Ok(t) => t.trim_end().to_owned(),
                Err(e) => return Outcome::failed(0, e.message),
            };
            if manual.approvers > 1 {
                notes.push(format!(
                    "needs {} approvals by different people",
                    manual.approvers
                ));
            }
            if !manual.inputs.is_empty() {
                let names: Vec<&str> = manual.inputs.iter().map(|i| i.name.as_str()).collect();
                notes.push(format!("asks for: {}", names.join(", ")));
            }
            if let Some(timeout) = manual.timeout {
                notes.push(format!(
                    "no decision within {} fails it",
                    crate::spec::duration::Human(timeout)
                ));
            }
            let marks = Marks {
                manual: true,
                ..Marks::default()
            };
            show(rt, job, instructions, marks, notes);
            shown(job)
        }
        StepKind::Assert(exprs) => {
            let (texts, description) = attempt::assertion(exprs);
            if texts.iter().any(|t| scope.reads_unknown(t)) {
                notes.push("checked at run time: it reads values known only then".to_owned());
                show(rt, job, description, Marks::default(), notes);
                return shown(job);
            }
            // Checking has no side effect: it happens now, and the rehearsal lists the step.
            notes.push("checked during the rehearsal".to_owned());
            show(rt, job, description.clone(), Marks::default(), notes);
            if let Err(f) = attempt::start(rt, job, 1, &description, false).await {
                return Outcome::failed(0, f.message);
            }
            let outcome = attempt::check_assertion(&texts, &scope);
            if outcome.status == StepStatus::Failed {
                let reason = outcome.reason.unwrap_or_default();
                return Outcome {
                    reason: Some(format!("{PROBE_FAILED}: {reason}")),
                    ..shown(job)
                };
            }
            outcome
        }
        StepKind::Call(_) | StepKind::Block(_) => Outcome::done(StepStatus::Succeeded, 1, None),
        StepKind::Sleep(_)
        | StepKind::Run(_)
        | StepKind::Http(_)
        | StepKind::Upload(_)
        | StepKind::Download(_) => action(rt, job, &scope, notes).await,
    }
}

async fn action(rt: &Runtime, job: &Job, scope: &Scope, mut notes: Vec<String>) -> Outcome {
    let step = &job.step;
    let action = match attempt::build_action(job, scope) {
        Ok(a) => a,
        Err(e) => return Outcome::failed(0, e.message),
    };
    let description = action.description();
    if !step.safe {
        if let Some(check) = &step.check {
            let probe = attempt::probe_action(job, scope, &check.kind, check.on.as_ref())
                .map(|a| a.description())
                .unwrap_or_default();
            notes.push(format!("skipped if already in place: {probe}"));
        }
        if step.poll.is_some() {
            notes.push("repeated until its condition holds".to_owned());
        }
        let marks = Marks {
            destructive: step.destructive,
            ..Marks::default()
        };
        show(rt, job, description, marks, notes);
        return shown(job);
    }
    if description.contains("<steps.") {
        // Running it now would run it with placeholder text, and feed a bogus result on.
        notes.push(
            "would run for real (read-only), but it needs values known at run time".to_owned(),
        );
        show(rt, job, description, Marks::default(), notes);
        return shown(job);
    }
    // A safe step runs for real; the rehearsal still lists it in its place.
    notes.push("read-only: runs during the rehearsal".to_owned());
    show(rt, job, description.clone(), Marks::default(), notes);
    let outcome = attempt::perform_action(rt, job, scope, &action, &description).await;
    if outcome.status == StepStatus::Failed {
        // The rehearsal shows the whole plan: what needs this probe's outputs is unknown now.
        let reason = outcome.reason.unwrap_or_default();
        return Outcome {
            reason: Some(format!("{PROBE_FAILED}: {reason}")),
            ..shown(job)
        };
    }
    outcome
}

/// How a rehearsal marks a read-only probe that failed (the rehearsal goes on, and fails).
pub const PROBE_FAILED: &str = "the probe failed during the rehearsal";

fn show(rt: &Runtime, job: &Job, description: String, mut marks: Marks, notes: Vec<String>) {
    marks.safe = job.step.safe;
    rt.emit(Event::Rehearsed {
        id: job.id.clone(),
        name: job.name.clone(),
        description,
        marks,
        notes,
    });
}

/// A step that was only shown: succeeded, with placeholders for what only a real run knows.
fn shown(job: &Job) -> Outcome {
    let declared: Vec<&str> = match &job.step.kind {
        // What a person supplies is known only then.
        StepKind::Manual(manual) => manual.inputs.iter().map(|i| i.name.as_str()).collect(),
        _ => job.step.outputs.iter().map(|o| o.name.as_str()).collect(),
    };
    let outputs = declared
        .into_iter()
        .map(|name| {
            (
                name.to_owned(),
                Value::String(format!("<steps.{}.outputs.{name}>", job.id)),
            )
        })
        .collect();
    Outcome {
        outputs,
        ..Outcome::done(StepStatus::Succeeded, 0, Some("rehearsed".to_owned()))
    }
}
