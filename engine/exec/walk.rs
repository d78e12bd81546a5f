//! The walk of a run's graph: which node may start now, and what follows when one ends.
//!
//! Nodes are grouped in scopes. A *group* is the run itself, a call of another runbook, or one
//! item of a fanned-out call: its main nodes, then its `finally` nodes once the main part is
//! over, then it ends with a status of its own. A *fan-out* is the items of one step
//! (`for_each` or `on:` a list, over plain steps or calls): [`FanOut`] decides when each item
//! is admitted (batches, window, failure budget, gates). Every node has one innermost scope;
//! scopes nest.
//!
//! A failure belongs to its scope: a failed node stops new work in its group (running siblings
//! finish, then the group's `finally` runs) and the group's failure reaches the scope around it,
//! unless the step allows it or a fan-out's budget absorbs it. An edge that leaves a scope (a
//! group's last steps → what waits for the call; a fan-out's items → what waits for the step)
//! is released only when that scope has ended, and only if it ended well.
//!
//! The walk is synchronous and does no I/O: the scheduler starts what it says is ready, tells it
//! what ended, and acts on the [`Happening`]s it reports.

use std::collections::{BTreeSet, HashMap};

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::event::StepStatus;
use super::fanout::{FanOut, Next, Policy};
use crate::plan::{NodeId, Phase, Plan, Role};

/// A scope of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeRef {
    /// A group: the plan scope's index (0 is the run).
    Group(usize),
    /// A fan-out, by its index in the walk.
    Fan(usize),
}

/// Something the scheduler must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// A group (not the run) has ended; its call node takes this status.
    GroupEnded {
        /// The plan scope.
        group: usize,
        /// Its status.
        status: StepStatus,
    },
    /// A group failed and has attempts left (`retry` on its call): once the scheduler has
    /// waited its delay, [`Walk::retry_group`] runs its failed and not-yet-run steps again.
    GroupRetry {
        /// The plan scope.
        group: usize,
        /// The attempt that failed (1-based).
        attempt: u32,
    },
    /// The run's own group has ended: the run is over.
    RunEnded {
        /// The procedure's status, `finally` included.
        status: StepStatus,
    },
    /// A fan-out has ended (its items are all done, or it stopped).
    FanEnded {
        /// The fan-out.
        fan: usize,
        /// Its status (`pending` when stopped from outside before every item ran).
        status: StepStatus,
    },
    /// A batch of a fan-out begins (0-based).
    BatchStarted {
        /// The fan-out.
        fan: usize,
        /// The batch.
        batch: usize,
    },
    /// The gate after a batch must hold before anything else of the fan-out starts.
    Gate {
        /// The fan-out.
        fan: usize,
        /// The batch just ended (0-based).
        batch: usize,
    },
}

/// What the walk knows of one node.
#[derive(Debug, Clone)]
struct NodeWalk {
    /// Dependencies not yet released.
    waiting: usize,
    /// Innermost scope.
    scope: ScopeRef,
    /// Position among its fan-out's items.
    item: Option<usize>,
    started: bool,
    ended: bool,
    /// It ended well (succeeded or skipped): a retry of its group never runs it again.
    good: bool,
}

/// Where a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupPhase {
    /// Not entered yet.
    Waiting,
    /// Its main nodes run.
    Main,
    /// Its `finally` nodes run.
    Finally,
    /// Failed, waiting to be tried again.
    Retrying,
    /// Over.
    Ended(StepStatus),
}

#[derive(Debug, Clone)]
struct GroupWalk {
    /// The scope around it (`None` for the run).
    parent: Option<ScopeRef>,
    /// The call node that stands for it in its parent.
    entry: Option<NodeIndex>,
    /// A failure of the group does not fail its parent (`allow_failure` on the call).
    tolerated: bool,
    phase: GroupPhase,
    /// Its call was skipped (`when` false, or the call around it was skipped).
    skipped: bool,
    failed: bool,
    stopping: bool,
    /// Stopped because a scope around it stopped (not by a failure of its own: no retry).
    stopped_from_outside: bool,
    /// Attempts left after this one (`retry` on its call), and this attempt (1-based).
    retries_left: u32,
    attempt: u32,
    /// Main units (steps, fan-outs, calls) not ended yet, and those of them started.
    units_left: usize,
    units_active: usize,
    /// Its main nodes (not those of fan-outs or groups inside it).
    members: Vec<NodeIndex>,
    finally_nodes: Vec<NodeIndex>,
    finally_left: usize,
    finally_failed: bool,
    /// Scopes directly inside (stopped with it).
    children: Vec<ScopeRef>,
    /// Edges that leave the group, released when it ends well.
    deferred: Vec<NodeIndex>,
}

impl GroupWalk {
    fn new(parent: Option<ScopeRef>) -> Self {
        Self {
            parent,
            entry: None,
            tolerated: false,
            phase: GroupPhase::Waiting,
            skipped: false,
            failed: false,
            stopping: false,
            stopped_from_outside: false,
            retries_left: 0,
            attempt: 1,
            units_left: 0,
            units_active: 0,
            members: Vec::new(),
            finally_nodes: Vec::new(),
            finally_left: 0,
            finally_failed: false,
            children: Vec::new(),
            deferred: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct FanWalk {
    /// The group the fanned-out step belongs to.
    parent: usize,
    /// Its items, in list order (plain nodes, or the call nodes of fanned-out calls).
    items: Vec<NodeIndex>,
    /// The node standing for the whole fan-out when its list was known only at run time.
    stand_in: Option<NodeIndex>,
    /// A failure of the fan-out does not fail its group (`allow_failure`).
    tolerated: bool,
    /// Its step is in its group's `finally`.
    finally: bool,
    fan: FanOut,
    /// Whether an item has started (the fan-out counts as a started unit of its group).
    active: bool,
    /// Item groups whose failure was counted before they ended (their `finally` still runs).
    counted: BTreeSet<usize>,
    /// Scopes directly inside (item groups).
    children: Vec<ScopeRef>,
    deferred: Vec<NodeIndex>,
    /// The last batch announced as started.
    announced: Option<usize>,
}

/// The walk of one run.
#[derive(Debug)]
pub struct Walk {
    nodes: Vec<NodeWalk>,
    groups: Vec<GroupWalk>,
    fans: Vec<FanWalk>,
    /// Nodes whose dependencies are done, by index (plan order among equals).
    ready: BTreeSet<usize>,
    /// Nothing starts any more (a pause or an interrupt).
    halted: bool,
    happenings: Vec<Happening>,
}

impl Walk {
    /// The walk of a plan before anything ran. Each fan-out starts with the policy its step
    /// states ([`Policy::of_step`]); values that need rendering are set with
    /// [`Walk::set_policy`] before its items start.
    pub fn new(plan: &Plan) -> Self {
        let mut walk = Self {
            nodes: Vec::with_capacity(plan.graph.node_count()),
            groups: Vec::with_capacity(plan.scopes.len()),
            fans: Vec::new(),
            ready: BTreeSet::new(),
            halted: false,
            happenings: Vec::new(),
        };
        walk.index(plan, &[]);
        walk
    }

    /// Takes in the nodes and scopes the plan has that the walk does not know yet (all of
    /// them at first; a fanned-out call's groups at run time). `items` are the nodes of a
    /// fan-out being opened: they are left for [`Walk::open_fan`].
    fn index(&mut self, plan: &Plan, items: &[NodeIndex]) {
        let first_node = self.nodes.len();
        let first_scope = self.groups.len();
        for s in first_scope..plan.scopes.len() {
            let parent = plan.scopes[s].caller.map(ScopeRef::Group);
            self.groups.push(GroupWalk::new(parent));
        }
        for n in (first_node..plan.graph.node_count()).map(NodeIndex::new) {
            self.nodes.push(NodeWalk {
                waiting: plan.dependencies(n).count(),
                scope: ScopeRef::Group(plan.graph[n].scope),
                item: None,
                started: false,
                ended: false,
                good: false,
            });
        }
        let fresh: Vec<NodeIndex> = (first_node..plan.graph.node_count())
            .map(NodeIndex::new)
            .filter(|n| !items.contains(n))
            .collect();
        // Fan-outs whose items the plan already holds: the items of one step, in list order.
        let mut by_step: Vec<(NodeId, Vec<NodeIndex>)> = Vec::new();
        let mut slot: HashMap<NodeId, usize> = HashMap::new();
        for &n in &fresh {
            if let Some(fan) = static_fan(plan, n) {
                if let Some(&i) = slot.get(&fan) {
                    by_step[i].1.push(n);
                } else {
                    slot.insert(fan.clone(), by_step.len());
                    by_step.push((fan, vec![n]));
                }
            }
        }
        for (_, mut members) in by_step {
            members.sort_by_key(|&n| item_index(plan, n));
            let group = plan.graph[members[0]].scope;
            let f = self.add_fan(plan, group, members, None);
            if self.fans[f].finally {
                self.groups[group].finally_left += 1;
            } else {
                self.groups[group].units_left += 1;
            }
        }
        // Each call's group hangs below the scope of its call node.
        for &n in &fresh {
            if let Role::CallEntry { scope } = plan.graph[n].role {
                self.attach_group(plan, scope, n);
            }
        }
        for &n in &fresh {
            let node = &plan.graph[n];
            if let ScopeRef::Group(g) = self.nodes[n.index()].scope {
                if node.phase == Phase::Finally {
                    self.groups[g].finally_nodes.push(n);
                    self.groups[g].finally_left += 1;
                } else {
                    self.groups[g].units_left += 1;
                    self.groups[g].members.push(n);
                }
            }
        }
    }

    /// Links a call's group to its call node and the scope around it.
    fn attach_group(&mut self, plan: &Plan, group: usize, entry: NodeIndex) {
        let parent = self.nodes[entry.index()].scope;
        let g = &mut self.groups[group];
        g.entry = Some(entry);
        g.tolerated = plan.graph[entry].step.allow_failure;
        g.parent = Some(parent);
        match parent {
            ScopeRef::Group(p) => self.groups[p].children.push(ScopeRef::Group(group)),
            ScopeRef::Fan(f) => self.fans[f].children.push(ScopeRef::Group(group)),
        }
    }

    /// Adds a fan-out over `items` (nodes the walk knows).
    fn add_fan(
        &mut self,
        plan: &Plan,
        group: usize,
        items: Vec<NodeIndex>,
        stand_in: Option<NodeIndex>,
    ) -> usize {
        let index = self.fans.len();
        let anchor = stand_in.unwrap_or_else(|| items[0]);
        let step = &plan.graph[anchor].step;
        let finally = plan.graph[anchor].phase == Phase::Finally;
        for (position, &n) in items.iter().enumerate() {
            let node = &mut self.nodes[n.index()];
            node.scope = ScopeRef::Fan(index);
            node.item = Some(position);
        }
        self.fans.push(FanWalk {
            parent: group,
            fan: FanOut::new(items.len(), Policy::of_step(step)),
            tolerated: step.allow_failure,
            finally,
            items,
            stand_in,
            active: false,
            counted: BTreeSet::new(),
            children: Vec::new(),
            deferred: Vec::new(),
            announced: None,
        });
        self.groups[group].children.push(ScopeRef::Fan(index));
        index
    }

    /// The fan-outs directly in a group that the plan knew (their policies are set when the
    /// group is entered).
    pub fn fans_in(&self, group: usize) -> Vec<usize> {
        self.groups[group]
            .children
            .iter()
            .filter_map(|c| match c {
                ScopeRef::Fan(f) if self.fans[*f].stand_in.is_none() => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// Sets a fan-out's batches, window and budget (before any of its items starts).
    pub fn set_policy(&mut self, fan: usize, policy: Policy) {
        self.fans[fan].fan.set_policy(policy);
    }

    /// The run begins: nodes without dependencies become ready.
    pub fn start(&mut self, plan: &Plan) {
        self.groups[0].phase = GroupPhase::Main;
        for i in 0..self.nodes.len() {
            if self.nodes[i].waiting == 0 && !self.nodes[i].ended {
                self.offer(plan, NodeIndex::new(i));
            }
        }
        self.check_group(plan, 0);
    }

    /// A fan-out whose list is known only now: `items` (plain nodes, or the call nodes of new
    /// groups) were added to the plan's graph with everything inside them. Returns the fan-out.
    pub fn open_fan(
        &mut self,
        plan: &Plan,
        stand_in: NodeIndex,
        items: &[NodeIndex],
        policy: Policy,
    ) -> usize {
        self.index(plan, items);
        let group = match self.nodes[stand_in.index()].scope {
            ScopeRef::Group(g) => g,
            ScopeRef::Fan(f) => self.fans[f].parent,
        };
        let fan = self.add_fan(plan, group, items.to_vec(), Some(stand_in));
        self.fans[fan].fan.set_policy(policy);
        for &n in items {
            if let Role::CallEntry { scope } = plan.graph[n].role {
                self.attach_group(plan, scope, n);
            }
        }
        for &n in items {
            if self.nodes[n.index()].waiting == 0 && !self.nodes[n.index()].ended {
                self.offer(plan, n);
            }
        }
        let next = self.fans[fan].fan.check();
        self.follow(plan, fan, next);
        fan
    }

    /// What the scheduler must act on since the last call.
    pub fn happenings(&mut self) -> Vec<Happening> {
        std::mem::take(&mut self.happenings)
    }

    /// The first ready node, without taking it.
    pub fn peek_ready(&self) -> Option<NodeIndex> {
        if self.halted {
            return None;
        }
        self.ready.first().map(|&i| NodeIndex::new(i))
    }

    /// Takes the next node that may start. Nodes whose scope stopped are left pending.
    pub fn next_ready(&mut self, plan: &Plan) -> Option<NodeIndex> {
        while let Some(n) = self.peek_ready() {
            self.ready.remove(&n.index());
            if self.nodes[n.index()].ended || self.nodes[n.index()].started {
                continue;
            }
            if self.may_start(plan, n) {
                return Some(n);
            }
            if let ScopeRef::Fan(f) = self.nodes[n.index()].scope {
                let position = self.nodes[n.index()].item.unwrap_or(0);
                let next = self.fans[f].fan.withdraw(position);
                self.follow(plan, f, next);
            }
        }
        None
    }

    /// Whether a node's scopes let it start: a `finally` node always does (that is what it is
    /// for); a main node only while no enclosing group or fan-out has stopped.
    fn may_start(&self, plan: &Plan, n: NodeIndex) -> bool {
        if plan.graph[n].phase == Phase::Finally {
            return true;
        }
        let mut scope = Some(self.nodes[n.index()].scope);
        while let Some(s) = scope {
            scope = match s {
                ScopeRef::Group(g) => {
                    if self.groups[g].stopping {
                        return false;
                    }
                    self.groups[g].parent
                }
                ScopeRef::Fan(f) => {
                    if self.fans[f].fan.is_stopped() {
                        return false;
                    }
                    Some(ScopeRef::Group(self.fans[f].parent))
                }
            };
        }
        true
    }

    /// A node starts (a task, a call being entered, a fan-out being opened).
    pub fn started(&mut self, n: NodeIndex) {
        if self.nodes[n.index()].started {
            return;
        }
        self.nodes[n.index()].started = true;
        match self.nodes[n.index()].scope {
            ScopeRef::Group(g) => {
                if !self.groups[g].finally_nodes.contains(&n) {
                    self.groups[g].units_active += 1;
                }
            }
            ScopeRef::Fan(f) => {
                // A fan-out known only at run time is already a started unit: its own node.
                if !self.fans[f].active && self.fans[f].stand_in.is_none() {
                    self.fans[f].active = true;
                    let parent = self.fans[f].parent;
                    self.groups[parent].units_active += 1;
                }
            }
        }
    }

    /// A call node was entered: its group's main part begins (`skipped`: the call's `when`
    /// was false, and its steps are skipped without running).
    pub fn enter_group(&mut self, plan: &Plan, group: usize, skipped: bool) {
        let g = &mut self.groups[group];
        g.phase = GroupPhase::Main;
        g.skipped = skipped;
        if let Some(entry) = g.entry {
            let mut targets: Vec<NodeIndex> = plan
                .graph
                .neighbors_directed(entry, Direction::Outgoing)
                .collect();
            targets.sort_unstable();
            for to in targets {
                // Into the group: its first steps. Past it (a call of an empty runbook): what
                // waits for the call waits for its end.
                if self.chain(to).contains(&ScopeRef::Group(group)) {
                    self.release_one(plan, to);
                } else {
                    self.groups[group].deferred.push(to);
                }
            }
        }
        // Steps whose dependencies an earlier process settled were waiting for the group.
        for n in self.groups[group].members.clone() {
            let node = &self.nodes[n.index()];
            if node.waiting == 0 && !node.ended && !node.started {
                self.ready.insert(n.index());
            }
        }
        for child in self.groups[group].children.clone() {
            if let ScopeRef::Fan(f) = child
                && !self.fans[f].finally
            {
                self.admit(f);
            }
        }
        self.check_group(plan, group);
    }

    /// Whether a group's call was skipped.
    pub fn group_skipped(&self, group: usize) -> bool {
        self.groups[group].skipped
    }

    /// A call node could not be entered (its `when:` or `with:` failed to render): the group
    /// ends failed without running.
    pub fn group_failed_to_enter(&mut self, plan: &Plan, group: usize) {
        self.groups[group].phase = GroupPhase::Main;
        self.groups[group].failed = true;
        self.fail_outward(plan, group);
        self.end_group(plan, group, StepStatus::Failed);
    }

    /// A node ended: a task finished, it was decided without one, or an earlier process of
    /// the run settled it. (Call nodes end with their group.)
    pub fn ended(&mut self, plan: &Plan, n: NodeIndex, status: StepStatus) {
        if self.nodes[n.index()].ended {
            return;
        }
        let was_started = self.nodes[n.index()].started;
        self.nodes[n.index()].ended = true;
        self.nodes[n.index()].started = true;
        self.nodes[n.index()].good = matches!(status, StepStatus::Succeeded | StepStatus::Skipped);
        let failed = status == StepStatus::Failed && !plan.graph[n].step.allow_failure;
        match self.nodes[n.index()].scope {
            ScopeRef::Group(g) => {
                if plan.graph[n].phase == Phase::Finally {
                    self.groups[g].finally_left -= 1;
                    self.groups[g].finally_failed |= failed;
                    // In `finally` every step runs: a failure does not hold the others back.
                    self.release_edges(plan, n);
                } else {
                    // A failure holds back what waits for it inside the group; what waits
                    // outside is the group's end to decide (a call that allows failure).
                    self.release_edges_if(plan, n, !failed);
                    self.unit_ended(plan, g, was_started, failed);
                }
                self.check_group(plan, g);
            }
            ScopeRef::Fan(f) => {
                // The item's edges leave the fan-out: released when it ends well.
                self.release_edges(plan, n);
                let position = self.nodes[n.index()].item.unwrap_or(0);
                self.item_ended(plan, f, position, status);
            }
        }
    }

    /// A unit of a group ended; a failure fails the group.
    fn unit_ended(&mut self, plan: &Plan, g: usize, was_started: bool, failed: bool) {
        let group = &mut self.groups[g];
        group.units_left -= 1;
        if was_started {
            group.units_active -= 1;
        }
        if failed {
            self.fail_group(plan, g);
        }
    }

    fn item_ended(&mut self, plan: &Plan, f: usize, position: usize, status: StepStatus) {
        let next = if self.fans[f].counted.remove(&position) {
            self.fans[f].fan.finish_counted(position, status)
        } else {
            let next = self.fans[f].fan.finish(position, status);
            if self.fans[f].fan.over_budget() {
                self.fan_failed(plan, f);
            }
            next
        };
        self.follow(plan, f, next);
    }

    /// Acts on what a fan-out needs next.
    fn follow(&mut self, plan: &Plan, f: usize, next: Next) {
        match next {
            Next::Wait => {}
            Next::Admit => self.admit(f),
            Next::Gate(batch) => self.happenings.push(Happening::Gate { fan: f, batch }),
            Next::Ended(status) => self.end_fan(plan, f, status),
        }
    }

    fn admit(&mut self, f: usize) {
        let batch = self.fans[f].fan.current_batch();
        let admitted = self.fans[f].fan.admit();
        if !admitted.is_empty() && self.fans[f].announced != Some(batch) {
            self.fans[f].announced = Some(batch);
            self.happenings
                .push(Happening::BatchStarted { fan: f, batch });
        }
        for position in admitted {
            let n = self.fans[f].items[position];
            self.ready.insert(n.index());
        }
    }

    /// A fan-out that cannot run at all (its policy did not render): it fails, and its group
    /// with it.
    pub fn fail_fan(&mut self, plan: &Plan, f: usize) {
        let next = self.fans[f].fan.fail();
        self.fan_failed(plan, f);
        self.follow(plan, f, next);
    }

    /// The gate after a batch held, or did not (the fan-out then fails).
    pub fn gate_decided(&mut self, plan: &Plan, f: usize, held: bool) {
        let next = self.fans[f].fan.gate_decided(held);
        if !held {
            self.fan_failed(plan, f);
        }
        self.follow(plan, f, next);
    }

    /// A fan-out failed (over budget, or its gate did not hold): unless the step allows it, its
    /// group fails now, so that nothing else starts while its running items finish.
    fn fan_failed(&mut self, plan: &Plan, f: usize) {
        // In `finally` every step runs: its failure is counted when it ends.
        if !self.fans[f].tolerated && !self.fans[f].finally {
            let parent = self.fans[f].parent;
            self.fail_group(plan, parent);
        }
    }

    fn end_fan(&mut self, plan: &Plan, f: usize, status: StepStatus) {
        self.happenings.push(Happening::FanEnded { fan: f, status });
        let tolerated = self.fans[f].tolerated;
        let good = matches!(status, StepStatus::Succeeded | StepStatus::Skipped)
            || (status == StepStatus::Failed && tolerated);
        let deferred = std::mem::take(&mut self.fans[f].deferred);
        if good {
            for to in deferred {
                self.release_one(plan, to);
            }
        }
        let parent = self.fans[f].parent;
        if self.fans[f].finally {
            // A fan-out in `finally` is one of the group's `finally` steps: the others still run.
            if let Some(stand_in) = self.fans[f].stand_in {
                self.nodes[stand_in.index()].ended = true;
                self.release_edges(plan, stand_in);
            }
            let group = &mut self.groups[parent];
            group.finally_left -= 1;
            group.finally_failed |= status == StepStatus::Failed && !tolerated;
            self.check_group(plan, parent);
            return;
        }
        // Its failure already reached the group when it happened.
        let failed = status == StepStatus::Failed && !tolerated && !self.groups[parent].failed;
        if let Some(stand_in) = self.fans[f].stand_in {
            // A fan-out known only at run time ends as its own node.
            self.nodes[stand_in.index()].ended = true;
            if good {
                self.release_edges(plan, stand_in);
            }
            self.unit_ended(plan, parent, true, failed);
        } else {
            let started = self.fans[f].active;
            self.unit_ended(plan, parent, started, failed);
        }
        self.check_group(plan, parent);
    }

    /// A group fails: it stops starting main nodes (running ones finish, then its `finally`
    /// runs), and its failure reaches the scope around it.
    fn fail_group(&mut self, plan: &Plan, g: usize) {
        if self.groups[g].failed {
            return;
        }
        self.groups[g].failed = true;
        self.stop_scope(plan, ScopeRef::Group(g));
        // A group that will be tried again has not failed yet for the scope around it.
        if self.groups[g].retries_left == 0 {
            self.fail_outward(plan, g);
        }
    }

    /// A group's failure reaches its parent: the group around it fails, or the fan-out it is
    /// an item of counts it against its budget.
    fn fail_outward(&mut self, plan: &Plan, g: usize) {
        if self.groups[g].tolerated {
            return;
        }
        match self.groups[g].parent {
            Some(ScopeRef::Group(p)) => self.fail_group(plan, p),
            Some(ScopeRef::Fan(f)) => {
                let Some(entry) = self.groups[g].entry else {
                    return;
                };
                let position = self.nodes[entry.index()].item.unwrap_or(0);
                if self.fans[f].fan.ended().is_none()
                    && self.fans[f].counted.insert(position)
                    && self.fans[f].fan.count_failure_early()
                {
                    self.fan_failed(plan, f);
                }
            }
            None => {}
        }
    }

    /// Stops a scope and everything inside it: nothing new starts there (except `finally`).
    fn stop_scope(&mut self, plan: &Plan, scope: ScopeRef) {
        match scope {
            ScopeRef::Group(g) => {
                if matches!(self.groups[g].phase, GroupPhase::Ended(_)) {
                    return;
                }
                self.groups[g].stopping = true;
                for child in self.groups[g].children.clone() {
                    if let ScopeRef::Group(c) = child {
                        self.groups[c].stopped_from_outside = true;
                    }
                    self.stop_scope(plan, child);
                }
                self.check_group(plan, g);
            }
            ScopeRef::Fan(f) => {
                if self.fans[f].fan.ended().is_some() {
                    return;
                }
                for child in self.fans[f].children.clone() {
                    if let ScopeRef::Group(c) = child {
                        self.groups[c].stopped_from_outside = true;
                    }
                    self.stop_scope(plan, child);
                }
                let next = self.fans[f].fan.stop();
                self.follow(plan, f, next);
            }
        }
    }

    /// Nothing starts any more: the run pauses or was interrupted.
    pub fn halt(&mut self) {
        self.halted = true;
    }

    /// Moves a group on when its main part or its `finally` is over.
    fn check_group(&mut self, plan: &Plan, g: usize) {
        let group = &self.groups[g];
        match group.phase {
            GroupPhase::Main => {
                let over = group.units_left == 0 || (group.stopping && group.units_active == 0);
                if !over {
                    return;
                }
                if group.failed
                    && group.retries_left > 0
                    && !group.stopped_from_outside
                    && !self.halted
                {
                    // Its `finally` runs once, after the last attempt.
                    self.groups[g].phase = GroupPhase::Retrying;
                    self.happenings.push(Happening::GroupRetry {
                        group: g,
                        attempt: self.groups[g].attempt,
                    });
                    return;
                }
                self.groups[g].phase = GroupPhase::Finally;
                for n in self.groups[g].finally_nodes.clone() {
                    let node = &self.nodes[n.index()];
                    if node.waiting == 0 && !node.ended {
                        self.offer(plan, n);
                    }
                }
                for child in self.groups[g].children.clone() {
                    if let ScopeRef::Fan(f) = child
                        && self.fans[f].finally
                    {
                        self.admit(f);
                    }
                }
                self.check_group(plan, g);
            }
            GroupPhase::Finally => {
                if group.finally_left > 0 {
                    return;
                }
                let main_ok = !group.failed && group.units_left == 0;
                let status = if group.skipped {
                    StepStatus::Skipped
                } else if main_ok && !group.finally_failed {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                };
                self.end_group(plan, g, status);
            }
            GroupPhase::Waiting | GroupPhase::Retrying | GroupPhase::Ended(_) => {}
        }
    }

    /// How many more attempts a group gets when it fails (`retry.attempts` of its call, less
    /// one), set as it is entered.
    pub fn set_retries(&mut self, group: usize, retries: u32) {
        self.groups[group].retries_left = retries;
    }

    /// A group that failed runs again: its failed and not-yet-run steps start over (never those
    /// that succeeded or were skipped); groups and fan-outs inside it likewise. Returns the
    /// nodes made pending again.
    pub fn retry_group(&mut self, plan: &Plan, g: usize) -> Vec<NodeIndex> {
        let entry = self.groups[g].entry;
        let mut reset = Vec::new();
        self.reset_scope(ScopeRef::Group(g), &mut reset);
        let group = &mut self.groups[g];
        group.retries_left -= 1;
        group.attempt += 1;
        group.phase = GroupPhase::Main;
        for &n in &reset {
            let waiting = plan
                .dependencies(n)
                .filter(|d| Some(*d) != entry && !self.nodes[d.index()].good)
                .count();
            self.nodes[n.index()].waiting = waiting;
        }
        for &n in &reset {
            if self.nodes[n.index()].waiting == 0 {
                self.offer(plan, n);
            }
        }
        for child in self.groups[g].children.clone() {
            if let ScopeRef::Fan(f) = child {
                self.admit(f);
            }
        }
        self.check_group(plan, g);
        reset
    }

    /// Makes everything in a scope that did not end well pending again.
    fn reset_scope(&mut self, scope: ScopeRef, reset: &mut Vec<NodeIndex>) {
        let mut reset_node = |walk: &mut Self, n: NodeIndex| {
            let node = &mut walk.nodes[n.index()];
            if !node.good {
                node.ended = false;
                node.started = false;
                reset.push(n);
            }
        };
        match scope {
            ScopeRef::Group(g) => {
                // A fan-out known at run time keeps its node (and its items): it starts over.
                let stand_ins: Vec<NodeIndex> = self.groups[g]
                    .children
                    .iter()
                    .filter_map(|c| match c {
                        ScopeRef::Fan(f) => self.fans[*f].stand_in,
                        ScopeRef::Group(_) => None,
                    })
                    .collect();
                let mut active = 0;
                for n in self.groups[g].members.clone() {
                    if stand_ins.contains(&n) && !self.nodes[n.index()].good {
                        let node = &mut self.nodes[n.index()];
                        node.ended = false;
                        node.started = true;
                        active += 1;
                        continue;
                    }
                    reset_node(self, n);
                }
                for n in self.groups[g].finally_nodes.clone() {
                    reset_node(self, n);
                }
                let members = self.groups[g].members.clone();
                let children = self.groups[g].children.clone();
                let group = &mut self.groups[g];
                group.failed = false;
                group.stopping = false;
                group.stopped_from_outside = false;
                group.units_active = active;
                group.finally_left = group.finally_nodes.len();
                group.finally_failed = false;
                if !matches!(
                    group.phase,
                    GroupPhase::Ended(StepStatus::Succeeded | StepStatus::Skipped)
                ) {
                    group.phase = GroupPhase::Waiting;
                }
                let mut left = members
                    .iter()
                    .filter(|n| !self.nodes[n.index()].good)
                    .count();
                for child in &children {
                    if let ScopeRef::Fan(f) = child
                        && self.fans[*f].stand_in.is_none()
                        && self.fans[*f].fan.ended() != Some(StepStatus::Succeeded)
                    {
                        left += 1;
                    }
                }
                self.groups[g].units_left = left;
                for n in self.groups[g].finally_nodes.clone() {
                    if self.nodes[n.index()].good {
                        self.groups[g].finally_left -= 1;
                    }
                }
                for child in children {
                    self.reset_scope(child, reset);
                }
            }
            ScopeRef::Fan(f) => {
                if self.fans[f].fan.ended() == Some(StepStatus::Succeeded) {
                    return;
                }
                let good: Vec<bool> = self.fans[f]
                    .items
                    .iter()
                    .map(|n| self.nodes[n.index()].good)
                    .collect();
                self.fans[f].fan.restart(&good);
                self.fans[f].active = self.fans[f].stand_in.is_some();
                self.fans[f].counted.clear();
                self.fans[f].announced = None;
                for n in self.fans[f].items.clone() {
                    reset_node(self, n);
                }
                for child in self.fans[f].children.clone() {
                    self.reset_scope(child, reset);
                }
            }
        }
    }

    fn end_group(&mut self, plan: &Plan, g: usize, status: StepStatus) {
        self.groups[g].phase = GroupPhase::Ended(status);
        if g == 0 {
            self.happenings.push(Happening::RunEnded { status });
            return;
        }
        self.happenings
            .push(Happening::GroupEnded { group: g, status });
        let tolerated = self.groups[g].tolerated;
        let good = matches!(status, StepStatus::Succeeded | StepStatus::Skipped) || tolerated;
        let deferred = std::mem::take(&mut self.groups[g].deferred);
        if good {
            for to in deferred {
                self.release_one(plan, to);
            }
        }
        let Some(entry) = self.groups[g].entry else {
            return;
        };
        let was_started = self.nodes[entry.index()].started;
        self.nodes[entry.index()].ended = true;
        match self.groups[g].parent {
            Some(ScopeRef::Group(p)) => {
                // Its failure already reached the parent when it happened.
                let failed = status == StepStatus::Failed && !tolerated && !self.groups[p].failed;
                self.unit_ended(plan, p, was_started, failed);
                self.check_group(plan, p);
            }
            Some(ScopeRef::Fan(f)) => {
                let position = self.nodes[entry.index()].item.unwrap_or(0);
                self.item_ended(plan, f, position, status);
            }
            None => {}
        }
    }

    /// Releases a node's edges to its dependents: at once inside its scopes, deferred to the
    /// end of the outermost scope the edge leaves otherwise.
    fn release_edges(&mut self, plan: &Plan, n: NodeIndex) {
        self.release_edges_if(plan, n, true);
    }

    /// Like [`Walk::release_edges`]; edges that stay inside the node's scopes are released only
    /// when `inside` holds.
    fn release_edges_if(&mut self, plan: &Plan, n: NodeIndex, inside: bool) {
        let mut dependents: Vec<NodeIndex> = plan
            .graph
            .neighbors_directed(n, Direction::Outgoing)
            .collect();
        // In plan order: the items of a fan-out are offered, and admitted, in list order.
        dependents.sort_unstable();
        for to in dependents {
            match self.leaving(n, to) {
                None if inside => self.release_one(plan, to),
                None => {}
                Some(ScopeRef::Group(g)) => self.groups[g].deferred.push(to),
                Some(ScopeRef::Fan(f)) => self.fans[f].deferred.push(to),
            }
        }
    }

    /// The outermost scope around `from` that `to` is not inside (the edge leaves it).
    fn leaving(&self, from: NodeIndex, to: NodeIndex) -> Option<ScopeRef> {
        let target = self.chain(to);
        let mut outermost = None;
        for scope in self.chain(from) {
            if target.contains(&scope) {
                break;
            }
            outermost = Some(scope);
        }
        outermost
    }

    /// A node's scopes, innermost first.
    fn chain(&self, n: NodeIndex) -> Vec<ScopeRef> {
        let mut out = Vec::new();
        let mut scope = Some(self.nodes[n.index()].scope);
        while let Some(s) = scope {
            out.push(s);
            scope = match s {
                ScopeRef::Group(g) => self.groups[g].parent,
                ScopeRef::Fan(f) => Some(ScopeRef::Group(self.fans[f].parent)),
            };
        }
        out
    }

    fn release_one(&mut self, plan: &Plan, to: NodeIndex) {
        let node = &mut self.nodes[to.index()];
        node.waiting = node.waiting.saturating_sub(1);
        if node.waiting == 0 && !node.ended {
            self.offer(plan, to);
        }
    }

    /// A node whose dependencies are done: ready, or offered to its fan-out, or (a `finally`
    /// node) ready once its group's main part is over.
    fn offer(&mut self, plan: &Plan, n: NodeIndex) {
        if self.groups[0].phase == GroupPhase::Waiting {
            // Nodes settled by an earlier process are being restored: nothing is offered
            // before the run starts, which then offers every node whose dependencies are done.
            return;
        }
        match self.nodes[n.index()].scope {
            ScopeRef::Fan(f) => {
                let position = self.nodes[n.index()].item.unwrap_or(0);
                self.fans[f].fan.offer(position);
                // Nothing of a group starts before the group is entered (its params are set),
                // and nothing of its `finally` before its main part is over.
                let phase = self.groups[self.fans[f].parent].phase;
                let now = if self.fans[f].finally {
                    phase == GroupPhase::Finally
                } else {
                    phase != GroupPhase::Waiting
                };
                if now {
                    self.admit(f);
                }
            }
            ScopeRef::Group(g) => {
                let phase = self.groups[g].phase;
                if phase == GroupPhase::Waiting
                    || (plan.graph[n].phase == Phase::Finally && phase != GroupPhase::Finally)
                {
                    return;
                }
                self.ready.insert(n.index());
            }
        }
    }

    /// A node goes back to waiting: a manual step that paused the run, a step interrupted.
    /// It neither succeeded nor failed; the walk is halted around it.
    pub fn unstarted(&mut self, n: NodeIndex) {
        self.nodes[n.index()].started = false;
    }

    /// The fan-out a node is an item of, and its position.
    pub fn item_of(&self, n: NodeIndex) -> Option<(usize, usize)> {
        match self.nodes[n.index()].scope {
            ScopeRef::Fan(f) => Some((f, self.nodes[n.index()].item.unwrap_or(0))),
            ScopeRef::Group(_) => None,
        }
    }

    /// A fan-out's items, in list order.
    pub fn fan_items(&self, f: usize) -> &[NodeIndex] {
        &self.fans[f].items
    }

    /// A fan-out's progress.
    pub fn fan(&self, f: usize) -> &FanOut {
        &self.fans[f].fan
    }

    /// The node standing for a fan-out known only at run time.
    pub fn fan_stand_in(&self, f: usize) -> Option<NodeIndex> {
        self.fans[f].stand_in
    }

    /// A group's status so far, as its `finally` sees it (`run.status`).
    pub fn group_status(&self, g: usize) -> StepStatus {
        let group = &self.groups[g];
        if group.failed || group.units_left > 0 {
            StepStatus::Failed
        } else {
            StepStatus::Succeeded
        }
    }

    /// A group's attempt (1-based).
    pub fn group_attempt(&self, g: usize) -> u32 {
        self.groups[g].attempt
    }

    /// The call node of a group.
    pub fn group_entry(&self, g: usize) -> Option<NodeIndex> {
        self.groups[g].entry
    }

    /// Whether a group's main part has begun.
    pub fn group_entered(&self, g: usize) -> bool {
        self.groups[g].phase != GroupPhase::Waiting
    }
}

/// The fan-out a node is an item of, when the plan already expanded it.
fn static_fan(plan: &Plan, n: NodeIndex) -> Option<NodeId> {
    let is_item = match &plan.graph[n].role {
        Role::Item { .. } => true,
        Role::CallEntry { scope } => plan.scopes[*scope].item.is_some(),
        Role::Step | Role::DynamicFanOut => false,
    };
    if is_item {
        plan.graph[n].id.fan_out()
    } else {
        None
    }
}

fn item_index(plan: &Plan, n: NodeIndex) -> usize {
    match &plan.graph[n].role {
        Role::Item { index, .. } => *index,
        _ => match plan.graph[n].id.item_key() {
            Some(crate::plan::ItemKey::Index(i)) => i,
            _ => 0,
        },
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::spec::SourceFile;

    /// Compiles runbook files written into a temporary folder (the first is the root).
    pub fn plan(files: &[(&str, &str)]) -> (Plan, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("writable");
        }
        let root = dir.path().join(files[0].0);
        let file = SourceFile::new(&root, files[0].1);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        let plan = crate::plan::compile(runbook, Some(&crate::plan::ParamInput::default()))
            .expect("it compiles");
        (plan, dir)
    }

    /// Walks a plan to its end, one node at a time; `outcome` says how each step ends.
    /// Returns the order in which nodes started and the run's status.
    /// Outcomes where step `failing` fails and every other step succeeds.
    pub fn only_fails(failing: &str) -> impl Fn(&str) -> StepStatus + '_ {
        move |id| {
            if id == failing {
                StepStatus::Failed
            } else {
                StepStatus::Succeeded
            }
        }
    }

    pub fn walk_through(
        plan: &Plan,
        outcome: impl Fn(&str) -> StepStatus,
    ) -> (Vec<String>, Option<StepStatus>) {
        let mut walk = Walk::new(plan);
        walk.start(plan);
        let mut order = Vec::new();
        let mut ended = None;
        loop {
            for happening in walk.happenings() {
                match happening {
                    Happening::RunEnded { status } => ended = Some(status),
                    Happening::Gate { fan, .. } => walk.gate_decided(plan, fan, true),
                    _ => {}
                }
            }
            let Some(n) = walk.next_ready(plan) else {
                break;
            };
            walk.started(n);
            order.push(plan.graph[n].id.to_string());
            if let Role::CallEntry { scope } = plan.graph[n].role {
                walk.enter_group(plan, scope, false);
            } else {
                let status = if walk.group_skipped(plan.graph[n].scope) {
                    StepStatus::Skipped
                } else {
                    outcome(plan.graph[n].id.as_str())
                };
                walk.ended(plan, n, status);
            }
        }
        for happening in walk.happenings() {
            if let Happening::RunEnded { status } = happening {
                ended = Some(status);
            }
        }
        (order, ended)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_failure_stops_new_work_in_its_group_and_finally_still_runs() {
        let (plan, _dir) = plan(&[(
            "r.yaml",
            "name: r\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n    run: 'false'\n  - id: c\n    run: 'true'\nfinally:\n  - id: cleanup\n    run: 'true'\n",
        )]);
        let (order, status) = walk_through(&plan, only_fails("b"));
        assert_eq!(order, ["a", "b", "cleanup"]);
        assert_eq!(status, Some(StepStatus::Failed));
    }

    #[test]
    fn a_calls_finally_runs_before_what_waits_for_the_call() {
        let (plan, _dir) = plan(&[
            (
                "r.yaml",
                "name: r\nsteps:\n  - id: part\n    call: part.yaml\n  - id: after\n    run: 'true'\n",
            ),
            (
                "part.yaml",
                "name: part\nsteps:\n  - id: work\n    run: 'false'\nfinally:\n  - id: undo\n    run: 'true'\n",
            ),
        ]);
        let (order, status) = walk_through(&plan, only_fails("part.work"));
        assert_eq!(
            order,
            ["part", "part.work", "part.undo"],
            "the call's cleanup runs; what waits for the failed call does not"
        );
        assert_eq!(status, Some(StepStatus::Failed));
    }

    #[test]
    fn a_tolerated_call_failure_lets_its_dependents_run_after_its_finally() {
        let (plan, _dir) = plan(&[
            (
                "r.yaml",
                "name: r\nsteps:\n  - id: part\n    call: part.yaml\n    allow_failure: true\n  - id: after\n    run: 'true'\n",
            ),
            (
                "part.yaml",
                "name: part\nsteps:\n  - id: work\n    run: 'false'\nfinally:\n  - id: undo\n    run: 'true'\n",
            ),
        ]);
        let (order, status) = walk_through(&plan, only_fails("part.work"));
        assert_eq!(order, ["part", "part.work", "part.undo", "after"]);
        assert_eq!(status, Some(StepStatus::Succeeded));
    }

    #[test]
    fn a_fan_out_admits_its_window_in_list_order_and_its_dependents_wait_for_all_items() {
        let (plan, _dir) = plan(&[(
            "r.yaml",
            "name: r\nsteps:\n  - id: fan\n    for_each: [a, b, c]\n    max_parallel: 2\n    run: 'true'\n  - id: after\n    run: 'true'\n",
        )]);
        let mut walk = Walk::new(&plan);
        walk.start(&plan);
        let mut first = Vec::new();
        while let Some(n) = walk.next_ready(&plan) {
            walk.started(n);
            first.push(plan.graph[n].id.to_string());
        }
        assert_eq!(first, ["fan[0]", "fan[1]"], "two at once");
        let item = |i: usize| plan.find(&format!("fan[{i}]")).expect("an item");
        walk.ended(&plan, item(1), StepStatus::Succeeded);
        let next = walk.next_ready(&plan).expect("the third item");
        assert_eq!(plan.graph[next].id.as_str(), "fan[2]");
        walk.started(next);
        walk.ended(&plan, next, StepStatus::Succeeded);
        assert!(
            walk.next_ready(&plan).is_none(),
            "`after` waits for the whole fan-out"
        );
        walk.ended(&plan, item(0), StepStatus::Succeeded);
        let after = walk.next_ready(&plan).expect("after");
        assert_eq!(plan.graph[after].id.as_str(), "after");
    }

    #[test]
    fn a_fan_out_that_allows_failure_runs_every_item_and_then_its_dependents() {
        let (plan, _dir) = plan(&[(
            "r.yaml",
            "name: r\nsteps:\n  - id: fan\n    for_each: [a, b, c]\n    max_parallel: 1\n    allow_failure: true\n    run: 'true'\n  - id: after\n    run: 'true'\n",
        )]);
        let (order, status) = walk_through(&plan, only_fails("fan[0]"));
        assert_eq!(order, ["fan[0]", "fan[1]", "fan[2]", "after"]);
        assert_eq!(status, Some(StepStatus::Succeeded));
    }

    #[test]
    fn a_failed_item_stops_the_fan_out_and_the_run() {
        let (plan, _dir) = plan(&[(
            "r.yaml",
            "name: r\nsteps:\n  - id: fan\n    for_each: [a, b, c]\n    max_parallel: 1\n    run: 'true'\n  - id: after\n    run: 'true'\n",
        )]);
        let (order, status) = walk_through(&plan, only_fails("fan[1]"));
        assert_eq!(order, ["fan[0]", "fan[1]"]);
        assert_eq!(status, Some(StepStatus::Failed));
    }

    #[test]
    fn each_item_of_a_fanned_out_call_runs_its_own_finally_before_the_next_item() {
        let (plan, _dir) = plan(&[
            (
                "r.yaml",
                "name: r\nsteps:\n  - id: roll\n    for_each: [n1, n2]\n    as: node\n    max_parallel: 1\n    call: node.yaml\n    with: { node: '{{ node }}' }\n",
            ),
            (
                "node.yaml",
                "name: node\nparams:\n  node: { type: string, required: true }\nsteps:\n  - id: restart\n    run: 'true'\nfinally:\n  - id: enable\n    run: 'true'\n",
            ),
        ]);
        let (order, status) = walk_through(&plan, |_| StepStatus::Succeeded);
        assert_eq!(
            order,
            [
                "roll[0]",
                "roll[0].restart",
                "roll[0].enable",
                "roll[1]",
                "roll[1].restart",
                "roll[1].enable"
            ]
        );
        assert_eq!(status, Some(StepStatus::Succeeded));
    }
}
