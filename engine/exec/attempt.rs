//! One step from start to final status: `when`, confirmation, `check`, retries, polling and
//! outputs around the step kind's action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::event::{Event, StepStatus};
use super::hosts::HostTarget;
use super::render::Scope;
use super::runtime::Runtime;
use super::settings::Limits;
use super::step::command::CommandLine;
use super::step::http::Request;
use super::step::manual::{self, Decision};
use super::step::{self, Action, Direction, Failure, Transfer};
use crate::plan::NodeId;
use crate::spec::{
    Command, Download, Gate, HttpBody, HttpRequest, Manual, ProbeKind, Runbook, Step, StepKind,
    Upload, UploadSource,
};

/// Everything a step task needs, owned (tasks are spawned).
pub struct Job {
    /// Full id (`stop[1]`).
    pub id: NodeId,
    /// The step.
    pub step: Arc<Step>,
    /// The runbook it is written in (defaults, hosts, env).
    pub runbook: Arc<Runbook>,
    /// The runbooks that called that one, innermost first: their hosts and `defaults.ssh` are
    /// inherited.
    pub callers: Vec<Arc<Runbook>>,
    /// The template context (params, secrets, env, steps, run, the item, the host).
    pub context: minijinja::Value,
    /// Its timeout, poll interval and attempts, rendered.
    pub limits: Limits,
    /// The host it runs on (`on:`), resolved.
    pub host: Option<HostTarget>,
    /// Its `name`, rendered.
    pub name: Option<String>,
}

/// How long a gate may take to hold when it does not say.
pub const GATE_TIMEOUT: Duration = Duration::from_mins(10);

/// How a step ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Final status.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Outputs (placeholders in a rehearsal).
    pub outputs: Map<String, Value>,
    /// Why it failed or was skipped, or how it succeeded without running.
    pub reason: Option<String>,
    /// The run must pause here (a manual step nobody can approve now).
    pub pause: bool,
    /// How long it waited for a person (a confirmation prompt, a manual step's decision, across
    /// processes): not counted in its duration.
    pub waited: Duration,
}

impl Outcome {
    /// An outcome without outputs.
    pub fn done(status: StepStatus, attempts: u32, reason: Option<String>) -> Self {
        Self {
            status,
            attempts,
            outputs: Map::new(),
            reason,
            pause: false,
            waited: Duration::ZERO,
        }
    }

    /// A failure after `attempts` attempts.
    pub fn failed(attempts: u32, message: impl Into<String>) -> Self {
        Self::done(StepStatus::Failed, attempts, Some(message.into()))
    }
}

/// Runs one step (or one item of it) to its final status. A rehearsal is decided here, once:
/// [`rehearse::step`](super::rehearse::step) shows the step and runs it only when it is safe.
pub async fn run(rt: &Runtime, job: &Job) -> Outcome {
    if rt.options.dry_run {
        return super::rehearse::step(rt, job).await;
    }
    let scope = Scope::from_value(job.context.clone());
    let step = &job.step;
    if let Some(when) = &step.when {
        match scope.eval(when, "when") {
            Ok(v) if v.is_true() => {}
            Ok(_) => return skipped_by(when),
            Err(e) => return Outcome::failed(0, e.message),
        }
    }
    if let Some(delay) = step.delay
        && !delayed(rt, job, delay).await
    {
        return Outcome::failed(0, "interrupted");
    }
    let outcome = match &step.kind {
        StepKind::Manual(manual) => manual_step(rt, job, &scope, manual).await,
        StepKind::Assert(exprs) => assert_step(rt, job, &scope, exprs).await,
        StepKind::Call(_) | StepKind::Block(_) => Outcome::done(StepStatus::Succeeded, 1, None),
        StepKind::Sleep(_)
        | StepKind::Run(_)
        | StepKind::Http(_)
        | StepKind::Upload(_)
        | StepKind::Download(_) => action_step(rt, job, &scope).await,
    };
    if outcome.waited.as_millis() > 0 {
        rt.emit(Event::Waited {
            id: job.id.clone(),
            waited: outcome.waited,
        });
    }
    outcome
}

/// Waits a step's `delay` before its first attempt; `false` when interrupted meanwhile.
async fn delayed(rt: &Runtime, job: &Job, delay: Duration) -> bool {
    rt.emit(Event::Delaying {
        id: job.id.clone(),
        delay,
    });
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = rt.cancel.cancelled() => false,
    }
}

/// Polls a fan-out's gate until its condition holds (`Ok`: how it went) or its time runs out.
pub async fn gate(rt: &Runtime, job: &Job, gate: &Gate) -> Result<String, Failure> {
    let scope = Scope::from_value(job.context.clone());
    let probe = probe_action(job, &scope, &gate.probe, gate.on.as_ref())?;
    let interval = gate.interval.unwrap_or(crate::spec::Poll::DEFAULT_INTERVAL);
    let limit = gate.timeout.unwrap_or(GATE_TIMEOUT);
    let deadline = Instant::now() + limit;
    let mut polls = 0;
    loop {
        polls += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let outcome = step::perform(rt, &job.id, &probe, Some(remaining)).await;
        let result = match &outcome {
            Ok(result) => Some(result),
            Err(failure) => failure.result.as_ref(),
        };
        let detail = match result {
            Some(result) => {
                let with_result = scope.with("result", result);
                match with_result.eval(&gate.until, "gate.until") {
                    Ok(v) if v.is_true() => {
                        return Ok(format!(
                            "`{}` held after {polls} poll{}",
                            gate.until.text,
                            if polls == 1 { "" } else { "s" }
                        ));
                    }
                    Ok(_) => format!(
                        "`{}` is not true yet{}",
                        gate.until.text,
                        step::assert::values_text(&gate.until.text, &with_result.value)
                    ),
                    Err(e) => e.message,
                }
            }
            None => outcome.err().map(|f| f.message).unwrap_or_default(),
        };
        if rt.cancel.is_cancelled() {
            return Err(Failure::new("interrupted"));
        }
        if Instant::now() + interval > deadline {
            return Err(Failure::new(format!(
                "`until: {}` did not hold within {} ({polls} polls); last: {detail}",
                gate.until.text,
                crate::spec::duration::Human(limit)
            )));
        }
        rt.emit(Event::Polling {
            id: job.id.clone(),
            attempt: polls,
            detail,
        });
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = rt.cancel.cancelled() => return Err(Failure::new("interrupted")),
        }
    }
}

/// What a person reads of a gate: its probe and its condition.
pub fn gate_description(job: &Job, gate: &Gate) -> String {
    let scope = Scope::from_value(job.context.clone());
    let probe = probe_action(job, &scope, &gate.probe, gate.on.as_ref())
        .map_or_else(|e| e.message, |a| a.description());
    let timeout = crate::spec::duration::Human(gate.timeout.unwrap_or(GATE_TIMEOUT));
    format!("{probe}\nuntil {} (within {timeout})", gate.until.text)
}

/// A step whose `when` is false.
pub(super) fn skipped_by(when: &crate::spec::Expr) -> Outcome {
    Outcome::done(
        StepStatus::Skipped,
        0,
        Some(format!("`when: {}` is false", when.text)),
    )
}

async fn manual_step(rt: &Runtime, job: &Job, scope: &Scope, manual: &Manual) -> Outcome {
    let instructions = match scope.text(&manual.instructions, "manual") {
        Ok(t) => t.trim_end().to_owned(),
        Err(e) => return Outcome::failed(0, e.message),
    };
    let earlier = rt.options.approvals.waiting.get(&job.id);
    // A wait that began in an earlier process goes on; a new one is the step's start.
    let since = if let Some(waiting) = earlier {
        waiting.since
    } else {
        if let Err(f) = start(rt, job, 1, &instructions, false).await {
            return Outcome::failed(0, f.message);
        }
        jiff::Timestamp::now()
    };
    let decision = manual::decide(rt, &job.id, manual, &instructions, earlier, since).await;
    let waited =
        Duration::try_from(jiff::Timestamp::now().duration_since(since)).unwrap_or_default();
    let decided = |outcome: Outcome| Outcome { waited, ..outcome };
    match decision {
        Decision::Approved { reason, inputs } => decided(Outcome {
            outputs: rt
                .masker
                .mask_value(&Value::Object(inputs))
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Outcome::done(StepStatus::Succeeded, 1, Some(reason))
        }),
        Decision::Rejected(reason) => decided(Outcome::failed(1, reason)),
        Decision::TimedOut(limit) => decided(Outcome::failed(
            1,
            format!(
                "no decision within {}: failed closed",
                crate::spec::duration::Human(limit)
            ),
        )),
        Decision::Stopped(why) => Outcome::failed(0, why),
        Decision::Pause(waits_for, missing) => {
            rt.checkpoint(Event::Paused {
                id: job.id.clone(),
                instructions,
                waits_for,
                missing,
            })
            .await;
            Outcome {
                pause: true,
                ..Outcome::done(
                    StepStatus::Pending,
                    0,
                    Some("waiting for approval".to_owned()),
                )
            }
        }
    }
}

async fn assert_step(
    rt: &Runtime,
    job: &Job,
    scope: &Scope,
    exprs: &[crate::spec::Expr],
) -> Outcome {
    let (texts, description) = assertion(exprs);
    if let Err(f) = start(rt, job, 1, &description, false).await {
        return Outcome::failed(0, f.message);
    }
    check_assertion(&texts, scope)
}

/// An `assert` step's expressions and how it reads.
pub(super) fn assertion(exprs: &[crate::spec::Expr]) -> (Vec<String>, String) {
    let texts: Vec<String> = exprs.iter().map(|e| e.text.clone()).collect();
    let description = format!("assert {}", texts.join("\n       "));
    (texts, description)
}

/// Evaluates an `assert` step (no side effect).
pub(super) fn check_assertion(texts: &[String], scope: &Scope) -> Outcome {
    match step::assert::check(texts, &scope.value) {
        Ok(()) => Outcome::done(StepStatus::Succeeded, 1, None),
        Err(message) => Outcome::failed(1, message),
    }
}

async fn action_step(rt: &Runtime, job: &Job, scope: &Scope) -> Outcome {
    let step = &job.step;
    let action = match build_action(job, scope) {
        Ok(a) => a,
        Err(e) => return Outcome::failed(0, e.message),
    };
    let description = action.description();
    // The time a person takes to answer is not the step's.
    let mut waited = Duration::ZERO;
    if step.destructive {
        let question = format!("DESTRUCTIVE step `{}`:\n{description}\nRun it?", job.id);
        let confirmation = rt.confirm_destructive(&job.id, question).await;
        waited = confirmation.waited;
        if let Some(reason) = confirmation.refused() {
            return Outcome {
                waited,
                ..Outcome::failed(0, reason)
            };
        }
    }
    if let Some(check) = &step.check
        && let Ok(probe) = probe_action(job, scope, &check.kind, check.on.as_ref())
        && let Ok(result) = step::perform(rt, &job.id, &probe, job.limits.per_attempt()).await
    {
        let outputs = render_outputs(rt, job, scope, &result);
        return match outputs {
            Ok(outputs) => Outcome {
                outputs,
                waited,
                ..Outcome::done(
                    StepStatus::Succeeded,
                    0,
                    Some("already in place (check succeeded); not run".to_owned()),
                )
            },
            Err(e) => Outcome {
                waited,
                ..Outcome::failed(0, e.message)
            },
        };
    }
    Outcome {
        waited,
        ..perform_action(rt, job, scope, &action, &description).await
    }
}

/// Carries out a rendered action with its retries and polls, then renders its outputs.
pub(super) async fn perform_action(
    rt: &Runtime,
    job: &Job,
    scope: &Scope,
    action: &Action,
    description: &str,
) -> Outcome {
    let (attempts, result) = with_retries(rt, job, scope, action, description).await;
    match result {
        Ok(result) => match render_outputs(rt, job, scope, &result) {
            Ok(mut outputs) => {
                let reason = transferred(action, &result, &mut outputs);
                Outcome {
                    outputs,
                    ..Outcome::done(StepStatus::Succeeded, attempts, reason)
                }
            }
            Err(e) => Outcome::failed(attempts, e.message),
        },
        Err(e) => Outcome::failed(attempts, e.message),
    }
}

/// A transfer's outputs are `changed` and `sha256` (beside any it declares); one that found its
/// destination identical is recorded as checked.
fn transferred(
    action: &Action,
    result: &Value,
    outputs: &mut Map<String, Value>,
) -> Option<String> {
    let Action::Transfer(_) = action else {
        return None;
    };
    for key in ["changed", "sha256"] {
        outputs
            .entry(key)
            .or_insert_with(|| result.get(key).cloned().unwrap_or(Value::Null));
    }
    (result.get("changed") == Some(&Value::Bool(false)))
        .then(|| "checked: the destination was already identical; nothing was sent".to_owned())
}

/// Retries around polls around single attempts.
async fn with_retries(
    rt: &Runtime,
    job: &Job,
    scope: &Scope,
    action: &Action,
    description: &str,
) -> (u32, Result<Value, Failure>) {
    let retry = job
        .step
        .retry
        .clone()
        .or_else(|| job.runbook.defaults.retry.clone());
    let max = job.limits.attempts;
    // Attempts are numbered across processes (a resumed step's first attempt here follows the
    // ones made before); `retry` counts the attempts of this process.
    let first = rt.options.first_attempt(&job.id);
    let mut made = 0;
    loop {
        made += 1;
        let attempt = first + made - 1;
        let (polls, result) = once_or_poll(rt, job, scope, action, description, attempt).await;
        let _ = polls;
        match result {
            Ok(v) => return (attempt, Ok(v)),
            Err(e) if made < max && !rt.cancel.is_cancelled() => {
                let delay = retry
                    .as_ref()
                    .map_or(Duration::ZERO, |r| r.delay_after(made));
                rt.emit(Event::Retrying {
                    id: job.id.clone(),
                    attempt,
                    error: e.message.clone(),
                    delay,
                });
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = rt.cancel.cancelled() => return (attempt, Err(Failure::new("interrupted"))),
                }
            }
            Err(e) => return (attempt, Err(e)),
        }
    }
}

/// One attempt without a poll. A local script's shell starts while the start is made durable,
/// and waits for it before the script runs.
async fn once(
    rt: &Runtime,
    job: &Job,
    action: &Action,
    description: &str,
    attempt: u32,
) -> (u32, Result<Value, Failure>) {
    let (stored, held) = start_while(rt, job, attempt, description, false, || {
        step::hold(rt, &job.id, action)
    })
    .await;
    if let Err(f) = stored {
        // Dropped, a held shell reads the end of its input and exits without the script.
        drop(held);
        return (0, Err(f));
    }
    (
        1,
        step::perform_held(rt, &job.id, action, held, job.limits.per_attempt()).await,
    )
}

/// One attempt, or, with `until`, attempts every `interval` until the condition holds or the
/// step's timeout passes.
async fn once_or_poll(
    rt: &Runtime,
    job: &Job,
    scope: &Scope,
    action: &Action,
    description: &str,
    attempt: u32,
) -> (u32, Result<Value, Failure>) {
    let step = &job.step;
    let Some(poll) = &step.poll else {
        return once(rt, job, action, description, attempt).await;
    };
    if let Err(f) = start(rt, job, attempt, description, true).await {
        return (0, Err(f));
    }
    let deadline = job.limits.timeout.map(|t| Instant::now() + t);
    let interval = job.limits.interval;
    let mut polls = 0;
    loop {
        polls += 1;
        // An attempt that hangs must not outlive the poll's own deadline.
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let per_attempt = match (job.limits.default_timeout, remaining) {
            (Some(t), Some(r)) => Some(t.min(r)),
            (t, r) => t.or(r),
        };
        let outcome = step::perform(rt, &job.id, action, per_attempt).await;
        let not_yet = || format!("`{}` is not true yet", poll.until.text);
        // A known failure ends the poll at once.
        if let Some(fail_when) = &poll.fail_when {
            let result = match &outcome {
                Ok(result) => Some(result),
                Err(failure) => failure.result.as_ref(),
            };
            if let Some(result) = result {
                let with_result = scope.with("result", result);
                match with_result.eval(fail_when, "fail_when") {
                    Ok(v) if v.is_true() => {
                        let values = step::assert::values_text(&fail_when.text, &with_result.value);
                        return (
                            polls,
                            Err(Failure::new(format!(
                                "`fail_when: {}` holds after {polls} poll{}{values}",
                                fail_when.text,
                                if polls == 1 { "" } else { "s" }
                            ))),
                        );
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        }
        let detail = match &outcome {
            Ok(result) => {
                let with_result = scope.with("result", result);
                match with_result.eval(&poll.until, "until") {
                    Ok(v) if v.is_true() => return (polls, Ok(result.clone())),
                    // What the condition read, so a failed poll says why.
                    Ok(_) => format!(
                        "{}{}",
                        not_yet(),
                        step::assert::values_text(&poll.until.text, &with_result.value)
                    ),
                    Err(e) => return (polls, Err(e)),
                }
            }
            // A failed attempt (a 503 while a service starts) is "not yet" even when the
            // condition cannot be read from its result (`result.json.state` of an error page).
            Err(failure) => match &failure.result {
                Some(result) => match scope.with("result", result).eval(&poll.until, "until") {
                    Ok(v) if v.is_true() => return (polls, Ok(result.clone())),
                    Ok(_) => format!("{}; {}", failure.message, not_yet()),
                    Err(_) => failure.message.clone(),
                },
                None => failure.message.clone(),
            },
        };
        if rt.cancel.is_cancelled() {
            return (polls, Err(Failure::new("interrupted")));
        }
        if deadline.is_some_and(|d| Instant::now() + interval > d) {
            let limit = job
                .limits
                .timeout
                .map(crate::spec::duration::Human)
                .map(|h| h.to_string())
                .unwrap_or_default();
            return (
                polls,
                Err(Failure::new(format!(
                    "`until: {}` did not hold within {limit} ({polls} polls); last: {}",
                    poll.until.text, detail
                ))),
            );
        }
        rt.emit(Event::Polling {
            id: job.id.clone(),
            attempt: polls,
            detail,
        });
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = rt.cancel.cancelled() => return (polls, Err(Failure::new("interrupted"))),
        }
    }
}

fn render_outputs(
    rt: &Runtime,
    job: &Job,
    scope: &Scope,
    result: &Value,
) -> Result<Map<String, Value>, Failure> {
    if job.step.outputs.is_empty() {
        return Ok(Map::new());
    }
    let with_result = scope.with("result", result);
    let mut outputs = Map::new();
    for output in &job.step.outputs {
        let value = with_result.typed(&output.template, &format!("outputs.{}", output.name))?;
        outputs.insert(output.name.clone(), rt.masker.mask_value(&value));
    }
    Ok(outputs)
}

/// Records an attempt's start; it is durable before the side effect begins.
pub(super) async fn start(
    rt: &Runtime,
    job: &Job,
    attempt: u32,
    description: &str,
    polling: bool,
) -> Result<(), Failure> {
    start_while(rt, job, attempt, description, polling, || ())
        .await
        .0
}

/// Records an attempt's start, doing `meanwhile` while the record is made durable (what may be
/// prepared before the side effect: a command's shell started and held before its script).
async fn start_while<T>(
    rt: &Runtime,
    job: &Job,
    attempt: u32,
    description: &str,
    polling: bool,
    meanwhile: impl FnOnce() -> T,
) -> (Result<(), Failure>, T) {
    let sent = rt.send_checkpoint(Event::StepStarted {
        id: job.id.clone(),
        name: job.name.clone(),
        attempt,
        description: description.to_owned(),
        polling,
    });
    let prepared = meanwhile();
    let stored = match sent {
        Some(done) => done.await.is_ok(),
        None => false,
    };
    if stored {
        (Ok(()), prepared)
    } else {
        (
            Err(Failure::new(
                "the journal could not record the step's start; it was not run",
            )),
            prepared,
        )
    }
}

/// Renders the step's action.
pub(super) fn build_action(job: &Job, scope: &Scope) -> Result<Action, Failure> {
    match &job.step.kind {
        StepKind::Run(cmd) => command(job, scope, cmd),
        StepKind::Http(req) => request(job, scope, req).map(Action::Http),
        StepKind::Sleep(d) => Ok(Action::Sleep(*d)),
        StepKind::Upload(upload) => transfer_up(job, scope, upload).map(Action::Transfer),
        StepKind::Download(download) => transfer_down(job, scope, download).map(Action::Transfer),
        StepKind::Manual(_) | StepKind::Assert(_) | StepKind::Call(_) | StepKind::Block(_) => {
            Err(Failure::new("not an action step"))
        }
    }
}

fn step_host(job: &Job) -> Result<HostTarget, Failure> {
    job.host
        .clone()
        .ok_or_else(|| Failure::new("a transfer needs `on:` a host"))
}

fn transfer_up(job: &Job, scope: &Scope, upload: &Upload) -> Result<Transfer, Failure> {
    let (local, content) = match &upload.source {
        UploadSource::Src(t) => (Some(scope.text(t, "upload.src")?), None),
        UploadSource::Content(t) => (None, Some(scope.text(t, "upload.content")?)),
    };
    Ok(Transfer {
        direction: Direction::Upload,
        host: step_host(job)?,
        local,
        content,
        remote: scope.text(&upload.dest, "upload.dest")?,
        mode: upload.mode,
    })
}

fn transfer_down(job: &Job, scope: &Scope, download: &Download) -> Result<Transfer, Failure> {
    Ok(Transfer {
        direction: Direction::Download,
        host: step_host(job)?,
        local: Some(scope.text(&download.dest, "download.dest")?),
        content: None,
        remote: scope.text(&download.src, "download.src")?,
        mode: None,
    })
}

/// A runbook and its callers, innermost first: where a host named in `on:` is looked up.
pub(super) fn runbooks<'r>(runbook: &'r Runbook, callers: &'r [Arc<Runbook>]) -> Vec<&'r Runbook> {
    std::iter::once(runbook)
        .chain(callers.iter().map(AsRef::as_ref))
        .collect()
}

/// A `check` or `gate` probe: on its own `on:` host if it has one, else where its step runs.
pub(super) fn probe_action(
    job: &Job,
    scope: &Scope,
    probe: &ProbeKind,
    on: Option<&crate::spec::Template>,
) -> Result<Action, Failure> {
    let own = on
        .map(|t| {
            let spec = scope.typed(t, "on")?;
            super::hosts::resolve(&spec, &runbooks(&job.runbook, &job.callers), scope)
        })
        .transpose()?;
    let host = own.as_ref().or(job.host.as_ref());
    match probe {
        ProbeKind::Run(cmd) => command_on(job, scope, cmd, host),
        ProbeKind::Http(req) => request_on(job, scope, req, host).map(Action::Http),
    }
}

fn command(job: &Job, scope: &Scope, cmd: &Command) -> Result<Action, Failure> {
    command_on(job, scope, cmd, job.host.as_ref())
}

fn command_on(
    job: &Job,
    scope: &Scope,
    cmd: &Command,
    host: Option<&HostTarget>,
) -> Result<Action, Failure> {
    let step = &job.step;
    let runbook = &job.runbook;
    let mut line = match cmd {
        Command::Script(t) => {
            let shell = step
                .shell
                .as_deref()
                .or(runbook.defaults.shell.as_deref())
                .unwrap_or("sh");
            CommandLine::script(shell, &scope.text(t, "run")?)
        }
        Command::Argv(args) => CommandLine::argv(
            args.iter()
                .map(|a| scope.text(a, "run"))
                .collect::<Result<_, _>>()?,
        ),
    };
    for (k, v) in runbook.env.iter().chain(&step.env) {
        // A value that renders to none (`{{ params.profile or none }}`) leaves the variable
        // out, also when the runbook's `env` had set it.
        line.env.retain(|(name, _)| name != k);
        match scope.typed(v, &format!("env.{k}"))? {
            Value::Null => {}
            Value::String(s) => line.env.push((k.clone(), s)),
            other => line.env.push((k.clone(), other.to_string())),
        }
    }
    if let Some(cwd) = &step.cwd {
        // Like every path in a command, a relative `cwd` is relative to where runbook was started.
        line.cwd = Some(scope.text(cwd, "cwd")?);
    }
    Ok(Action::Command {
        line,
        host: host.cloned(),
    })
}

fn request(job: &Job, scope: &Scope, req: &HttpRequest) -> Result<Request, Failure> {
    request_on(job, scope, req, job.host.as_ref())
}

fn request_on(
    job: &Job,
    scope: &Scope,
    req: &HttpRequest,
    host: Option<&HostTarget>,
) -> Result<Request, Failure> {
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| {
            scope
                .text(v, &format!("headers.{k}"))
                .map(|v| (k.clone(), v))
        })
        .collect::<Result<_, _>>()?;
    let (json, body) = match &req.body {
        Some(HttpBody::Json(v)) => (Some(scope.value(v, "json")?), None),
        Some(HttpBody::Text(t)) => (None, Some(scope.text(t, "body")?)),
        None => (None, None),
    };
    Ok(Request {
        method: req.method.clone(),
        url: scope.text(&req.url, "url")?,
        headers,
        json,
        body,
        timeout: req
            .timeout
            .or(job.limits.timeout.filter(|_| job.step.poll.is_none()))
            .unwrap_or(Duration::from_secs(30)),
        insecure: req.insecure,
        expect: req.expect_status.clone(),
        via: host.cloned(),
    })
}
