//! The scheduler: runs a plan's graph with bounded parallelism. The [`Walk`] says what may
//! start and what each end sets off; the scheduler starts step tasks, decides the nodes that
//! need no task (a call being entered, a fan-out whose list is known only now, the steps of a
//! skipped call), keeps the state templates read, and reports everything as events. It owns all
//! run state; step tasks only report back their outcome.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::attempt::{self, Job, Outcome};
use super::context::{self, Cells, Layout, StepsView};
use super::event::{Event, Marks, RunStatus, StepStatus};
use super::hosts;
use super::render::Scope;
use super::runtime::Runtime;
use super::secrets::Secrets;
use super::settings::{self, Limits};
use super::walk::{Happening, Walk};
use crate::plan::{ItemKey, NodeId, Phase, Plan, PlanNode, Role};
use crate::spec::{ForEachItems, OnTargets};
use crate::template;

/// A step an earlier process of the same run already settled (what a resume starts from).
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// succeeded or skipped (never run again), or failed (a rejected manual step).
    pub status: StepStatus,
    /// Its outputs, for later templates.
    pub outputs: Map<String, Value>,
    /// Items of a fan-out.
    pub items: Vec<Value>,
    /// Shown to the operator.
    pub reason: String,
    /// Decided by this process, not found in the journal (a step left out by `run --only`):
    /// recorded as the step's end, not restored as done before.
    pub record: bool,
}

/// Node id → what is settled; items of fan-outs (`x[2]`) and whole fan-outs (`x`) included.
pub type SettledSteps = HashMap<NodeId, Settled>;

/// Runs a plan to its end; returns the run's status.
pub async fn execute(plan: Arc<Plan>, secrets: &Secrets, rt: Arc<Runtime>) -> RunStatus {
    resume(plan, secrets, rt, SettledSteps::new()).await
}

/// Runs what is left of a plan: settled steps are never run again; `finally` always runs.
pub async fn resume(
    plan: Arc<Plan>,
    secrets: &Secrets,
    rt: Arc<Runtime>,
    settled: SettledSteps,
) -> RunStatus {
    let started = Instant::now();
    rt.emit(Event::RunStarted {
        run_id: rt.options.run_id.clone(),
        runbook: plan.root().name.clone(),
        steps: plan.graph.node_count(),
        dry_run: rt.options.dry_run,
    });
    let notices = super::notify::Notices::of(&plan, secrets);
    let mut scheduler = Scheduler::new(Arc::unwrap_or_clone(plan), secrets, Arc::clone(&rt));
    scheduler.settled = settled;
    let status = scheduler.run().await;
    notices.send(&rt, status, &scheduler.waiting).await;
    rt.checkpoint(Event::RunFinished {
        status,
        duration: started.elapsed(),
    })
    .await;
    status
}

/// What the scheduler keeps of one node.
#[derive(Debug, Clone)]
struct NodeState {
    status: StepStatus,
    outputs: Map<String, Value>,
    /// The slot templates read it from (items share their fan-out's).
    slot: Option<usize>,
}

/// What the scheduler keeps of one fan-out.
#[derive(Debug, Clone)]
struct FanState {
    /// The step's id (`restart`, `rolling[2].restart`).
    id: NodeId,
    slot: usize,
    /// `{item, status, outputs}` per item, in list order.
    summary: Vec<Value>,
}

/// How a node that needs no task was decided.
enum Decided {
    /// A task must run it.
    NeedsTask,
    /// Decided now (skipped with its call, or failed to render).
    Now(Outcome),
    /// A call entered, or a fan-out opened: it ends with its group or its items.
    Later,
}

/// What a task of the scheduler did.
enum Finished {
    /// A step (or item) ended.
    Step(NodeIndex, Outcome, Duration),
    /// A fan-out's gate was checked: how it went, or why it did not hold.
    Gate(usize, usize, Result<String, String>),
    /// A failed call waited its retry delay: it runs again.
    Retry(usize),
}

/// What a task runs: a node, or a fan-out's gate (fan-out, batch).
#[derive(Debug, Clone, Copy)]
enum Target {
    Node(NodeIndex),
    Gate(usize, usize),
    Retry(usize),
}

struct Scheduler {
    plan: Plan,
    rt: Arc<Runtime>,
    walk: Walk,
    secrets: minijinja::Value,
    env: minijinja::Value,
    nodes: Vec<NodeState>,
    fans: HashMap<usize, FanState>,
    /// What templates read, kept in step with `nodes` and `fans` by [`Scheduler::show`].
    cells: Cells,
    layout: Arc<Layout>,
    /// Each scope's params (a call's are set when it is entered).
    scope_params: Vec<Option<Map<String, Value>>>,
    /// `scope_params` as template values (converted once per scope).
    param_values: Vec<minijinja::Value>,
    /// What an earlier process settled (resume).
    settled: SettledSteps,
    running: JoinSet<Finished>,
    /// What each task runs: a task that panics is that node's (or gate's) failure.
    tasks: HashMap<tokio::task::Id, Target>,
    /// Why a fan-out failed before any item ran (its policy did not render).
    fan_reasons: HashMap<usize, String>,
    /// When each call and fan-out began (their duration ends with their last step).
    began: HashMap<NodeId, Instant>,
    /// Calls with a `timeout`: when their time is up, and the limit as written.
    deadlines: HashMap<usize, (Instant, Duration)>,
    /// A manual step is waiting for a person: the run pauses.
    paused: bool,
    /// The manual steps waiting for a person.
    waiting: Vec<NodeId>,
    /// Read-only probes that failed during a rehearsal.
    failed_probes: usize,
    /// Fan-outs a rehearsal could not expand (their list is known only at run time).
    unknown_fans: std::collections::HashSet<NodeIndex>,
    /// The run's own status, once its group has ended.
    ended: Option<StepStatus>,
}

impl Scheduler {
    fn new(plan: Plan, secrets: &Secrets, rt: Arc<Runtime>) -> Self {
        let mut scope_params = vec![None; plan.scopes.len()];
        scope_params[0] = Some(plan.params.clone());
        let mut param_values = vec![template::to_value(&Map::new()); plan.scopes.len()];
        param_values[0] = template::to_value(&plan.params);
        let walk = Walk::new(&plan);
        let mut scheduler = Self {
            walk,
            secrets: template::to_value(&secrets.as_map()),
            env: template::to_value(&std::env::vars().collect::<BTreeMap<String, String>>()),
            nodes: Vec::with_capacity(plan.graph.node_count()),
            fans: HashMap::new(),
            cells: Cells::default(),
            layout: Arc::new(Layout::default()),
            scope_params,
            param_values,
            settled: SettledSteps::new(),
            running: JoinSet::new(),
            tasks: HashMap::new(),
            fan_reasons: HashMap::new(),
            began: HashMap::new(),
            deadlines: HashMap::new(),
            paused: false,
            waiting: Vec::new(),
            failed_probes: 0,
            unknown_fans: std::collections::HashSet::new(),
            ended: None,
            plan,
            rt,
        };
        scheduler.take_in_nodes();
        scheduler
    }

    /// Gives the plan's nodes the scheduler does not know yet (all at first, then those of
    /// fan-outs opened at run time) their state and slots.
    fn take_in_nodes(&mut self) {
        let layout = Arc::make_mut(&mut self.layout);
        for (s, scope) in self.plan.scopes.iter().enumerate() {
            if let (true, Some(caller)) = (scope.block, scope.caller) {
                layout.see_through(s, caller);
            }
        }
        for n in (self.nodes.len()..self.plan.graph.node_count()).map(NodeIndex::new) {
            let node = &self.plan.graph[n];
            let slot = match self.walk.item_of(n) {
                Some(_) => None,
                None => Some(layout.slot(node.scope, &node.local_id)),
            };
            self.nodes.push(NodeState {
                status: StepStatus::Pending,
                outputs: Map::new(),
                slot,
            });
        }
        while self.scope_params.len() < self.plan.scopes.len() {
            self.scope_params.push(None);
            self.param_values.push(template::to_value(&Map::new()));
        }
        let slots = layout.len();
        self.cells.resize(slots);
    }

    /// The slot and state of a fan-out, created on first use.
    fn fan_state(&mut self, f: usize) -> &mut FanState {
        if !self.fans.contains_key(&f) {
            let first = self.walk.fan_items(f).first().copied();
            let anchor = self.walk.fan_stand_in(f).or(first);
            let (id, scope, local) = anchor.map_or_else(
                || (NodeId::step("fan"), 0, String::new()),
                |n| {
                    let node = &self.plan.graph[n];
                    let id = node.id.fan_out().unwrap_or_else(|| node.id.clone());
                    (id, node.scope, node.local_id.clone())
                },
            );
            let slot = Arc::make_mut(&mut self.layout).slot(scope, &local);
            let len = self.layout.len();
            self.cells.resize(len);
            let summary = self
                .walk
                .fan_items(f)
                .iter()
                .map(|&n| {
                    let mut entry = json!({ "item": item_value(&self.plan, n), "status": "pending", "outputs": {} });
                    // An item of `on:` a list of hosts also says which host it is.
                    if let Some(ItemKey::Host(host)) = self.plan.graph[n].id.item_key() {
                        entry["host"] = Value::from(host);
                    }
                    entry
                })
                .collect();
            self.fans.insert(f, FanState { id, slot, summary });
        }
        self.fans
            .get_mut(&f)
            .expect("inserted just above when missing")
    }

    async fn run(&mut self) -> RunStatus {
        self.set_policies(0);
        self.restore();
        self.walk.start(&self.plan);
        self.act();
        let limit = self.rt.options.max_parallel.max(1);
        loop {
            while let Some(n) = self.walk.peek_ready() {
                if self.needs_task(n) && self.running.len() >= limit {
                    break;
                }
                let Some(n) = self.walk.next_ready(&self.plan) else {
                    break;
                };
                self.start(n).await;
                self.act();
            }
            let Some(joined) = self.running.join_next_with_id().await else {
                break;
            };
            let finished = match joined {
                Ok((task, finished)) => {
                    self.tasks.remove(&task);
                    finished
                }
                Err(error) => match self.tasks.remove(&error.id()) {
                    Some(Target::Node(n)) => Finished::Step(
                        n,
                        Outcome::failed(0, format!("internal error: {error}")),
                        Duration::ZERO,
                    ),
                    Some(Target::Gate(f, batch)) => {
                        Finished::Gate(f, batch, Err(format!("internal error: {error}")))
                    }
                    Some(Target::Retry(group)) => Finished::Retry(group),
                    None => continue,
                },
            };
            match finished {
                Finished::Step(n, outcome, duration) => self.task_ended(n, &outcome, duration),
                Finished::Gate(f, batch, result) => self.gate_ended(f, batch, result),
                Finished::Retry(group) => self.retry_group(group),
            }
            self.act();
        }
        if self.rt.cancel.is_cancelled() {
            RunStatus::Interrupted
        } else if self.paused {
            RunStatus::Paused
        } else if self.failed_probes > 0 {
            RunStatus::Failed
        } else {
            match self.ended {
                Some(StepStatus::Succeeded | StepStatus::Skipped) => RunStatus::Succeeded,
                _ => RunStatus::Failed,
            }
        }
    }

    /// Whether starting a node spawns a task (and so counts against `max_parallel`).
    fn needs_task(&self, n: NodeIndex) -> bool {
        let node = &self.plan.graph[n];
        !(matches!(node.role, Role::CallEntry { .. } | Role::DynamicFanOut)
            || self.walk.group_skipped(node.scope))
    }

    /// Starts a node: a task, or a decision made here.
    async fn start(&mut self, n: NodeIndex) {
        self.walk.started(n);
        match self.decide_without_task(n).await {
            Decided::NeedsTask => match self.job(n) {
                Ok(job) => {
                    self.nodes[n.index()].status = StepStatus::Running;
                    self.show(n);
                    let task = self.spawn(n, job);
                    self.tasks.insert(task, Target::Node(n));
                }
                Err(failure) => {
                    self.finish(n, &Outcome::failed(0, failure.message), Duration::ZERO);
                }
            },
            Decided::Now(outcome) => self.finish(n, &outcome, Duration::ZERO),
            Decided::Later => {}
        }
    }

    /// A task ended: its outcome, or the pause or interrupt it reports.
    fn task_ended(&mut self, n: NodeIndex, outcome: &Outcome, duration: Duration) {
        if outcome.pause {
            self.paused = true;
            self.waiting.push(self.plan.graph[n].id.clone());
            self.walk.halt();
            self.walk.unstarted(n);
            self.nodes[n.index()].status = StepStatus::Pending;
            self.show(n);
            return;
        }
        if self.rt.cancel.is_cancelled() && outcome.status == StepStatus::Failed {
            // Stopped by an interrupt: not a failure. It stays in flight in the journal, so a
            // resume applies the in-flight rules (idempotent, check, confirmation).
            self.walk.halt();
            self.walk.unstarted(n);
            self.nodes[n.index()].status = StepStatus::Pending;
            self.show(n);
            self.rt.emit(Event::StepInterrupted {
                id: self.plan.graph[n].id.clone(),
                duration,
            });
            return;
        }
        self.finish(n, outcome, duration);
        if self.rt.cancel.is_cancelled() {
            self.walk.halt();
        }
    }

    /// Records a node's final status (durable before any dependent starts) and tells the walk.
    fn finish(&mut self, n: NodeIndex, outcome: &Outcome, duration: Duration) {
        // A read-only probe that failed in a rehearsal is shown failed; the rehearsal goes on
        // with what depends on it unknown, and ends failed.
        let probe_failed = self.rt.options.dry_run
            && outcome
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(super::rehearse::PROBE_FAILED));
        self.failed_probes += usize::from(probe_failed);
        let state = &mut self.nodes[n.index()];
        state.status = outcome.status;
        state.outputs.clone_from(&outcome.outputs);
        self.show(n);
        // Not a checkpoint of its own: the record shares the sync of the next step's start
        // (which a dependent must pass before its side effect), or is synced when the run goes
        // quiet. A sequential run pays one sync per step.
        self.rt.emit(Event::StepFinished {
            id: self.plan.graph[n].id.clone(),
            status: if probe_failed {
                StepStatus::Failed
            } else {
                outcome.status
            },
            attempts: outcome.attempts,
            duration,
            outputs: outcome.outputs.clone(),
            items: Vec::new(),
            reason: outcome.reason.clone(),
        });
        self.walk.ended(&self.plan, n, outcome.status);
    }

    /// Acts on what the walk reported: groups and fan-outs that ended, batches and gates.
    fn act(&mut self) {
        loop {
            let happenings = self.walk.happenings();
            if happenings.is_empty() {
                return;
            }
            for happening in happenings {
                match happening {
                    Happening::RunEnded { status } => self.ended = Some(status),
                    Happening::GroupEnded { group, status } => self.group_ended(group, status),
                    Happening::FanEnded { fan, status } => self.fan_ended(fan, status),
                    Happening::BatchStarted { fan, batch } => self.batch_started(fan, batch),
                    Happening::Gate { fan, batch } => self.check_gate(fan, batch),
                    Happening::GroupRetry { group, attempt } => {
                        self.group_failed_with_retries(group, attempt);
                    }
                }
            }
        }
    }

    /// A batch of a fan-out begins (shown when there are batches); the first one starts the
    /// fan-out's step.
    fn batch_started(&mut self, f: usize, batch: usize) {
        if batch == 0 && !self.rt.options.dry_run {
            self.fan_started(f);
        }
        let fan = self.walk.fan(f);
        if fan.batches().len() > 1 || fan.policy().gated {
            let items = fan.batches()[batch]
                .clone()
                .map(|i| self.item_key(self.walk.fan_items(f)[i]))
                .collect();
            let of = fan.batches().len();
            let id = self.fan_state(f).id.clone();
            self.rt.emit(Event::BatchStarted {
                id,
                batch: batch + 1,
                of,
                items,
            });
        }
    }

    /// The first batch of a fan-out begins: its step starts.
    fn fan_started(&mut self, f: usize) {
        let fan = self.walk.fan(f);
        let (items, batches) = (fan.len(), fan.batches().len());
        let mut description = format!("{items} item{}", if items == 1 { "" } else { "s" });
        if batches > 1 {
            let sizes: Vec<String> = fan.batches().iter().map(|b| b.len().to_string()).collect();
            let _ = write!(description, " in {batches} batches ({})", sizes.join(", "));
        }
        let id = self.fan_state(f).id.clone();
        self.began.insert(id.clone(), Instant::now());
        let name = self
            .walk
            .fan_items(f)
            .first()
            .and_then(|&n| self.plan.graph[n].step.name.clone());
        self.rt.emit(Event::StepStarted {
            attempt: self.rt.options.first_attempt(&id),
            id,
            name,
            description,
            polling: false,
        });
    }

    /// What an item is called: its host, or its value when short (else its position).
    fn item_key(&self, n: NodeIndex) -> String {
        let node = &self.plan.graph[n];
        let value = match &node.role {
            Role::Item { value, .. } => Some(value),
            Role::CallEntry { scope } => self.plan.scopes[*scope].item.as_ref().map(|(_, v)| v),
            Role::Step | Role::DynamicFanOut => None,
        };
        match (node.id.item_key(), value) {
            (Some(ItemKey::Index(i)), Some(value)) => match value {
                Value::String(s) if s.chars().count() <= 40 => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => format!("[{i}]"),
            },
            (Some(key), _) => key.to_string(),
            (None, _) => String::new(),
        }
    }

    /// The gate after a batch: shown in a rehearsal (and taken as holding), checked by a task
    /// otherwise.
    fn check_gate(&mut self, f: usize, batch: usize) {
        let Some(&first) = self.walk.fan_items(f).first() else {
            self.walk.gate_decided(&self.plan, f, true);
            return;
        };
        let step = Arc::clone(&self.plan.graph[first].step);
        let Some(gate) = step.fan.gate.clone() else {
            self.walk.gate_decided(&self.plan, f, true);
            return;
        };
        self.publish_summary(f);
        let id = self.fan_state(f).id.clone();
        let runbook = Arc::clone(self.plan.runbook_of(&self.plan.graph[first]));
        let job = Job {
            id: id.clone(),
            name: None,
            step: Arc::clone(&step),
            runbook,
            callers: self.callers(self.plan.graph[first].scope),
            context: self.context(first),
            limits: Limits::default(),
            host: None,
        };
        self.rt.emit(Event::GateStarted {
            id,
            batch: batch + 1,
            description: attempt::gate_description(&job, &gate),
        });
        if self.rt.options.dry_run {
            self.walk.gate_decided(&self.plan, f, true);
            return;
        }
        let rt = Arc::clone(&self.rt);
        let task = self
            .running
            .spawn(async move {
                let result = attempt::gate(&rt, &job, &gate).await;
                Finished::Gate(f, batch, result.map_err(|e| e.message))
            })
            .id();
        self.tasks.insert(task, Target::Gate(f, batch));
    }

    /// A gate was checked: the fan-out goes on, or fails with the gate's reason.
    fn gate_ended(&mut self, f: usize, batch: usize, result: Result<String, String>) {
        let id = self.fan_state(f).id.clone();
        let held = result.is_ok();
        let detail = match result {
            Ok(detail) => detail,
            Err(reason) => {
                self.fan_reasons.insert(
                    f,
                    format!("the gate after batch {} did not hold: {reason}", batch + 1),
                );
                reason
            }
        };
        if self.rt.cancel.is_cancelled() && !held {
            // Interrupted while checking: not a verdict; the walk is halted.
            self.walk.halt();
            return;
        }
        self.rt.emit(Event::GateEnded {
            id,
            batch: batch + 1,
            held,
            detail,
        });
        self.walk.gate_decided(&self.plan, f, held);
    }

    /// A call failed and has attempts left: after its retry delay, it runs again.
    fn group_failed_with_retries(&mut self, group: usize, attempt: u32) {
        let Some(entry) = self.walk.group_entry(group) else {
            return;
        };
        let step = Arc::clone(&self.plan.graph[entry].step);
        let delay = step
            .retry
            .as_ref()
            .map_or(Duration::ZERO, |r| r.delay_after(attempt));
        self.rt.emit(Event::Retrying {
            id: self.plan.graph[entry].id.clone(),
            attempt,
            error: "a step of the call failed".to_owned(),
            delay,
        });
        let cancel = self.rt.cancel.clone();
        let task = self
            .running
            .spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => {}
                }
                Finished::Retry(group)
            })
            .id();
        self.tasks.insert(task, Target::Retry(group));
    }

    /// A call runs again: its failed and not-yet-run steps start over.
    fn retry_group(&mut self, group: usize) {
        if self.rt.cancel.is_cancelled() {
            self.walk.halt();
            return;
        }
        let Some(entry) = self.walk.group_entry(group) else {
            return;
        };
        for n in self.walk.retry_group(&self.plan, group) {
            self.nodes[n.index()].status = StepStatus::Pending;
            self.nodes[n.index()].outputs.clear();
            self.show(n);
        }
        let node = &self.plan.graph[entry];
        self.rt.emit(Event::StepStarted {
            id: node.id.clone(),
            name: node.step.name.clone(),
            attempt: self.walk.group_attempt(group),
            description: format!(
                "call {} again",
                self.plan.runbook_of_scope(group).file.display_path()
            ),
            polling: false,
        });
    }

    /// A call's group ended: its call node takes the group's status. A call that an earlier
    /// process already recorded as ended is not recorded again.
    fn group_ended(&mut self, group: usize, status: StepStatus) {
        let Some(entry) = self.walk.group_entry(group) else {
            return;
        };
        let id = self.plan.graph[entry].id.clone();
        self.nodes[entry.index()].status = status;
        if let Some((f, position)) = self.walk.item_of(entry) {
            self.update_summary(f, position, status, &Map::new());
        }
        self.show(entry);
        let recorded_before = self
            .settled
            .get(&id)
            .is_some_and(|s| s.status == status && !s.record);
        if recorded_before {
            self.rt.emit(Event::Restored {
                id,
                status,
                reason: "done before this resume; not run again".to_owned(),
            });
            return;
        }
        let left_out = self.settled.get(&id).filter(|s| s.record);
        let reason = match status {
            StepStatus::Skipped if left_out.is_some() => left_out.map(|s| s.reason.clone()),
            StepStatus::Skipped => Some(format!(
                "`when: {}` is false",
                self.plan.graph[entry]
                    .step
                    .when
                    .as_ref()
                    .map_or("", |w| w.text.as_str())
            )),
            StepStatus::Failed => Some(match self.deadlines.get(&group) {
                Some((deadline, limit)) if Instant::now() >= *deadline => format!(
                    "its time limit ({}) passed",
                    crate::spec::duration::Human(*limit)
                ),
                _ if self.plan.scopes[group].block => "a step of the block failed".to_owned(),
                _ => "a step of the call failed".to_owned(),
            }),
            _ if self.rt.options.dry_run => Some("rehearsed".to_owned()),
            _ => None,
        };
        let duration = self
            .began
            .remove(&id)
            .map_or(Duration::ZERO, |t| t.elapsed());
        self.rt.emit(Event::StepFinished {
            id,
            status,
            attempts: self.walk.group_attempt(group),
            duration,
            outputs: Map::new(),
            items: Vec::new(),
            reason,
        });
    }

    /// A fan-out ended: the step it stands for is recorded with its items (unless it stopped
    /// before every item ran: then it stays pending for a resume).
    fn fan_ended(&mut self, f: usize, status: StepStatus) {
        let failed = self.walk.fan(f).failed();
        let total = self.walk.fan(f).len();
        let fan = self.fan_state(f).clone();
        let unknown = self
            .walk
            .fan_stand_in(f)
            .is_some_and(|n| self.unknown_fans.contains(&n));
        let cell = self.cells.get_mut(fan.slot);
        cell.status = status;
        // A rehearsal does not know the items of a list known only at run time: they read as
        // unknown, not as one invented item.
        cell.items = if unknown {
            minijinja::Value::from(format!("<steps.{}.items>", fan.id))
        } else {
            template::to_value(&fan.summary)
        };
        if let Some(stand_in) = self.walk.fan_stand_in(f) {
            self.nodes[stand_in.index()].status = status;
        }
        if status == StepStatus::Pending {
            return;
        }
        if self
            .settled
            .get(&fan.id)
            .is_some_and(|s| s.status == status)
        {
            return;
        }
        let rehearsed = self.rt.options.dry_run && status == StepStatus::Succeeded;
        let reason = self.fan_reasons.remove(&f).or_else(|| {
            (failed > 0).then(|| {
                if status == StepStatus::Failed {
                    format!("{failed} of {total} items failed")
                } else {
                    format!("{failed} of {total} items failed, within the step's failure budget")
                }
            })
        });
        let duration = self
            .began
            .remove(&fan.id)
            .map_or(Duration::ZERO, |t| t.elapsed());
        self.rt.emit(Event::StepFinished {
            attempts: self.rt.options.first_attempt(&fan.id),
            id: fan.id,
            status,
            duration,
            outputs: Map::new(),
            items: fan.summary,
            reason: if rehearsed {
                Some("rehearsed".to_owned())
            } else if status == StepStatus::Skipped {
                Some("every item was skipped".to_owned())
            } else {
                reason
            },
        });
    }

    fn update_summary(
        &mut self,
        f: usize,
        position: usize,
        status: StepStatus,
        outputs: &Map<String, Value>,
    ) {
        let fan = self.fan_state(f);
        if let Some(Value::Object(entry)) = fan.summary.get_mut(position) {
            entry.insert("status".to_owned(), Value::from(status.as_str()));
            entry.insert("outputs".to_owned(), Value::Object(outputs.clone()));
        }
    }

    /// Makes a running fan-out's `items` so far visible to templates (its gate's). Done at a
    /// batch's end, not at every item's: converting the whole list per item would make a wide
    /// fan-out quadratic. The fan-out's end publishes them all.
    fn publish_summary(&mut self, f: usize) {
        let fan = self.fan_state(f);
        let slot = fan.slot;
        let summary = template::to_value(&fan.summary);
        self.cells.get_mut(slot).items = summary;
    }

    /// Applies what an earlier process settled: those nodes count as ended, never run again.
    /// Call nodes are entered again (their params are needed; entering has no side effect).
    fn restore(&mut self) {
        if self.settled.is_empty() {
            return;
        }
        let settled = std::mem::take(&mut self.settled);
        // A fan-out settled as a whole: its items are settled with it, even those that failed
        // within its budget.
        let mut whole: HashMap<NodeId, StepStatus> = HashMap::new();
        for n in self.plan.graph.node_indices() {
            let node = &self.plan.graph[n];
            if let Some(fan) = node.id.fan_out()
                && let Some(done) = settled.get(&fan)
                && self.walk.item_of(n).is_some()
            {
                whole.insert(fan, done.status);
            }
        }
        for n in self.plan.order.clone() {
            let node = &self.plan.graph[n];
            if matches!(node.role, Role::CallEntry { .. }) {
                continue;
            }
            let in_whole = node.id.fan_out().filter(|f| whole.contains_key(f));
            let done = match settled.get(&node.id) {
                Some(done) => done.clone(),
                None if in_whole.is_some() => Settled {
                    status: StepStatus::Failed,
                    outputs: Map::new(),
                    items: Vec::new(),
                    reason: "its fan-out ended before this resume".to_owned(),
                    record: false,
                },
                None => continue,
            };
            self.restore_node(n, &done);
        }
        self.settled = settled;
    }

    fn restore_node(&mut self, n: NodeIndex, done: &Settled) {
        let state = &mut self.nodes[n.index()];
        state.status = done.status;
        state.outputs.clone_from(&done.outputs);
        if let Some((f, position)) = self.walk.item_of(n) {
            self.update_summary(f, position, done.status, &done.outputs);
        }
        self.show(n);
        if let Some(slot) = self.nodes[n.index()].slot
            && !done.items.is_empty()
        {
            self.cells.get_mut(slot).items = template::to_value(&done.items);
        }
        let id = self.plan.graph[n].id.clone();
        if done.record {
            // Decided as the run starts (left out by `--only`): recorded as its end.
            let outcome = Outcome::done(done.status, 0, Some(done.reason.clone()));
            self.finish(n, &outcome, Duration::ZERO);
            return;
        }
        if done.status == StepStatus::Failed && done.reason.starts_with("rejected") {
            // A manual step rejected at resume: recorded as the failure it is.
            let outcome = Outcome::failed(1, done.reason.clone());
            self.finish(n, &outcome, Duration::ZERO);
            return;
        }
        self.rt.emit(Event::Restored {
            id,
            status: done.status,
            reason: done.reason.clone(),
        });
        if self.plan.graph[n].role == Role::DynamicFanOut {
            // Its items are not expanded again: the fan-out ended as a whole.
            self.walk.started(n);
        }
        self.walk.ended(&self.plan, n, done.status);
    }

    /// Decides the nodes that need no task: steps of a skipped call, call nodes (entered:
    /// `when`, then the params of `with:`), fan-outs whose list is known only now.
    async fn decide_without_task(&mut self, n: NodeIndex) -> Decided {
        let node = &self.plan.graph[n];
        if self.walk.group_skipped(node.scope) {
            if let Role::CallEntry { scope } = node.role {
                self.walk.enter_group(&self.plan, scope, true);
                return Decided::Later;
            }
            let reason = if node.phase == Phase::Finally {
                "its call was skipped, so it never started"
            } else {
                "its call was skipped"
            };
            return Decided::Now(Outcome::done(
                StepStatus::Skipped,
                0,
                Some(reason.to_owned()),
            ));
        }
        match node.role {
            Role::CallEntry { scope } => {
                self.enter_call(n, scope).await;
                Decided::Later
            }
            Role::DynamicFanOut => match self.open_fan(n) {
                Ok(true) => Decided::Later,
                Ok(false) => Decided::Now(Outcome::done(
                    StepStatus::Skipped,
                    0,
                    Some("no hosts".to_owned()),
                )),
                Err(reason) => Decided::Now(Outcome::failed(0, reason)),
            },
            Role::Step | Role::Item { .. } => Decided::NeedsTask,
        }
    }

    /// Enters a call: its `when`, then its params, then (a destructive call on a terminal)
    /// a confirmation; its group's steps may start.
    async fn enter_call(&mut self, n: NodeIndex, scope: usize) {
        let step = Arc::clone(&self.plan.graph[n].step);
        let ctx = Scope::from_value(self.context(n));
        let id = self.plan.graph[n].id.clone();
        self.began.insert(id.clone(), Instant::now());
        self.nodes[n.index()].status = StepStatus::Running;
        self.show(n);
        if self.settled.get(&id).is_some_and(|s| s.record) {
            // Left out (`run --only`): its steps are skipped with it.
            self.walk.enter_group(&self.plan, scope, true);
            return;
        }
        let entered = match self.call_skipped(&step, &ctx) {
            Ok(true) => {
                self.walk.enter_group(&self.plan, scope, true);
                return;
            }
            Ok(false) => self.call_settings(&step, scope, &ctx),
            Err(e) => Err(e),
        };
        let (params, description) = match entered {
            Ok(entered) => entered,
            Err(failure) => {
                self.call_failed_to_enter(n, scope, failure.message);
                return;
            }
        };
        if let Err(reason) = self.announce_call(n, &step, description).await {
            self.call_failed_to_enter(n, scope, reason.to_owned());
            return;
        }
        self.param_values[scope] = template::to_value(&params);
        self.scope_params[scope] = Some(params);
        self.set_policies(scope);
        self.walk.enter_group(&self.plan, scope, false);
    }

    /// Whether a call's `when` is false (a rehearsal does not skip on values it does not know).
    fn call_skipped(
        &self,
        step: &crate::spec::Step,
        ctx: &Scope,
    ) -> Result<bool, super::step::Failure> {
        let Some(when) = &step.when else {
            return Ok(false);
        };
        let value = ctx.eval(when, "when")?;
        Ok(!value.is_true() && (!self.rt.options.dry_run || !ctx.reads_unknown(&when.text)))
    }

    /// What a call starts with: its group's params (a call's `with:` over the called runbook's
    /// defaults; a block's, those of the steps around it), its deadline and retries set; and
    /// how it reads.
    fn call_settings(
        &mut self,
        step: &crate::spec::Step,
        scope: usize,
        ctx: &Scope,
    ) -> Result<(Map<String, Value>, String), super::step::Failure> {
        let callee = Arc::clone(self.plan.runbook_of_scope(scope));
        let block = self.plan.scopes[scope].block;
        let mut params: Map<String, Value> = if block {
            let caller = self.plan.scopes[scope].caller.unwrap_or(0);
            self.scope_params[caller].clone().unwrap_or_default()
        } else {
            callee
                .params
                .iter()
                .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
                .collect()
        };
        let mut given = Map::new();
        for (name, value) in &self.plan.scopes[scope].with {
            let v = ctx.value(value, &format!("with.{name}"))?;
            given.insert(name.clone(), v.clone());
            params.insert(name.clone(), v);
        }
        if let Some(setting) = &step.timeout {
            let limit = settings::render_duration(setting, ctx, "timeout")?;
            self.deadlines
                .insert(scope, (Instant::now() + limit, limit));
        }
        if let Some(retry) = &step.retry {
            let attempts = settings::render_attempts(&retry.attempts, ctx)?;
            self.walk.set_retries(scope, attempts.saturating_sub(1));
        }
        let mut description = if block {
            format!("block of {} steps", callee.steps.len())
        } else {
            format!("call {}", callee.file.display_path())
        };
        if !given.is_empty() {
            let _ = write!(description, "\nwith {}", Value::Object(given));
        }
        Ok((params, description))
    }

    /// Shows a call in a rehearsal, or starts it (a destructive call is confirmed first); an
    /// error says why it may not start.
    async fn announce_call(
        &mut self,
        n: NodeIndex,
        step: &crate::spec::Step,
        description: String,
    ) -> Result<(), &'static str> {
        let id = self.plan.graph[n].id.clone();
        if self.rt.options.dry_run {
            self.rt.emit(Event::Rehearsed {
                id,
                name: step.name.clone(),
                description,
                marks: Marks {
                    destructive: step.destructive,
                    ..Marks::default()
                },
                notes: Vec::new(),
            });
            return Ok(());
        }
        // A call done before this resume is entered again for its params: nothing to confirm.
        if step.destructive && !self.settled.contains_key(&id) {
            let question = format!("DESTRUCTIVE step `{id}`:\n{description}\nRun it?");
            let confirmation = self.rt.confirm_destructive(&id, question).await;
            // The time a person takes to answer is not the group's: its time starts now.
            let waited = confirmation.waited;
            if let Some(began) = self.began.get_mut(&id) {
                *began += waited;
            }
            if waited.as_millis() > 0 {
                self.rt.emit(Event::Waited {
                    id: id.clone(),
                    waited,
                });
            }
            if let Some(reason) = confirmation.refused() {
                return Err(reason);
            }
        }
        if !self.settled.contains_key(&id) {
            self.rt.emit(Event::StepStarted {
                attempt: self.rt.options.first_attempt(&id),
                id,
                name: step.name.clone(),
                description,
                polling: false,
            });
        }
        Ok(())
    }

    fn call_failed_to_enter(&mut self, n: NodeIndex, scope: usize, reason: String) {
        self.nodes[n.index()].status = StepStatus::Failed;
        self.show(n);
        self.rt.emit(Event::StepFinished {
            id: self.plan.graph[n].id.clone(),
            status: StepStatus::Failed,
            attempts: 1,
            duration: Duration::ZERO,
            outputs: Map::new(),
            items: Vec::new(),
            reason: Some(reason),
        });
        // Recorded here with its reason; the group's end must not record it again.
        self.settled.insert(
            self.plan.graph[n].id.clone(),
            Settled {
                status: StepStatus::Failed,
                outputs: Map::new(),
                items: Vec::new(),
                reason: String::new(),
                record: false,
            },
        );
        self.walk.group_failed_to_enter(&self.plan, scope);
    }

    /// A fan-out whose list is known only now (`for_each` over outputs, `on:` hosts rendered
    /// now): evaluates it, adds one node per item, and hands them to the walk. `Ok(false)`:
    /// `on:` has no host, and the step is skipped.
    fn open_fan(&mut self, n: NodeIndex) -> Result<bool, String> {
        let node = self.plan.graph[n].clone();
        let scope = Scope::from_value(self.context(n));
        let (items, keys) = if let Some(fe) = &node.step.for_each {
            let items = self.list_of(&scope, &fe.items)?;
            if matches!(items.as_slice(), [Value::String(s)] if s.starts_with("<each item of")) {
                self.unknown_fans.insert(n);
            }
            let keys: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
            (items, keys)
        } else {
            let items = match node.step.on.as_ref().map(|on| &on.targets) {
                Some(OnTargets::One(t)) => match scope.typed(t, "on").map_err(|e| e.message)? {
                    Value::Array(items) => items,
                    one => vec![one],
                },
                Some(OnTargets::List(values)) => match scope
                    .value(&crate::spec::Value::List(values.clone()), "on")
                    .map_err(|e| e.message)?
                {
                    Value::Array(items) => items,
                    one => vec![one],
                },
                None => return Err("a fan-out needs `for_each` or `on:` a list".to_owned()),
            };
            if items.is_empty() {
                return Ok(false);
            }
            if let [Value::String(s)] = items.as_slice()
                && self.rt.options.dry_run
                && s.contains("<steps.")
            {
                // The hosts come from a step that only runs for real: one stand-in item.
                self.unknown_fans.insert(n);
                (
                    vec![Value::String(format!("<each host of {s}>"))],
                    vec!["*".to_owned()],
                )
            } else {
                let keys = crate::plan::hosts::keys_of(&items)?;
                (items, keys)
            }
        };
        let by_host = node.step.for_each.is_none();
        let first_new = self.plan.graph.node_count();
        let mut nodes = Vec::with_capacity(items.len());
        for (index, (value, key)) in items.into_iter().zip(&keys).enumerate() {
            let id = if by_host && key == "*" {
                node.id.item(ItemKey::Any)
            } else if by_host {
                node.id.item(ItemKey::Host(key))
            } else {
                node.id.item(ItemKey::Index(index))
            };
            let item = if self.plan.callees.contains_key(&n) {
                // One call of the runbook per item, with everything in it.
                let name = node
                    .step
                    .for_each
                    .as_ref()
                    .map_or_else(|| "item".to_owned(), |f| f.as_name.clone());
                crate::plan::build::add_call_item(&mut self.plan, n, &id, (name, value)).map_err(
                    |d| {
                        d.first().map_or_else(
                            || "the called runbook could not be added".to_owned(),
                            |d| d.message.clone(),
                        )
                    },
                )?
            } else {
                self.plan.graph.add_node(PlanNode {
                    id,
                    local_id: node.local_id.clone(),
                    scope: node.scope,
                    step: Arc::clone(&node.step),
                    role: Role::Item { index, value },
                    phase: node.phase,
                })
            };
            nodes.push(item);
        }
        let policy = settings::policy(&node.step, nodes.len(), &scope).map_err(|e| e.message)?;
        let f = self.walk.open_fan(&self.plan, n, &nodes, policy);
        self.take_in_nodes();
        let slot = self.fan_state(f).slot;
        self.nodes[n.index()].slot = Some(slot);
        self.nodes[n.index()].status = StepStatus::Running;
        self.show(n);
        // What an earlier process settled is not run again: items, and the steps inside a
        // fanned-out call's items (call nodes themselves are entered again).
        for new in (first_new..self.plan.graph.node_count()).map(NodeIndex::new) {
            if matches!(self.plan.graph[new].role, Role::CallEntry { .. }) {
                continue;
            }
            if let Some(done) = self.settled.get(&self.plan.graph[new].id).cloned()
                && done.status != StepStatus::Failed
            {
                self.restore_node(new, &done);
            }
        }
        Ok(true)
    }

    /// A `for_each` list, evaluated now.
    fn list_of(&self, scope: &Scope, items: &ForEachItems) -> Result<Vec<Value>, String> {
        let list = match items {
            ForEachItems::Expr(e) => scope.eval(e, "for_each").and_then(|v| {
                template::to_json_value(&v).map_err(|e| super::step::Failure::new(e.to_string()))
            }),
            ForEachItems::List(values) => {
                scope.value(&crate::spec::Value::List(values.clone()), "for_each")
            }
        };
        match list {
            Ok(Value::Array(items)) => Ok(items),
            Ok(Value::String(s)) if self.rt.options.dry_run && s.contains("<steps.") => {
                Ok(vec![Value::String(format!("<each item of {s}>"))])
            }
            Ok(other) => Err(format!("`for_each` must be a list, got {other}")),
            Err(e) => Err(e.message),
        }
    }

    /// Renders the policies of the fan-outs the plan expanded in a group (as it is entered);
    /// one that does not render fails its fan-out.
    fn set_policies(&mut self, group: usize) {
        for f in self.walk.fans_in(group) {
            let Some(&first) = self.walk.fan_items(f).first() else {
                continue;
            };
            let scope = Scope::from_value(self.context(first));
            let step = Arc::clone(&self.plan.graph[first].step);
            match settings::policy(&step, self.walk.fan(f).len(), &scope) {
                Ok(policy) => self.walk.set_policy(f, policy),
                Err(failure) => {
                    self.fan_reasons.insert(f, failure.message);
                    self.walk.fail_fan(&self.plan, f);
                }
            }
        }
    }

    /// Everything a node's task needs: its context (with `host`), its rendered limits, its
    /// host.
    fn job(&self, n: NodeIndex) -> Result<Job, super::step::Failure> {
        let node = &self.plan.graph[n];
        let context = self.context(n);
        let scope = Scope::from_value(context.clone());
        let runbook = Arc::clone(self.plan.runbook_of(node));
        let callers = self.callers(node.scope);
        let host = match self.host_spec(n, &scope)? {
            Some(spec) => Some(hosts::resolve(
                &spec,
                &attempt::runbooks(&runbook, &callers),
                &scope,
            )?),
            None => None,
        };
        let context = match &host {
            Some(h) => context::extend(&context, "host", minijinja::Value::from(h.key.as_str())),
            None => context,
        };
        let scope = Scope::from_value(context.clone());
        let mut limits = Limits::of(&node.step, &runbook, &scope)?;
        // A call's `finally` runs after its time is up, whatever the limit: it cleans up.
        if node.phase == Phase::Main
            && let Some((deadline, limit, group)) = self.deadline_of(node.scope)
        {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(super::step::Failure::new(format!(
                    "the time limit of `{group}` ({}) passed before it started",
                    crate::spec::duration::Human(limit)
                )));
            }
            limits = limits.within(remaining);
        }
        Ok(Job {
            id: node.id.clone(),
            name: rendered_name(&node.step, &scope),
            step: Arc::clone(&node.step),
            runbook,
            callers,
            context,
            limits,
            host,
        })
    }

    /// The earliest deadline of the calls a scope is inside (its own first), with its limit and
    /// the call's id.
    fn deadline_of(&self, scope: usize) -> Option<(Instant, Duration, NodeId)> {
        let mut found: Option<(Instant, Duration, NodeId)> = None;
        let mut at = Some(scope);
        while let Some(s) = at {
            if let Some(&(deadline, limit)) = self.deadlines.get(&s)
                && found.as_ref().is_none_or(|(d, _, _)| deadline < *d)
            {
                let id = self.plan.scopes[s]
                    .group
                    .clone()
                    .unwrap_or_else(|| NodeId::step("run"));
                found = Some((deadline, limit, id));
            }
            at = self.plan.scopes[s].caller;
        }
        found
    }

    /// The host a node runs on, as `on:` gives it: the node's item of an `on:` list, or its
    /// `on:` rendered (one host).
    fn host_spec(
        &self,
        n: NodeIndex,
        scope: &Scope,
    ) -> Result<Option<Value>, super::step::Failure> {
        let node = &self.plan.graph[n];
        let Some(on) = &node.step.on else {
            return Ok(None);
        };
        if let (Role::Item { value, .. }, None) = (&node.role, &node.step.for_each) {
            return Ok(Some(value.clone()));
        }
        match &on.targets {
            OnTargets::One(t) => match scope.typed(t, "on")? {
                Value::Array(items) if items.len() == 1 => Ok(items.into_iter().next()),
                Value::Array(items) => Err(super::step::Failure::new(format!(
                    "`on:` renders to {} hosts here; inside `for_each`, each item runs on one host (`on: \"{{{{ item }}}}\"`)",
                    items.len()
                ))),
                spec => Ok(Some(spec)),
            },
            OnTargets::List(_) => Err(super::step::Failure::new(
                "`on:` a list of hosts is its own fan-out; with `for_each`, give each item its host (`on: \"{{ item }}\"`)",
            )),
        }
    }

    /// The runbooks that called a scope's runbook, innermost first (whose hosts and
    /// `defaults.ssh` its steps inherit).
    fn callers(&self, scope: usize) -> Vec<Arc<crate::spec::Runbook>> {
        let mut chain = Vec::new();
        let mut at = self.plan.scopes[scope].caller;
        while let Some(s) = at {
            chain.push(Arc::clone(self.plan.runbook_of_scope(s)));
            at = self.plan.scopes[s].caller;
        }
        chain
    }

    fn spawn(&mut self, n: NodeIndex, job: Job) -> tokio::task::Id {
        let rt = Arc::clone(&self.rt);
        self.running
            .spawn(async move {
                let started = Instant::now();
                let outcome = attempt::run(&rt, &job).await;
                // Waiting for a person is not the step's time.
                let worked = started.elapsed().saturating_sub(outcome.waited);
                Finished::Step(n, outcome, worked)
            })
            .id()
    }

    /// Makes a node's state visible to templates (and, for an item, its fan-out's `items`).
    /// The snapshot is copied only while a running step still holds the previous one.
    fn show(&mut self, n: NodeIndex) {
        if let Some((f, position)) = self.walk.item_of(n) {
            let state = &self.nodes[n.index()];
            let (status, outputs) = (state.status, state.outputs.clone());
            if status != StepStatus::Running {
                self.update_summary(f, position, status, &outputs);
            }
            let slot = self.fan_state(f).slot;
            let cell = self.cells.get_mut(slot);
            if cell.status == StepStatus::Pending {
                cell.status = StepStatus::Running;
            }
            return;
        }
        let state = &self.nodes[n.index()];
        let Some(slot) = state.slot else {
            return;
        };
        let cell = self.cells.get_mut(slot);
        cell.status = state.status;
        cell.outputs = template::to_value(&state.outputs);
    }

    /// The template context of a node: params, secrets, env, steps of its scope, run, its item.
    /// Built in constant time: `steps` is a snapshot read lazily.
    fn context(&self, n: NodeIndex) -> minijinja::Value {
        let node = &self.plan.graph[n];
        let run_status = match node.phase {
            Phase::Main => RunStatus::Running,
            // A `finally` reports on its own group: the run, or a call's procedure.
            Phase::Finally => match self.walk.group_status(node.scope) {
                StepStatus::Failed => RunStatus::Failed,
                _ => RunStatus::Succeeded,
            },
        };
        let steps = StepsView {
            layout: Arc::clone(&self.layout),
            cells: self.cells.clone(),
            scope: node.scope,
        };
        let run = minijinja::Value::from_pairs([
            ("id", self.rt.options.run_id.as_str()),
            ("name", self.plan.root().name.as_str()),
            ("status", run_status.as_str()),
        ]);
        let ctx = minijinja::Value::from_pairs([
            ("params", self.param_values[node.scope].clone()),
            ("secrets", self.secrets.clone()),
            ("env", self.env.clone()),
            ("steps", minijinja::Value::from_object(steps)),
            ("run", run),
        ]);
        // The items of the fanned-out blocks around the node (outermost first).
        let mut blocks = Vec::new();
        let mut at = Some(node.scope);
        while let Some(s) = at.filter(|&s| self.plan.scopes[s].block) {
            blocks.extend(self.plan.scopes[s].item.as_ref());
            at = self.plan.scopes[s].caller;
        }
        let ctx = blocks.into_iter().rev().fold(ctx, |ctx, (name, value)| {
            context::extend(&ctx, name, template::to_value(value))
        });
        let item = match (&node.role, &node.step.for_each) {
            (Role::Item { value, .. }, Some(fe)) => Some((fe.as_name.as_str(), value)),
            (Role::CallEntry { scope }, _) => self.plan.scopes[*scope]
                .item
                .as_ref()
                .map(|(name, value)| (name.as_str(), value)),
            _ => None,
        };
        match item {
            Some((name, value)) => context::extend(&ctx, name, template::to_value(value)),
            None => ctx,
        }
    }
}

/// A step's `name` rendered (as written when it does not render: a title is not worth failing
/// a step for).
fn rendered_name(step: &crate::spec::Step, scope: &Scope) -> Option<String> {
    let name = step.name.as_ref()?;
    if !name.contains("{{") {
        return Some(name.clone());
    }
    let template = crate::spec::Template {
        text: name.clone(),
        span: step.id_span,
    };
    Some(
        scope
            .text(&template, "name")
            .unwrap_or_else(|_| name.clone()),
    )
}

/// The value of an item node (`{item}` in `steps.X.items`).
fn item_value(plan: &Plan, n: NodeIndex) -> Value {
    match &plan.graph[n].role {
        Role::Item { value, .. } => value.clone(),
        Role::CallEntry { scope } => plan.scopes[*scope]
            .item
            .as_ref()
            .map_or(Value::Null, |(_, v)| v.clone()),
        Role::Step | Role::DynamicFanOut => Value::Null,
    }
}
