//! The scheduler: runs a plan's graph with bounded parallelism, stops new work after a failure,
//! then runs `finally`. It owns all run state; step tasks only report back their outcome.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::attempt::{self, Job, Outcome};
use super::context::{self, Cell, Cells, Layout, StepsView};
use super::event::{Event, RunStatus, StepStatus};
use super::render::Scope;
use super::runtime::Runtime;
use super::secrets::Secrets;
use crate::plan::{ItemKey, NodeId, Phase, Plan, Role};
use crate::spec::ForEachItems;
use crate::template;

/// What is known of one node.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// Its status.
    pub status: StepStatus,
    /// Its outputs.
    pub outputs: Map<String, Value>,
    /// Items of a fan-out expanded at run time: `{item, status, outputs}`.
    pub items: Vec<Value>,
}

/// A step an earlier process of the same run already settled (what a resume starts from).
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// succeeded or skipped (never run again), or failed (a rejected manual step).
    pub status: StepStatus,
    /// Its outputs, for later templates.
    pub outputs: Map<String, Value>,
    /// Items of a fan-out expanded at run time.
    pub items: Vec<Value>,
    /// Shown to the operator.
    pub reason: String,
}

/// Node id → what is settled; ids of run-time fan-out items (`x[2]`) included.
pub type SettledSteps = HashMap<NodeId, Settled>;

/// Runs a plan to its end; returns the run's status.
pub async fn execute(plan: Arc<Plan>, secrets: &Secrets, rt: Arc<Runtime>) -> RunStatus {
    resume(plan, secrets, rt, SettledSteps::new()).await
}

/// Runs what is left of a plan: settled main steps are never run again; `finally` always runs.
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
    let mut run = Scheduler::new(Arc::clone(&plan), secrets, Arc::clone(&rt));
    run.settled = Arc::new(settled);
    let main = run.phase(Phase::Main).await;
    let status = match main {
        PhaseEnd::Paused => RunStatus::Paused,
        PhaseEnd::Interrupted => RunStatus::Interrupted,
        PhaseEnd::Failed => RunStatus::Failed,
        PhaseEnd::Done => RunStatus::Succeeded,
    };
    let status = if matches!(status, RunStatus::Paused | RunStatus::Interrupted) {
        status
    } else {
        run.run_status = status;
        match run.phase(Phase::Finally).await {
            PhaseEnd::Interrupted => RunStatus::Interrupted,
            PhaseEnd::Failed | PhaseEnd::Paused => RunStatus::Failed,
            PhaseEnd::Done => status,
        }
    };
    rt.checkpoint(Event::RunFinished {
        status,
        duration: started.elapsed(),
    })
    .await;
    status
}

/// The state of one phase's walk over the graph: what waits, what is ready, how it is going.
struct Frontier {
    /// The phase's nodes in plan order.
    nodes: Vec<NodeIndex>,
    /// Dependencies each node still waits for.
    waiting: HashMap<NodeIndex, usize>,
    /// Nodes whose dependencies are all satisfied, by index (plan order among equals).
    ready: BTreeSet<usize>,
    phase: Phase,
    failed: bool,
    paused: bool,
    /// No new step starts (a failure in the main phase, a pause, an interrupt).
    stopping: bool,
}

impl Frontier {
    fn new(plan: &Plan, phase: Phase) -> Self {
        let nodes: Vec<NodeIndex> = plan
            .order
            .iter()
            .copied()
            .filter(|&n| plan.graph[n].phase == phase)
            .collect();
        let waiting: HashMap<NodeIndex, usize> = nodes
            .iter()
            .map(|&n| {
                (
                    n,
                    plan.graph
                        .neighbors_directed(n, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let ready = nodes
            .iter()
            .filter(|n| waiting[n] == 0)
            .map(|n| n.index())
            .collect();
        Self {
            nodes,
            waiting,
            ready,
            phase,
            failed: false,
            paused: false,
            stopping: false,
        }
    }

    /// A node is done: its dependents may become ready. A failure stops new work in the main
    /// phase, unless the step allows it; in `finally` the other steps still run.
    fn release(&mut self, plan: &Plan, n: NodeIndex, outcome: &Outcome) {
        if outcome.status == StepStatus::Failed && !plan.graph[n].step.allow_failure {
            self.failed = true;
            if self.phase == Phase::Main {
                self.stopping = true;
                return;
            }
        }
        for d in plan.graph.neighbors_directed(n, Direction::Outgoing) {
            if let Some(w) = self.waiting.get_mut(&d) {
                *w = w.saturating_sub(1);
                if *w == 0 {
                    self.ready.insert(d.index());
                }
            }
        }
    }
}

enum PhaseEnd {
    Done,
    Failed,
    Paused,
    Interrupted,
}

struct Scheduler {
    plan: Arc<Plan>,
    rt: Arc<Runtime>,
    secrets: minijinja::Value,
    env: minijinja::Value,
    state: Vec<NodeState>,
    /// What templates read of `state`, kept in step with it by [`Scheduler::record`].
    cells: Cells,
    layout: Arc<Layout>,
    scope_params: Vec<Option<Map<String, Value>>>,
    /// `scope_params` as template values (converted once per scope).
    param_values: Vec<minijinja::Value>,
    skipped_scopes: Vec<bool>,
    run_status: RunStatus,
    /// What an earlier process settled (resume).
    settled: Arc<SettledSteps>,
}

type Finished = (NodeIndex, Outcome, Vec<Value>, Duration);

impl Scheduler {
    fn new(plan: Arc<Plan>, secrets: &Secrets, rt: Arc<Runtime>) -> Self {
        let mut scope_params = vec![None; plan.scopes.len()];
        scope_params[0] = Some(plan.params.clone());
        let state = plan
            .graph
            .node_indices()
            .map(|_| NodeState {
                status: StepStatus::Pending,
                outputs: Map::new(),
                items: Vec::new(),
            })
            .collect();
        let mut param_values = vec![template::to_value(&Map::new()); plan.scopes.len()];
        param_values[0] = template::to_value(&plan.params);
        Self {
            skipped_scopes: vec![false; plan.scopes.len()],
            secrets: template::to_value(&secrets.as_map()),
            env: template::to_value(&std::env::vars().collect::<BTreeMap<String, String>>()),
            cells: Arc::new(vec![Cell::pending(); plan.graph.node_count()]),
            layout: Arc::new(Layout::new(Arc::clone(&plan))),
            state,
            scope_params,
            param_values,
            run_status: RunStatus::Running,
            settled: Arc::new(SettledSteps::new()),
            plan,
            rt,
        }
    }

    async fn phase(&mut self, phase: Phase) -> PhaseEnd {
        let mut front = Frontier::new(&self.plan, phase);
        let mut running: JoinSet<Finished> = JoinSet::new();
        // Which node each task runs: a task that panics is that node's failure.
        let mut tasks: HashMap<tokio::task::Id, NodeIndex> = HashMap::new();
        let mut per_group: HashMap<(usize, String), usize> = HashMap::new();
        let limit = self.rt.options.max_parallel.max(1);
        if phase == Phase::Main {
            self.restore(&mut front);
        }
        loop {
            while !front.stopping && running.len() < limit {
                let Some(next) = front
                    .ready
                    .iter()
                    .copied()
                    .find(|&i| self.group_has_room(NodeIndex::new(i), &per_group))
                else {
                    break;
                };
                front.ready.remove(&next);
                let n = NodeIndex::new(next);
                if let Some(outcome) = self.settle_without_running(n) {
                    self.conclude_settled(n, &outcome);
                    front.release(&self.plan, n, &outcome);
                    continue;
                }
                *per_group.entry(self.group(n)).or_default() += 1;
                self.state[n.index()].status = StepStatus::Running;
                self.record(n);
                let task = self.spawn(n, &mut running);
                tasks.insert(task, n);
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let (n, outcome, items, duration) = match joined {
                Ok((task, finished)) => {
                    tasks.remove(&task);
                    finished
                }
                Err(error) => {
                    let Some(n) = tasks.remove(&error.id()) else {
                        continue;
                    };
                    let failure = Outcome {
                        status: StepStatus::Failed,
                        attempts: 0,
                        outputs: Map::new(),
                        reason: Some(format!("internal error: {error}")),
                        pause: false,
                    };
                    (n, failure, Vec::new(), Duration::ZERO)
                }
            };
            if let Some(count) = per_group.get_mut(&self.group(n)) {
                *count -= 1;
            }
            if outcome.pause {
                front.paused = true;
                front.stopping = true;
                self.state[n.index()].status = StepStatus::Pending;
                self.record(n);
                continue;
            }
            if self.rt.cancel.is_cancelled() && outcome.status == StepStatus::Failed {
                // Stopped by an interrupt: not a failure. It stays in flight in the journal, so a
                // resume applies the in-flight rules (idempotent, check, confirmation).
                self.state[n.index()].status = StepStatus::Pending;
                self.record(n);
                self.rt.emit(Event::StepInterrupted {
                    id: self.plan.graph[n].id.clone(),
                    duration,
                });
                front.stopping = true;
                continue;
            }
            self.finish(n, &outcome, items, duration);
            front.release(&self.plan, n, &outcome);
            if self.rt.cancel.is_cancelled() {
                front.stopping = true;
            }
        }
        if self.rt.cancel.is_cancelled() {
            PhaseEnd::Interrupted
        } else if front.paused {
            PhaseEnd::Paused
        } else if front.failed {
            PhaseEnd::Failed
        } else {
            PhaseEnd::Done
        }
    }

    /// Records a node decided without a task. A call entered before a resume is entered again
    /// (its params are set anew, no side effect) but not recorded a second time.
    fn conclude_settled(&mut self, n: NodeIndex, outcome: &Outcome) {
        let id = &self.plan.graph[n].id;
        let entered_before = outcome.status == StepStatus::Succeeded
            && self
                .settled
                .get(id)
                .is_some_and(|s| s.status == StepStatus::Succeeded);
        if !entered_before {
            self.finish(n, outcome, Vec::new(), Duration::ZERO);
            return;
        }
        self.rt.emit(Event::Restored {
            id: id.clone(),
            status: StepStatus::Succeeded,
            reason: "entered before this resume".to_owned(),
        });
        self.state[n.index()].status = StepStatus::Succeeded;
        self.record(n);
    }

    fn group(&self, n: NodeIndex) -> (usize, String) {
        let node = &self.plan.graph[n];
        (node.scope, node.local_id.clone())
    }

    fn group_has_room(&self, n: NodeIndex, per_group: &HashMap<(usize, String), usize>) -> bool {
        let node = &self.plan.graph[n];
        let limit = match node.role {
            Role::Item { .. } => node.step.for_each.as_ref().and_then(|f| f.max_parallel),
            _ => None,
        };
        limit.is_none_or(|l| per_group.get(&self.group(n)).copied().unwrap_or(0) < l)
    }

    /// Nodes decided without a task: steps of a skipped call, and call entries.
    fn settle_without_running(&mut self, n: NodeIndex) -> Option<Outcome> {
        let node = &self.plan.graph[n];
        let outcome = |status, reason: Option<String>| Outcome {
            status,
            attempts: 0,
            outputs: Map::new(),
            reason,
            pause: false,
        };
        if self.skipped_scopes[node.scope] {
            if let Role::CallEntry { scope } = node.role {
                self.skipped_scopes[scope] = true;
            }
            return Some(outcome(
                StepStatus::Skipped,
                Some("its call was skipped".to_owned()),
            ));
        }
        if node.phase == Phase::Finally && self.scope_params[node.scope].is_none() {
            // The `finally` of a called runbook whose call never started has nothing to undo.
            return Some(outcome(
                StepStatus::Skipped,
                Some("its call never started".to_owned()),
            ));
        }
        let Role::CallEntry { scope } = node.role else {
            return None;
        };
        let ctx = Scope::from_value(self.context(n));
        if let Some(when) = &node.step.when {
            match ctx.eval(when, "when") {
                Ok(v)
                    if !v.is_true()
                        && (!self.rt.options.dry_run || !ctx.reads_unknown(&when.text)) =>
                {
                    self.skipped_scopes[scope] = true;
                    return Some(outcome(
                        StepStatus::Skipped,
                        Some(format!("`when: {}` is false", when.text)),
                    ));
                }
                Err(e) => return Some(outcome(StepStatus::Failed, Some(e.message))),
                Ok(_) => {}
            }
        }
        let callee = &self.plan.runbooks[self.plan.scopes[scope].runbook];
        let mut params: Map<String, Value> = callee
            .params
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
            .collect();
        for (name, value) in &self.plan.scopes[scope].with {
            match ctx.value(value, &format!("with.{name}")) {
                Ok(v) => {
                    params.insert(name.clone(), v);
                }
                Err(e) => {
                    return Some(outcome(StepStatus::Failed, Some(e.message)));
                }
            }
        }
        self.param_values[scope] = template::to_value(&params);
        self.scope_params[scope] = Some(params);
        Some(outcome(StepStatus::Succeeded, None))
    }

    /// Records a final status; it is durable before any dependent starts.
    fn finish(&mut self, n: NodeIndex, outcome: &Outcome, items: Vec<Value>, duration: Duration) {
        let state = &mut self.state[n.index()];
        state.status = outcome.status;
        state.outputs.clone_from(&outcome.outputs);
        state.items.clone_from(&items);
        self.record(n);
        // Not a checkpoint of its own: the record shares the sync of the next step's start
        // (which a dependent must pass before its side effect), or is synced when the run goes
        // quiet. A sequential run pays one sync per step.
        self.rt.emit(Event::StepFinished {
            id: self.plan.graph[n].id.clone(),
            status: outcome.status,
            attempts: outcome.attempts,
            duration,
            outputs: outcome.outputs.clone(),
            items,
            reason: outcome.reason.clone(),
        });
    }

    /// Applies what an earlier process settled: those main steps count as finished.
    fn restore(&mut self, front: &mut Frontier) {
        if self.settled.is_empty() {
            return;
        }
        let settled = Arc::clone(&self.settled);
        for n in front.nodes.clone() {
            let node = &self.plan.graph[n];
            if matches!(node.role, Role::CallEntry { .. }) {
                continue;
            }
            let Some(done) = settled.get(&node.id) else {
                continue;
            };
            front.ready.remove(&n.index());
            front.waiting.remove(&n);
            let state = &mut self.state[n.index()];
            state.status = done.status;
            state.outputs.clone_from(&done.outputs);
            state.items.clone_from(&done.items);
            self.record(n);
            let outcome = Outcome {
                status: done.status,
                attempts: 1,
                outputs: Map::new(),
                reason: Some(done.reason.clone()),
                pause: false,
            };
            if done.status == StepStatus::Failed {
                // A manual step rejected at resume: recorded as the failure it is.
                self.finish(n, &outcome, Vec::new(), Duration::ZERO);
            } else {
                self.rt.emit(Event::Restored {
                    id: self.plan.graph[n].id.clone(),
                    status: done.status,
                    reason: done.reason.clone(),
                });
            }
            front.release(&self.plan, n, &outcome);
        }
    }

    fn spawn(&self, n: NodeIndex, running: &mut JoinSet<Finished>) -> tokio::task::Id {
        let node = &self.plan.graph[n];
        let job = Job {
            id: node.id.clone(),
            step: Arc::clone(&node.step),
            runbook: Arc::clone(&self.plan.runbooks[self.plan.scopes[node.scope].runbook]),
            context: self.context(n),
        };
        let rt = Arc::clone(&self.rt);
        let dynamic = node.role == Role::DynamicFanOut;
        let settled = Arc::clone(&self.settled);
        running
            .spawn(async move {
                let started = Instant::now();
                if dynamic {
                    let (outcome, items) = fan_out(&rt, job, &settled).await;
                    (n, outcome, items, started.elapsed())
                } else {
                    let outcome = attempt::run(&rt, &job).await;
                    (n, outcome, Vec::new(), started.elapsed())
                }
            })
            .id()
    }

    /// Makes a node's state visible to templates. The snapshot is copied only while a running
    /// step still holds the previous one.
    fn record(&mut self, n: NodeIndex) {
        let state = &self.state[n.index()];
        Arc::make_mut(&mut self.cells)[n.index()] = Cell {
            status: state.status,
            outputs: template::to_value(&state.outputs),
            items: template::to_value(&state.items),
        };
    }

    /// The template context of a node: params, secrets, env, steps of its scope, run, its item.
    /// Built in constant time: `steps` is a snapshot read lazily.
    fn context(&self, n: NodeIndex) -> minijinja::Value {
        let node = &self.plan.graph[n];
        let run_status = match node.phase {
            Phase::Main => RunStatus::Running,
            Phase::Finally if node.scope == 0 => self.run_status,
            // A called runbook's `finally` reports on its own procedure: it succeeded when all of
            // its steps did, whatever happened elsewhere in the run.
            Phase::Finally => {
                let all_done = self.layout.members(node.scope).iter().all(|m| {
                    matches!(
                        self.state[m.index()].status,
                        StepStatus::Succeeded | StepStatus::Skipped
                    )
                });
                if all_done {
                    RunStatus::Succeeded
                } else {
                    RunStatus::Failed
                }
            }
        };
        let steps = StepsView {
            layout: Arc::clone(&self.layout),
            cells: Arc::clone(&self.cells),
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

/// A `for_each` whose list is known only now: evaluate it, then run the items.
#[expect(
    clippy::too_many_lines,
    reason = "being rewritten: fan-out moves beside the scheduler"
)]
async fn fan_out(rt: &Arc<Runtime>, job: Job, settled: &SettledSteps) -> (Outcome, Vec<Value>) {
    let failed = |reason: String| {
        (
            Outcome {
                status: StepStatus::Failed,
                attempts: 0,
                outputs: Map::new(),
                reason: Some(reason),
                pause: false,
            },
            Vec::new(),
        )
    };
    let Some(fe) = job.step.for_each.clone() else {
        return failed("not a for_each step".to_owned());
    };
    let scope = Scope::from_value(job.context.clone());
    let list = match &fe.items {
        ForEachItems::Expr(e) => scope.eval(e, "for_each").and_then(|v| {
            crate::template::to_json_value(&v).map_err(|e| super::step::Failure::new(e.to_string()))
        }),
        ForEachItems::List(values) => {
            scope.value(&super::super::spec::Value::List(values.clone()), "for_each")
        }
    };
    let items = match list {
        Ok(Value::Array(items)) => items,
        Ok(Value::String(s)) if rt.options.dry_run && s.contains("<steps.") => {
            vec![Value::String(format!("<each item of {s}>"))]
        }
        Ok(other) => return failed(format!("`for_each` must be a list, got {other}")),
        Err(e) => return failed(e.message),
    };
    let limit = fe.max_parallel.unwrap_or(usize::MAX).max(1);
    let job = Arc::new(job);
    let mut results: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut running: JoinSet<(usize, Outcome)> = JoinSet::new();
    let mut next = 0;
    let mut stop = false;
    while next < items.len() || !running.is_empty() {
        while !stop && next < items.len() && running.len() < limit {
            let item_id = job.id.item(ItemKey::Index(next));
            if let Some(done) = settled
                .get(&item_id)
                .filter(|d| d.status != StepStatus::Failed)
            {
                rt.emit(Event::Restored {
                    id: item_id,
                    status: done.status,
                    reason: done.reason.clone(),
                });
                results[next] = Some(Outcome {
                    status: done.status,
                    attempts: 0,
                    outputs: done.outputs.clone(),
                    reason: Some(done.reason.clone()),
                    pause: false,
                });
                next += 1;
                continue;
            }
            let context =
                context::extend(&job.context, &fe.as_name, template::to_value(&items[next]));
            let item_job = Job {
                id: item_id,
                step: Arc::clone(&job.step),
                runbook: Arc::clone(&job.runbook),
                context,
            };
            let rt = Arc::clone(rt);
            let index = next;
            running.spawn(async move {
                let started = Instant::now();
                let outcome = attempt::run(&rt, &item_job).await;
                if rt.cancel.is_cancelled() && outcome.status == StepStatus::Failed {
                    rt.emit(Event::StepInterrupted {
                        id: item_job.id.clone(),
                        duration: started.elapsed(),
                    });
                } else if !outcome.pause {
                    rt.emit(Event::StepFinished {
                        id: item_job.id.clone(),
                        status: outcome.status,
                        attempts: outcome.attempts,
                        duration: started.elapsed(),
                        outputs: outcome.outputs.clone(),
                        items: Vec::new(),
                        reason: outcome.reason.clone(),
                    });
                }
                (index, outcome)
            });
            next += 1;
        }
        let Some(Ok((index, outcome))) = running.join_next().await else {
            break;
        };
        if outcome.status == StepStatus::Failed && !job.step.allow_failure {
            stop = true;
        }
        results[index] = Some(outcome);
    }
    let summary: Vec<Value> = items
        .iter()
        .zip(&results)
        .map(|(item, r)| {
            let (status, outputs) = r.as_ref().map_or((StepStatus::Pending, Map::new()), |o| {
                (o.status, o.outputs.clone())
            });
            json!({ "item": item, "status": status.as_str(), "outputs": outputs })
        })
        .collect();
    let failures = results
        .iter()
        .flatten()
        .filter(|o| o.status == StepStatus::Failed)
        .count();
    let pause = results.iter().flatten().any(|o| o.pause);
    let status = if failures > 0 {
        StepStatus::Failed
    } else {
        StepStatus::Succeeded
    };
    let outcome = Outcome {
        status,
        attempts: 1,
        outputs: Map::new(),
        reason: (failures > 0).then(|| format!("{failures} of {} items failed", items.len())),
        pause,
    };
    (outcome, summary)
}
