//! The live view of a run: indicatif progress lines on a terminal, plain timestamped lines
//! otherwise, a rehearsal listing for `--dry-run`, and the final summary table (every step of
//! the plan, in plan order).
//!
//! What is normal is shown quietly: a `check` that finds its step not in place yet, and the
//! polls of an `until` that has not held yet, are counted on the step's line, their output kept
//! in the step's log (and shown with `-v`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::prompt::{self, Consent};
use super::screen::Screen;
use crate::exec::event::{Event, Marks, Message, Question, RunStatus, Stamped, StepStatus, Stream};
use crate::plan::NodeId;
use crate::plan::order::PlanOrder;
use crate::spec::duration::Human;

/// How the run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars (a terminal).
    Progress,
    /// One line per event.
    Plain,
    /// `--dry-run --format json`: only the rehearsal, as JSON, at the end.
    Json,
}

/// How much a run tells while it goes (`-q`, `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Failures, questions, pauses and the verdict.
    Quiet,
    /// Every step's start and end and what it printed; checks and polls counted quietly.
    #[default]
    Normal,
    /// Also what each `check` and each poll printed, and why a poll did not hold yet.
    Verbose,
}

/// How a run is shown, and what the view needs to know of it.
#[derive(Debug, Clone)]
pub struct View {
    /// Progress bars, plain lines, or the rehearsal as JSON.
    pub mode: Mode,
    /// Colors.
    pub color: bool,
    /// How much is told.
    pub verbosity: Verbosity,
    /// The plan's steps in plan order (the summary lists them all).
    pub order: PlanOrder,
    /// Cancelled when the run is being stopped: a question waiting for its answer gives up.
    pub stop: CancellationToken,
}

/// One row of the final summary.
#[derive(Debug, Clone)]
struct Row {
    status: StepStatus,
    /// How the status reads in the summary (`interrupted`, `done before`, `not run`).
    label: &'static str,
    /// Attempts made (none for a step this process did not run).
    attempts: Option<u32>,
    /// Its own time (none for a step this process did not run).
    duration: Option<Duration>,
    /// Time it waited for a person (not in `duration`).
    waited: Duration,
    reason: Option<String>,
}

/// Consumes a run's messages until the channel closes; returns the rehearsal (JSON mode).
pub async fn consume(mut rx: UnboundedReceiver<Message>, view: View) -> Vec<serde_json::Value> {
    console::set_colors_enabled(view.color);
    console::set_colors_enabled_stderr(view.color);
    let stop = view.stop.clone();
    let mut live = Live::new(view);
    while let Some(message) = rx.recv().await {
        match message {
            Message::Event(stamped) => live.show(stamped),
            Message::Checkpoint(stamped, ack) => {
                // Without a journal (a rehearsal) nothing needs to be stored first.
                let _ = ack.send(());
                live.show(stamped);
            }
            Message::Ask(q) => live.multi.suspend(|| ask(q, &stop)),
            Message::AskPerson(q) => live
                .multi
                .suspend(|| prompt::ask_person(q, &|| stop.is_cancelled())),
        }
    }
    live.rehearsal
}

/// What the live view keeps while a run goes: the progress bars, the rows of the summary, the
/// rehearsal, and what earlier events said.
struct Live {
    mode: Mode,
    verbosity: Verbosity,
    multi: MultiProgress,
    /// Where the bars are drawn (a terminal on stderr).
    screen: Option<Screen>,
    bars: HashMap<NodeId, ProgressBar>,
    order: PlanOrder,
    rows: HashMap<NodeId, Row>,
    /// Steps with an attempt started by this process: the number of their last attempt. What a
    /// step prints before its first start is its `check`'s probe.
    attempts: HashMap<NodeId, u32>,
    /// Steps that poll (`until`), and how many polls have not held yet.
    polls: HashMap<NodeId, u32>,
    rehearsal: Vec<serde_json::Value>,
    dry_run: bool,
    this_run: String,
    restored: usize,
    /// The terminal (or pipe) output went to failed: nothing more is shown.
    gone: bool,
    /// How many of `restored` were named or counted already.
    restored_told: usize,
    /// How long steps waited for people (shown apart from their time).
    waited: HashMap<NodeId, Duration>,
}

impl Live {
    fn new(view: View) -> Self {
        let screen = if view.mode == Mode::Progress {
            Screen::stderr()
        } else {
            None
        };
        Self {
            mode: view.mode,
            verbosity: view.verbosity,
            multi: MultiProgress::with_draw_target(
                screen
                    .as_ref()
                    .map_or_else(ProgressDrawTarget::hidden, Screen::target),
            ),
            screen,
            bars: HashMap::new(),
            order: view.order,
            rows: HashMap::new(),
            attempts: HashMap::new(),
            polls: HashMap::new(),
            rehearsal: Vec::new(),
            dry_run: false,
            this_run: String::new(),
            restored: 0,
            gone: false,
            restored_told: 0,
            waited: HashMap::new(),
        }
    }

    /// Shows one event (some only update a progress bar or the summary).
    fn show(&mut self, Stamped { at, event }: Stamped) {
        if !matches!(event, Event::Restored { .. })
            && let Some(text) = self.more_restored()
        {
            self.print(at, &text);
        }
        let important = is_important(&event);
        if let Some(text) = self.line(&event)
            && (important || self.verbosity != Verbosity::Quiet)
        {
            self.print(at, &text);
        }
    }

    /// After the steps settled before a resume that were named one by one: how many more there
    /// were (told once the run goes on).
    fn more_restored(&mut self) -> Option<String> {
        let more = self
            .restored
            .saturating_sub(self.restored_told.max(RESTORED_SHOWN));
        self.restored_told = self.restored;
        (more > 0).then(|| {
            style(format!(
                "…and {more} more done before this resume (`runbook show {}` lists them)",
                self.this_run
            ))
            .dim()
            .to_string()
        })
    }

    /// The line an event prints, if any.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per event, each the line it prints: it reads best whole"
    )]
    fn line(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::RunStarted {
                run_id,
                runbook,
                steps,
                dry_run,
            } => self.run_started(run_id, runbook, *steps, *dry_run),
            Event::StepStarted {
                id,
                name,
                attempt,
                description,
                polling,
            } => Some(self.step_started(id, name.as_deref(), *attempt, description, *polling)),
            Event::ProcessStarted { .. } => None,
            Event::Output { id, stream, line } => self.output(id, *stream, line),
            Event::Retrying {
                id,
                attempt,
                error,
                delay,
            } => Some(format!(
                "{} {id}: attempt {attempt} failed ({error}); retrying in {}",
                style("retry").yellow(),
                Human(*delay)
            )),
            Event::Polling {
                id,
                attempt,
                detail,
            } => self.polling(id, *attempt, detail),
            Event::Rehearsed {
                id,
                name,
                description,
                marks,
                notes,
            } => self.rehearsed(id, name.as_deref(), description, marks, notes),
            Event::Restored { id, status, reason } => self.restored(id, *status, reason),
            Event::StepInterrupted { id, duration } => Some(self.interrupted(id, *duration)),
            Event::StepFinished {
                id,
                status,
                attempts,
                duration,
                reason,
                ..
            } => self.finished(id, *status, *attempts, *duration, reason.as_deref()),
            Event::BatchStarted {
                id,
                batch,
                of,
                items,
            } => Some(format!(
                "{} {batch} of {of} of {id}: {}",
                style("batch").cyan(),
                items.join(", ")
            )),
            Event::GateStarted {
                id,
                batch,
                description,
            } => Some(self.gate_started(id, *batch, description)),
            Event::GateEnded {
                id,
                batch,
                held,
                detail,
            } => Some(gate_ended(id, *batch, *held, detail)),
            Event::Delaying { id, delay } => Some(format!(
                "{} {id}: waiting {} before the first attempt",
                style("wait").dim(),
                Human(*delay)
            )),
            Event::Paused {
                id,
                instructions,
                waits_for,
                missing,
            } => Some(self.paused(id, instructions, waits_for, missing)),
            Event::Decided {
                id,
                approved,
                by,
                via,
                reason,
                ..
            } => Some(decided(id, *approved, by, *via, reason.as_deref())),
            Event::Waited { id, waited } => {
                self.waited.insert(id.clone(), *waited);
                None
            }
            Event::Notified {
                on,
                url,
                status,
                error,
            } => Some(match (error, status) {
                (Some(error), _) => format!(
                    "{} notification of {} to {url} failed (the run goes on): {error}",
                    style("warn").yellow(),
                    on.as_str()
                ),
                (None, Some(code)) => format!("notified {url} ({}): HTTP {code}", on.as_str()),
                (None, None) => format!("notified {url} ({})", on.as_str()),
            }),
            Event::RunFinished { status, duration } => self.run_finished(*status, *duration),
        }
    }

    /// A step an earlier process settled: a row of the summary; a handful are named, a long
    /// run's thousands are summed up.
    fn restored(&mut self, id: &NodeId, status: StepStatus, reason: &str) -> Option<String> {
        self.restored += 1;
        self.rows.insert(
            id.clone(),
            Row {
                status,
                label: "done before",
                attempts: None,
                duration: None,
                waited: Duration::ZERO,
                reason: None,
            },
        );
        (self.restored <= RESTORED_SHOWN).then(|| {
            format!(
                "{} {id}: {reason}",
                style(format!("{} before", status.as_str())).dim()
            )
        })
    }

    /// A manual step waits: its instructions, what it waits for, and how to go on.
    fn paused(
        &self,
        id: &NodeId,
        instructions: &str,
        waits_for: &str,
        missing: &[String],
    ) -> String {
        let inputs = missing.iter().fold(String::new(), |mut text, m| {
            let _ = write!(text, " --input {id}.{m}=…");
            text
        });
        format!(
            "{} at manual step {id}:\n{}\n  waiting for {waits_for}\n  approve with: runbook resume {run} --approve {id}{inputs} [--as NAME]\n  reject with:  runbook resume {run} --reject {id} --reason \"…\"",
            style("paused").yellow().bold(),
            indent_all(instructions),
            run = self.this_run,
        )
    }

    fn run_started(
        &mut self,
        run_id: &str,
        runbook: &str,
        steps: usize,
        dry_run: bool,
    ) -> Option<String> {
        self.dry_run = dry_run;
        run_id.clone_into(&mut self.this_run);
        if self.mode == Mode::Json {
            None
        } else if dry_run {
            Some(format!(
                "rehearsal of {runbook} ({steps} steps): nothing below is executed except steps marked `safe`"
            ))
        } else {
            Some(format!("run {run_id} of {runbook}: {steps} steps"))
        }
    }

    fn step_started(
        &mut self,
        id: &NodeId,
        name: Option<&str>,
        attempt: u32,
        description: &str,
        polling: bool,
    ) -> String {
        self.attempts.insert(id.clone(), attempt);
        if polling {
            self.polls.insert(id.clone(), 0);
        }
        if self.mode == Mode::Progress {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(id.to_string());
            bar.set_message(if polling {
                "polling".to_owned()
            } else {
                first_line(description)
            });
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.insert(id.clone(), bar);
        }
        let title = name.map(|n| format!(" ({n})")).unwrap_or_default();
        let again = if attempt > 1 {
            format!(" attempt {attempt}")
        } else {
            String::new()
        };
        format!(
            "{} {id}{title}{again}: {}",
            style("start").cyan(),
            indent(description)
        )
    }

    /// A line a step printed: shown, unless it is what a `check` or a poll not yet held
    /// printed (kept in the step's log; shown with `-v`).
    fn output(&self, id: &NodeId, stream: Stream, line: &str) -> Option<String> {
        let quiet = !self.attempts.contains_key(id) || self.polls.contains_key(id);
        if quiet && self.verbosity != Verbosity::Verbose {
            return None;
        }
        let mark = if stream == Stream::Stderr { "!" } else { "|" };
        let text = format!("{id} {mark} {line}");
        Some(if quiet {
            style(text).dim().to_string()
        } else {
            text
        })
    }

    /// A poll that did not hold yet: counted on the step's line; why, with `-v`.
    fn polling(&mut self, id: &NodeId, attempt: u32, detail: &str) -> Option<String> {
        self.polls.insert(id.clone(), attempt);
        if let Some(bar) = self.bars.get(id) {
            bar.set_message(format!("waiting: {attempt} poll{} so far", plural(attempt)));
            return None;
        }
        let why = if self.verbosity == Verbosity::Verbose {
            format!(": {}", first_line_inline(detail))
        } else {
            String::new()
        };
        Some(
            style(format!("wait {id}: not yet after poll {attempt}{why}"))
                .dim()
                .to_string(),
        )
    }

    fn rehearsed(
        &mut self,
        id: &NodeId,
        name: Option<&str>,
        description: &str,
        marks: &Marks,
        notes: &[String],
    ) -> Option<String> {
        self.rehearsal.push(serde_json::json!({ "id": id, "name": name, "would_run": description, "destructive": marks.destructive, "manual": marks.manual, "safe": marks.safe, "notes": notes }));
        (self.mode != Mode::Json).then(|| {
            rehearsed_line(
                self.rehearsal.len(),
                id.as_str(),
                name,
                description,
                marks,
                notes,
            )
        })
    }

    /// A step's bar is done.
    fn clear_bar(&mut self, id: &NodeId) {
        if let Some(bar) = self.bars.remove(id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn interrupted(&mut self, id: &NodeId, duration: Duration) -> String {
        self.clear_bar(id);
        self.polls.remove(id);
        let attempts = self.attempts.remove(id);
        self.rows.insert(
            id.clone(),
            Row {
                label: "interrupted",
                status: StepStatus::Pending,
                attempts,
                duration: Some(duration),
                waited: Duration::ZERO,
                reason: None,
            },
        );
        format!(
            "{} {id} after {}: its processes were stopped",
            style("interrupted").yellow(),
            Human(duration)
        )
    }

    fn gate_started(&self, id: &NodeId, batch: usize, description: &str) -> String {
        format!(
            "{} of {id} after batch {batch}: {}{}",
            style("gate").cyan(),
            indent(description),
            if self.dry_run {
                "\n    (checked at run time: the next batch starts once it holds)"
            } else {
                ""
            }
        )
    }

    fn finished(
        &mut self,
        id: &NodeId,
        status: StepStatus,
        attempts: u32,
        duration: Duration,
        reason: Option<&str>,
    ) -> Option<String> {
        self.clear_bar(id);
        let waited = self.waited.remove(id).unwrap_or_default();
        self.attempts.remove(id);
        let polls = self.polls.remove(id).unwrap_or(0);
        self.rows.insert(
            id.clone(),
            Row {
                label: status.as_str(),
                status,
                attempts: Some(attempts),
                duration: Some(duration),
                waited,
                reason: reason.map(str::to_owned),
            },
        );
        if self.dry_run && reason == Some("rehearsed") {
            return None;
        }
        let held = if polls > 0 {
            format!(" (held after {} polls)", polls + 1)
        } else {
            String::new()
        };
        let text = reason
            .map(|r| format!(": {}", first_line_inline(r)))
            .unwrap_or_default();
        let waited = if waited.is_zero() {
            String::new()
        } else {
            format!(" (and {} waiting for a person)", Human(waited))
        };
        Some(format!(
            "{} {id} in {}{held}{waited}{text}",
            status_word(status),
            Human(duration)
        ))
    }

    fn run_finished(&self, status: RunStatus, duration: Duration) -> Option<String> {
        if self.mode == Mode::Json {
            return None;
        }
        let next = match status {
            RunStatus::Failed | RunStatus::Interrupted if !self.dry_run => format!(
                "\ncontinue with: runbook resume {}   (succeeded steps are not run again)",
                self.this_run
            ),
            _ => String::new(),
        };
        let earlier = if self.restored > 0 {
            format!(
                "\n{} step{} done before this resume {} not run again",
                self.restored,
                if self.restored == 1 { "" } else { "s" },
                if self.restored == 1 { "was" } else { "were" }
            )
        } else {
            String::new()
        };
        let rows = if self.dry_run || self.verbosity == Verbosity::Quiet {
            Vec::new()
        } else {
            self.rows_in_plan_order()
        };
        let failed: Vec<(&NodeId, &Row)> = self
            .rows
            .iter()
            .filter(|(_, r)| r.status == StepStatus::Failed)
            .collect();
        let mut failed = failed;
        failed.sort_by(|a, b| self.order.compare(a.0, b.0));
        Some(summary(&rows, &failed, status, duration, self.dry_run) + &earlier + &next)
    }

    /// Every step of the plan and every item the run expanded, in plan order; a step this
    /// process neither ran nor found done is `not run`.
    fn rows_in_plan_order(&self) -> Vec<(NodeId, Row)> {
        let not_run = Row {
            status: StepStatus::Pending,
            label: "not run",
            attempts: None,
            duration: None,
            waited: Duration::ZERO,
            reason: None,
        };
        let mut rows: Vec<(NodeId, Row)> = self
            .order
            .nodes()
            .iter()
            .filter(|id| !self.rows.contains_key(*id))
            .map(|id| (id.clone(), not_run.clone()))
            .chain(self.rows.iter().map(|(id, r)| (id.clone(), r.clone())))
            .collect();
        self.order.sort_by_id(&mut rows, |(id, _)| id);
        rows
    }

    /// Prints a line where the mode wants it: above the bars, on stdout with the time of its
    /// event (plain), or on stderr (JSON mode: stdout carries only the JSON document). Once the
    /// terminal or pipe fails (closed: EIO, EPIPE), nothing more is shown and the run goes on:
    /// its output is still in the logs.
    fn print(&mut self, at: jiff::Timestamp, text: &str) {
        if self.gone {
            return;
        }
        let written = match self.mode {
            Mode::Progress => self
                .multi
                .suspend(|| writeln!(std::io::stdout().lock(), "{text}")),
            Mode::Json => writeln!(std::io::stderr().lock(), "{text}"),
            Mode::Plain => writeln!(std::io::stdout().lock(), "{} {text}", clock(at)),
        };
        if written.is_err() || self.screen.as_ref().is_some_and(Screen::gone) {
            self.gone = true;
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
        }
    }
}

/// A gate after a batch held, or did not.
fn gate_ended(id: &NodeId, batch: usize, held: bool, detail: &str) -> String {
    format!(
        "{} gate of {id} after batch {batch}: {detail}",
        if held {
            style("ok").green().to_string()
        } else {
            style("FAILED").red().bold().to_string()
        }
    )
}

/// A person's decision: who, how, and why.
fn decided(
    id: &NodeId,
    approved: bool,
    by: &str,
    via: crate::exec::approvals::Via,
    reason: Option<&str>,
) -> String {
    format!(
        "{} {id} by {by} {}{}",
        if approved {
            style("approved").green().to_string()
        } else {
            style("rejected").red().bold().to_string()
        },
        via.describe(approved),
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    )
}

/// Asks a person to confirm a destructive step (by typing its id); gives up when the run is
/// being stopped.
fn ask(q: Question, stop: &CancellationToken) {
    let consent = Consent::Typed(q.id.to_string());
    let question = format!("[{}] {}", q.id, q.prompt);
    let answer = prompt::ask(&question, &consent, &|| stop.is_cancelled());
    let _ = q.reply.send(answer);
}

/// Whether an event is told even with `-q`: failures, interrupts, pauses and the end.
fn is_important(event: &Event) -> bool {
    match event {
        Event::StepFinished { status, .. } => *status == StepStatus::Failed,
        Event::GateEnded { held, .. } => !held,
        Event::StepInterrupted { .. } | Event::Paused { .. } | Event::RunFinished { .. } => true,
        _ => false,
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The local time of day of a moment (`14:03:59`), for plain lines.
fn clock(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string()
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 70 {
        format!("{}…", line.chars().take(70).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn indent(text: &str) -> String {
    if text.contains('\n') {
        format!("\n{}", indent_all(text))
    } else {
        text.to_owned()
    }
}

/// A reason: its first line where it is, the others indented below (the values a failed
/// condition read).
fn first_line_inline(text: &str) -> String {
    match text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{}", indent_all(rest)),
        None => text.to_owned(),
    }
}

fn indent_all(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_word(status: StepStatus) -> String {
    match status {
        StepStatus::Succeeded => style("ok").green().to_string(),
        StepStatus::Failed => style("FAILED").red().bold().to_string(),
        StepStatus::Skipped => style("skipped").dim().to_string(),
        StepStatus::Pending | StepStatus::Running => style(status.as_str()).to_string(),
    }
}

fn rehearsed_line(
    n: usize,
    id: &str,
    name: Option<&str>,
    description: &str,
    marks: &Marks,
    notes: &[String],
) -> String {
    let mut tags = Vec::new();
    if marks.destructive {
        tags.push(style("[DESTRUCTIVE: asks first]").red().bold().to_string());
    }
    if marks.manual {
        tags.push(style("[MANUAL: waits for a person]").yellow().to_string());
    }
    if marks.safe {
        tags.push(style("[SAFE: runs for real]").green().to_string());
    }
    let title = name.map(|n| format!(" — {n}")).unwrap_or_default();
    let mut out = format!("{n:>3}. {id}{title}");
    for tag in tags {
        let _ = write!(out, " {tag}");
    }
    let _ = write!(out, "\n{}", indent_all(description));
    for note in notes {
        let _ = write!(out, "\n    ({note})");
    }
    out
}

/// How many steps settled before a resume are named one by one.
const RESTORED_SHOWN: usize = 5;

/// Past this many steps the summary table is shortened.
const SUMMARY_ROWS: usize = 60;

fn summary(
    rows: &[(NodeId, Row)],
    failed: &[(&NodeId, &Row)],
    status: RunStatus,
    duration: Duration,
    dry_run: bool,
) -> String {
    let mut out = String::new();
    if !rows.is_empty() {
        // A long run's table keeps what needs attention: failures and interrupted steps, then
        // the last steps that ran.
        let shown: Vec<&(NodeId, Row)> = if rows.len() <= SUMMARY_ROWS {
            rows.iter().collect()
        } else {
            let ran: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].1.attempts.is_some())
                .collect();
            let last = &ran[ran.len().saturating_sub(SUMMARY_ROWS / 2)..];
            let _ = writeln!(
                out,
                "\n({} steps; failures and the last {} that ran shown, `runbook show` has all)",
                rows.len(),
                last.len()
            );
            rows.iter()
                .enumerate()
                .filter(|(i, (_, r))| {
                    r.status == StepStatus::Failed || r.label == "interrupted" || last.contains(i)
                })
                .map(|(_, row)| row)
                .collect()
        };
        table(&mut out, &shown);
    }
    let verdict = match status {
        RunStatus::Succeeded => style(if dry_run {
            "rehearsal complete"
        } else {
            "succeeded"
        })
        .green()
        .bold()
        .to_string(),
        RunStatus::Failed => style("failed").red().bold().to_string(),
        RunStatus::Paused => style("paused").yellow().bold().to_string(),
        RunStatus::Interrupted => style("interrupted").yellow().bold().to_string(),
        RunStatus::Running => "running".to_owned(),
    };
    let _ = write!(out, "{verdict} in {}", Human(duration));
    for (id, r) in failed {
        let _ = write!(
            out,
            "\n  {id} failed: {}",
            r.reason.as_deref().unwrap_or("")
        );
    }
    out
}

/// The summary table, each column as wide as its widest cell.
fn table(out: &mut String, rows: &[&(NodeId, Row)]) {
    // Time people took is shown apart, in its own column, when any step waited for one.
    let waits = rows.iter().any(|(_, r)| !r.waited.is_zero());
    let mut header = vec!["step", "status", "attempts", "time"];
    if waits {
        header.push("waited");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(id, r)| {
            let mut row = vec![
                id.to_string(),
                r.label.to_owned(),
                r.attempts.map_or_else(|| "-".to_owned(), |a| a.to_string()),
                r.duration
                    .map_or_else(|| "-".to_owned(), |d| Human(d).to_string()),
            ];
            if waits {
                row.push(if r.waited.is_zero() {
                    "-".to_owned()
                } else {
                    Human(r.waited).to_string()
                });
            }
            row
        })
        .collect();
    let width = |c: usize| {
        cells
            .iter()
            .map(|row| row[c].chars().count())
            .chain([header[c].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |out: &mut String, row: &[&str]| {
        let _ = write!(
            out,
            "{:w$}  {:w1$}",
            row[0],
            row[1],
            w = widths[0],
            w1 = widths[1]
        );
        for (cell, w) in row.iter().zip(&widths).skip(2) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    };
    out.push('\n');
    line(out, &header);
    for row in &cells {
        let row: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &row);
    }
}
