//! Continuing a run, in stages the command line can speak between:
//!
//! 1. [`Resumption::take_over`]: take the run's lease; read its timeline while the runbook
//!    compiles (as it is now, or the run's own copy when it is gone); wait for processes a dead
//!    engine left running; compare the runbook with the one the run follows.
//! 2. [`Resumption::decide`]: which steps are settled, which in-flight steps run again, which
//!    manual steps are approved or rejected (asked again, confirmed, after a person says so).
//! 3. [`Resumption::ready`]: secrets and destructive steps, before anything is journaled.
//! 4. [`Ready::drive`]: journal the resume (who, a changed runbook, approvals), then run.

use std::time::Duration;

use super::checks::{People, approvals, check_destructive, resolve_secrets_left};
use super::pipeline::{self, Recording};
use super::{DriveError, Outcome, Presentation};
use crate::compile::compile;
use crate::exec::approvals::Approvals;
use crate::exec::{RunStatus, Secrets};
use crate::plan::{NodeId, ParamInput, Plan};
use crate::spec::source::display_path;
use crate::state::fingerprint::{self, Changes, FINGERPRINT_VERSION};
use crate::state::resume::{self, Decision, ResumeError, ResumeRequest};
use crate::state::runbook_copy::Materialised;
use crate::state::{Lease, Record, Recorder, Store, Timeline, identity, journal, leftovers};

/// How long a resume waits for processes the previous engine left running to end by themselves.
const LEFTOVER_PATIENCE: Duration = Duration::from_secs(3);

/// What a resume is asked, besides its decision's instructions.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    /// The run.
    pub run_id: String,
    /// Go on with a runbook that changed since the run began.
    pub allow_changed: bool,
    /// Steps are to be run again (`--rerun`): a run that succeeded is continued only then.
    pub rerun: bool,
    /// Confirm destructive steps (never a manual step).
    pub yes: bool,
    /// Who decides manual steps, `--approve-all`, `--input`.
    pub people: People,
    /// Steps at once (default: the runbook's, else 4).
    pub max_parallel: Option<usize>,
    /// How the run is shown.
    pub presentation: Presentation,
    /// Who resumes.
    pub user: String,
    /// New param values (`--set NAME=VALUE`) for steps that have not read the param yet.
    pub sets: Vec<String>,
}

/// What taking a run over found.
pub enum Continuation<'s> {
    /// The run already succeeded and nothing is to be run again.
    AlreadySucceeded {
        /// The run.
        run_id: String,
    },
    /// The run is this process's to continue.
    Resume(Box<Resumption<'s>>),
}

/// A run taken over by this process: its lease, its timeline, and the plan it continues with.
pub struct Resumption<'s> {
    store: &'s dyn Store,
    lease: Lease,
    options: ResumeOptions,
    timeline: Timeline,
    plan: Plan,
    /// The runbook file as the user named it.
    source: String,
    /// A changed runbook the run goes on with (journaled when it does).
    adopted: Option<Adopted>,
    /// The run's own copy of its runbook, written out because the runbook is gone.
    copy: Option<Materialised>,
}

/// A changed runbook the run now follows.
struct Adopted {
    /// What changed (`None`: unknown, the run's fingerprints are of an older build).
    changes: Option<Changes>,
    /// The record that says so.
    record: Record,
}

impl<'s> Resumption<'s> {
    /// Takes the run over (stage 1).
    pub fn take_over(
        store: &'s dyn Store,
        options: ResumeOptions,
    ) -> Result<Continuation<'s>, DriveError> {
        let run_id = options.run_id.as_str();
        let lease = store.take(run_id)?;
        let mut input = ParamInput {
            files: vec![store.params(run_id)?.into()],
            sets: options.sets.clone(),
        };
        let copy = store.runbook(run_id)?;
        // The runbook where it lives now (secret files resolve next to it); the run's own copy
        // only when the original is gone.
        let original = copy.original_root().to_owned();
        // The journal is read while the runbook compiles: for a long run, each takes a while.
        let (timeline, compiled) = std::thread::scope(|scope| {
            let reading = scope.spawn(|| store.timeline(run_id));
            let compiled = original.is_file().then(|| compile(&original, Some(&input)));
            let timeline = reading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (timeline, compiled)
        });
        let timeline = timeline?;
        // Values earlier resumes gave (`--set`) hold, under this one's.
        let compiled = if timeline.param_changes.is_empty() {
            compiled
        } else {
            let changed = timeline
                .param_changes
                .iter()
                .map(|c| c.params.clone().into());
            input.files.splice(1..1, changed);
            original.is_file().then(|| compile(&original, Some(&input)))
        };
        wait_for_leftovers(run_id, &timeline)?;
        // This process holds the lease: nobody else drives the run.
        if timeline.status(false) == RunStatus::Succeeded && !options.rerun {
            return Ok(Continuation::AlreadySucceeded {
                run_id: timeline.run.run_id,
            });
        }
        let source = display_path(&copy.source);
        let (plan, adopted, copy) = if let Some(current) = compiled {
            let plan = current.map_err(DriveError::Compile)?;
            let adopted = adopt_changes(&timeline, &plan, &options, &source)?;
            (plan, adopted, None)
        } else {
            let written = copy.materialise()?;
            let plan = compile(&written.root, Some(&input)).map_err(DriveError::Copy)?;
            (plan, None, Some(written))
        };
        Ok(Continuation::Resume(Box::new(Self {
            store,
            lease,
            options,
            timeline,
            plan,
            source,
            adopted,
            copy,
        })))
    }

    /// The changes of a runbook the run goes on with, one line each; `None` when it did not
    /// change.
    pub fn changed(&self) -> Option<String> {
        self.adopted
            .as_ref()
            .map(|a| super::error::describe(a.changes.as_ref()))
    }

    /// The runbook file, when it is gone and the run's own copy of it is used.
    pub fn gone(&self) -> Option<&str> {
        self.copy.as_ref().map(|_| self.source.as_str())
    }

    /// Decides what the resume does (stage 2).
    pub fn decide(&self, request: &ResumeRequest) -> Result<Decision, ResumeError> {
        resume::decide(&self.timeline, &self.plan, request)
    }

    /// Checks what must hold before anything is journaled or run (stage 3).
    pub fn ready(self, mut decision: Decision) -> Result<Ready<'s>, DriveError> {
        let secrets = resolve_secrets_left(&self.plan, &decision.settled)?;
        let people = approvals(
            &self.plan,
            &self.options.people,
            std::mem::take(&mut decision.verdicts),
            std::mem::take(&mut decision.waiting),
        )?;
        check_destructive(
            &self.plan,
            &decision.settled,
            self.options.yes,
            self.options.presentation.interactive,
        )?;
        Ok(Ready {
            resumption: self,
            decision,
            secrets,
            people,
        })
    }
}

/// A resume that may go ahead.
pub struct Ready<'s> {
    resumption: Resumption<'s>,
    decision: Decision,
    secrets: Secrets,
    people: Approvals,
}

impl Ready<'_> {
    /// In-flight steps that will run again, and why that is safe.
    pub fn rerun_in_flight(&self) -> &[(NodeId, &'static str)] {
        &self.decision.rerun_in_flight
    }

    /// Journals the resume and runs what is left (stage 4).
    pub fn drive(self) -> Result<Outcome, DriveError> {
        let Self {
            resumption,
            decision,
            secrets,
            people,
        } = self;
        let Resumption {
            store,
            lease,
            options,
            timeline,
            plan,
            adopted,
            copy,
            ..
        } = resumption;
        let mut recorder = Recorder::new(store.journal(&lease)?);
        let mut first = records(&options.user, adopted, &plan);
        let changed: serde_json::Map<String, serde_json::Value> = options
            .sets
            .iter()
            .filter_map(|set| set.split_once('=').map(|(name, _)| name.trim()))
            .filter_map(|name| Some((name.to_owned(), plan.params.get(name)?.clone())))
            .collect();
        if !changed.is_empty() {
            first.push(Record::ParamsChanged {
                params: changed,
                by: people.identity.clone(),
                at: journal::now(),
            });
        }
        recorder.append(&first)?;
        let earlier_attempts = timeline
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.attempt_count()))
            .filter(|&(_, attempts)| attempts > 0)
            .collect();
        let mut run_options = pipeline::options(
            &plan,
            timeline.run.run_id,
            false,
            options.yes,
            options.presentation.interactive,
            options.max_parallel,
        );
        run_options.earlier_attempts = earlier_attempts;
        run_options.approvals = people;
        let (status, _) = pipeline::run(
            plan,
            &secrets,
            run_options,
            options.presentation,
            Some(Recording { recorder, lease }),
            decision.settled,
        )?;
        drop(copy);
        Ok(status.into())
    }
}

/// Steps in flight when the engine stopped may still be running: never start them beside
/// themselves.
fn wait_for_leftovers(run_id: &str, timeline: &Timeline) -> Result<(), DriveError> {
    let groups: Vec<i32> = timeline
        .steps
        .iter()
        .flat_map(|s| s.groups().iter().copied())
        .collect();
    let found = leftovers::wait(run_id, &groups, LEFTOVER_PATIENCE);
    if found.is_empty() {
        Ok(())
    } else {
        Err(DriveError::Leftovers {
            run_id: run_id.to_owned(),
            leftovers: found,
        })
    }
}

/// Compares the runbook as it is now with the one the run follows: the same, or changed and
/// allowed (the run then follows it), or changed and refused.
fn adopt_changes(
    timeline: &Timeline,
    plan: &Plan,
    options: &ResumeOptions,
    source: &str,
) -> Result<Option<Adopted>, DriveError> {
    // Per-step hashes only when the files differ: hashing every step of a long runbook costs
    // more than the rest of a resume.
    let hash = fingerprint::files_hash(plan);
    if hash == timeline.run.hash {
        return Ok(None);
    }
    // Hashes of another canonical form (a run started by an older build) cannot be compared
    // step by step.
    let steps = fingerprint::node_hashes(plan);
    let changes = (timeline.run.fingerprint == FINGERPRINT_VERSION)
        .then(|| Changes::between(&timeline.run.step_hashes, &steps));
    if changes.as_ref().is_some_and(Changes::is_empty) {
        return Ok(None);
    }
    if !options.allow_changed {
        return Err(DriveError::Changed {
            runbook: source.to_owned(),
            run_id: timeline.run.run_id.clone(),
            changes,
        });
    }
    Ok(Some(Adopted {
        changes,
        record: Record::RunbookChanged {
            hash,
            steps,
            order: plan.declared_order(),
            fingerprint: FINGERPRINT_VERSION,
            by: identity::current_user(),
            at: journal::now(),
        },
    }))
}

/// What a resume journals before it runs: who took the run over, and the runbook it follows
/// now and its version. (Decisions about manual steps are journaled by the executor when it reaches them.)
fn records(user: &str, adopted: Option<Adopted>, plan: &Plan) -> Vec<Record> {
    let mut records = vec![Record::Resumed {
        at: journal::now(),
        pid: std::process::id(),
        user: user.to_owned(),
        host: identity::host_name(),
    }];
    records.extend(adopted.map(|a| a.record));
    records.push(super::version::record(plan));
    records
}
