//! Building the graph: step-level order and cycles, `call:` inlining, `for_each` expansion.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{Map, Value};

use super::ancestry::Ancestry;
use super::hosts;
use super::model::{Phase, Plan, PlanNode, Role, Scope};
use super::node_id::{ItemKey, NodeId};
use super::params::{self, ParamError, ParamInput};
use super::references;
use crate::diagnostic::Diagnostic;
use crate::limits;
use crate::spec::{self, ForEachItems, Runbook, Step, StepKind};
use crate::template;

/// Why a runbook could not be compiled into a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Located mistakes in the runbook or a file it calls.
    #[error("{} mistake(s) in the runbook", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// Params that are missing, unknown or of the wrong type.
    #[error("invalid params")]
    Params(Vec<ParamError>),
}

/// The checks of a runbook file on its own: dependency cycles and every template.
pub fn static_checks(runbook: &Runbook) -> Vec<Diagnostic> {
    let main = Ancestry::new(&runbook.steps);
    let finally = Ancestry::new(&runbook.finally);
    let mut out = step_cycles(&runbook.steps, runbook, &main);
    out.extend(step_cycles(&runbook.finally, runbook, &finally));
    out.extend(references::check(runbook, &main, &finally));
    for step in runbook.all_steps() {
        if let StepKind::Block(_) = &step.kind {
            out.extend(static_checks(&runbook.of_block(step)));
        }
    }
    out
}

/// Compiles a runbook. With `params`, required params must be given and `for_each` lists that
/// depend only on params are expanded; without, defaults are used and anything unknown stays
/// for run time (what `validate` and `graph` need).
pub fn compile(runbook: Runbook, input: Option<&ParamInput>) -> Result<Plan, PlanError> {
    let params = match input {
        Some(input) => params::resolve(&runbook, input).map_err(PlanError::Params)?,
        None => runbook
            .params
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
            .collect(),
    };
    let mut builder = Builder {
        graph: DiGraph::new(),
        runbooks: Vec::new(),
        scopes: Vec::new(),
        diagnostics: Vec::new(),
        loaded: HashMap::new(),
        callees: HashMap::new(),
        blocks: HashMap::new(),
        root_params: params.clone(),
        complete: input.is_some(),
    };
    let root = builder.add_runbook(runbook);
    builder.scopes.push(Scope {
        group: None,
        runbook: root,
        caller: None,
        with: Vec::new(),
        item: None,
        block: false,
    });
    // The call stack holds canonical paths, as `load_call` compares them.
    let root_path = &builder.runbooks[root].file.path;
    let mut stack = vec![std::fs::canonicalize(root_path).unwrap_or_else(|_| root_path.clone())];
    if builder.diagnostics.is_empty() {
        builder.add_scope(0, &[], Phase::Main, &mut stack);
        builder.add_finally();
    }
    if !builder.diagnostics.is_empty() {
        return Err(PlanError::Invalid(in_reading_order(builder.diagnostics)));
    }
    let order = topological_order(&builder.graph);
    Ok(Plan {
        graph: builder.graph,
        runbooks: builder.runbooks,
        scopes: builder.scopes,
        params,
        order,
        callees: builder.callees,
    })
}

/// Adds one item of a fanned-out call whose list became known at run time: a call node `id`
/// (standing in the plan beside `stand_in`, without edges: the scheduler admits it) and a new
/// scope holding every step of the called runbook, `finally` included. Returns the call node.
pub fn add_call_item(
    plan: &mut Plan,
    stand_in: NodeIndex,
    id: &NodeId,
    item: (String, Value),
) -> Result<NodeIndex, Vec<Diagnostic>> {
    let node = plan.graph[stand_in].clone();
    let group = match &node.step.kind {
        StepKind::Call(call) => GroupSource::Call(call),
        StepKind::Block(_) => GroupSource::Block,
        _ => return Err(Vec::new()),
    };
    let mut builder = Builder {
        graph: std::mem::take(&mut plan.graph),
        runbooks: std::mem::take(&mut plan.runbooks),
        scopes: std::mem::take(&mut plan.scopes),
        diagnostics: Vec::new(),
        loaded: HashMap::new(),
        callees: std::mem::take(&mut plan.callees),
        blocks: HashMap::new(),
        root_params: plan.params.clone(),
        complete: true,
    };
    for (index, runbook) in builder.runbooks.iter().enumerate() {
        let path = &runbook.file.path;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        builder.loaded.entry(canonical).or_insert(index);
    }
    let caller = &builder.runbooks[builder.scopes[node.scope].runbook]
        .file
        .path;
    let mut stack = vec![std::fs::canonicalize(caller).unwrap_or_else(|_| caller.clone())];
    let first_scope = builder.scopes.len();
    let entry = builder.link(
        PlanNode {
            id: id.clone(),
            role: Role::CallEntry { scope: usize::MAX },
            ..node.clone()
        },
        &[],
    );
    if let (GroupSource::Block, Some(&callee)) = (group, builder.callees.get(&stand_in)) {
        // The block's runbook was made when the plan was built: use that one.
        let caller = builder.scopes[node.scope].runbook;
        builder
            .blocks
            .insert((caller, Arc::as_ptr(&node.step) as usize), callee);
    }
    builder.add_group(
        node.scope,
        &node.step,
        group,
        entry,
        id,
        Some(item),
        &mut stack,
    );
    for scope in first_scope..builder.scopes.len() {
        let mut stack = Vec::new();
        builder.add_scope(scope, &[], Phase::Finally, &mut stack);
    }
    plan.graph = builder.graph;
    plan.runbooks = builder.runbooks;
    plan.scopes = builder.scopes;
    plan.callees = builder.callees;
    if builder.diagnostics.is_empty() {
        Ok(entry)
    } else {
        Err(builder.diagnostics)
    }
}

struct Builder {
    graph: DiGraph<PlanNode, ()>,
    runbooks: Vec<Arc<Runbook>>,
    scopes: Vec<Scope>,
    diagnostics: Vec<Diagnostic>,
    /// Canonical path → runbook index, so a file called twice is read and checked once.
    loaded: HashMap<PathBuf, usize>,
    /// Fanned-out calls known only at run time → their called runbook.
    callees: HashMap<NodeIndex, usize>,
    /// Blocks already turned into runbooks: (their runbook, the block step's address).
    blocks: HashMap<(usize, usize), usize>,
    root_params: Map<String, Value>,
    /// Whether every param has its run value (false for `validate`, which uses defaults only).
    complete: bool,
}

impl Builder {
    /// Registers a runbook and runs the checks that belong to the file itself.
    fn add_runbook(&mut self, runbook: Runbook) -> usize {
        self.diagnostics.extend(static_checks(&runbook));
        let canonical =
            std::fs::canonicalize(&runbook.file.path).unwrap_or_else(|_| runbook.file.path.clone());
        self.runbooks.push(Arc::new(runbook));
        let index = self.runbooks.len() - 1;
        self.loaded.insert(canonical, index);
        index
    }

    /// Adds one scope's main steps; returns the scope's exit nodes (what its dependents wait for).
    fn add_scope(
        &mut self,
        scope: usize,
        entry: &[NodeIndex],
        phase: Phase,
        stack: &mut Vec<PathBuf>,
    ) -> Vec<NodeIndex> {
        let runbook = Arc::clone(&self.runbooks[self.scopes[scope].runbook]);
        let steps = if phase == Phase::Main {
            &runbook.steps
        } else {
            &runbook.finally
        };
        let group = self.scopes[scope].group.clone();
        let mut exits: HashMap<&str, Vec<NodeIndex>> = HashMap::with_capacity(steps.len());
        let mut depended: HashSet<&str> = HashSet::with_capacity(steps.len());
        for index in step_order(steps) {
            let step = &steps[index];
            let deps: Vec<NodeIndex> = match step.deps(steps, index) {
                Some(names) => {
                    let mut deps = Vec::new();
                    for name in names {
                        depended.insert(name);
                        if let Some(e) = exits.get(name) {
                            deps.extend(e);
                        }
                    }
                    if deps.is_empty() {
                        entry.to_vec()
                    } else {
                        deps
                    }
                }
                None => entry.to_vec(),
            };
            let id = NodeId::within(group.as_ref(), step.id.as_str());
            let created = self.add_step(scope, step, &id, &deps, phase, stack);
            exits.insert(
                step.id.as_str(),
                if created.is_empty() { deps } else { created },
            );
        }
        let mut out: Vec<NodeIndex> = steps
            .iter()
            .filter(|s| !depended.contains(s.id.as_str()))
            .flat_map(|s| exits.get(s.id.as_str()).cloned().unwrap_or_default())
            .collect();
        out.sort();
        out.dedup();
        if out.is_empty() { entry.to_vec() } else { out }
    }

    /// Adds the nodes of one step; returns the nodes its dependents wait for.
    fn add_step(
        &mut self,
        scope: usize,
        step: &Arc<Step>,
        id: &NodeId,
        deps: &[NodeIndex],
        phase: Phase,
        stack: &mut Vec<PathBuf>,
    ) -> Vec<NodeIndex> {
        let node = |role: Role, id: NodeId| PlanNode {
            id,
            local_id: step.id.0.clone(),
            scope,
            step: Arc::clone(step),
            role,
            phase,
        };
        let group = match &step.kind {
            StepKind::Call(call) => Some(GroupSource::Call(call)),
            StepKind::Block(_) => Some(GroupSource::Block),
            _ => None,
        };
        if let Some(group) = group {
            return self.add_group_step(scope, step, group, id, deps, phase, stack);
        }
        if let Some(fe) = &step.for_each {
            return match self.static_items(scope, &fe.items) {
                // An empty list still has a node: the step ends at run time, with no items.
                Some(items) if items.is_empty() => {
                    vec![self.link(node(Role::DynamicFanOut, id.clone()), deps)]
                }
                Some(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(index, value)| {
                        self.link(
                            node(Role::Item { index, value }, id.item(ItemKey::Index(index))),
                            deps,
                        )
                    })
                    .collect(),
                None => vec![self.link(node(Role::DynamicFanOut, id.clone()), deps)],
            };
        }
        match self.static_hosts(scope, step) {
            Hosts::Single => vec![self.link(node(Role::Step, id.clone()), deps)],
            Hosts::Items(specs) => match hosts::keys_of(&specs) {
                Ok(keys) => specs
                    .into_iter()
                    .zip(keys)
                    .enumerate()
                    .map(|(index, (value, key))| {
                        self.link(
                            node(Role::Item { index, value }, id.item(ItemKey::Host(&key))),
                            deps,
                        )
                    })
                    .collect(),
                Err(message) => {
                    let span = step.on.as_ref().map_or(step.kind_span, |on| on.span);
                    self.diagnostics.push(
                        Diagnostic::new(
                            &self.runbooks[self.scopes[scope].runbook].file,
                            span,
                            message,
                        )
                        .label("in this `on:`"),
                    );
                    Vec::new()
                }
            },
            // Known at run time, or no host at all (the step is then skipped: "no hosts").
            Hosts::AtRunTime => {
                vec![self.link(node(Role::DynamicFanOut, id.clone()), deps)]
            }
        }
    }

    /// Adds a call or a block: one group, one per item of a `for_each` known now, or one node
    /// that expands into them at run time; returns the nodes its dependents wait for.
    #[expect(
        clippy::too_many_arguments,
        reason = "the same shape as add_step, which it serves"
    )]
    fn add_group_step(
        &mut self,
        scope: usize,
        step: &Arc<Step>,
        group: GroupSource<'_>,
        id: &NodeId,
        deps: &[NodeIndex],
        phase: Phase,
        stack: &mut Vec<PathBuf>,
    ) -> Vec<NodeIndex> {
        let node = |role: Role, id: NodeId| PlanNode {
            id,
            local_id: step.id.0.clone(),
            scope,
            step: Arc::clone(step),
            role,
            phase,
        };
        let Some(fan) = &step.for_each else {
            let entry = self.link(
                node(Role::CallEntry { scope: usize::MAX }, id.clone()),
                deps,
            );
            return self.add_group(scope, step, group, entry, id, None, stack);
        };
        let items = self.static_items(scope, &fan.items);
        if items.is_none() && !self.complete && reads_only_params(&fan.items) {
            // Without param values the list is unknown: check the group once, as item `*`.
            let item_id = id.item(ItemKey::Any);
            let entry = self.link(
                node(Role::CallEntry { scope: usize::MAX }, item_id.clone()),
                deps,
            );
            return self.add_group(
                scope,
                step,
                group,
                entry,
                &item_id,
                Some((fan.as_name.clone(), Value::Null)),
                stack,
            );
        }
        let Some(items) = items.filter(|i| !i.is_empty()) else {
            // Known only at run time (or empty: the step then ends with no items): one node
            // expands when it becomes ready. A called runbook is read and checked now.
            let Some((callee, pushed)) = self.open_group(scope, step, group, stack) else {
                return Vec::new();
            };
            if pushed {
                stack.pop();
            }
            let fan_out = self.link(node(Role::DynamicFanOut, id.clone()), deps);
            self.callees.insert(fan_out, callee);
            return vec![fan_out];
        };
        // How many items run at once is the scheduler's to decide (`max_parallel`,
        // batches): here every item waits for the step's dependencies only.
        let mut per_item: Vec<Vec<NodeIndex>> = Vec::new();
        for (index, value) in items.into_iter().enumerate() {
            let item_id = id.item(ItemKey::Index(index));
            let entry = self.link(
                node(Role::CallEntry { scope: usize::MAX }, item_id.clone()),
                deps,
            );
            let exits = self.add_group(
                scope,
                step,
                group,
                entry,
                &item_id,
                Some((fan.as_name.clone(), value)),
                stack,
            );
            per_item.push(exits);
        }
        per_item.into_iter().flatten().collect()
    }

    /// How a step's `on:` fans out, when it can be known before the run: a list of literals
    /// or of templates over params (in the run's own runbook).
    fn static_hosts(&self, scope: usize, step: &Step) -> Hosts {
        let Some(on) = &step.on else {
            return Hosts::Single;
        };
        let ctx = template::to_value(&serde_json::json!({ "params": self.root_params }));
        match &on.targets {
            spec::OnTargets::One(t) if !t.text.contains("{{") => Hosts::Single,
            spec::OnTargets::One(t) => {
                let only_params = references::roots(spec::values::strip_braces(&t.text))
                    .is_some_and(|roots| roots.iter().all(|r| r == "params"));
                if scope != 0 || !only_params {
                    return Hosts::AtRunTime;
                }
                match template::render(&t.text, &ctx) {
                    Ok(Value::Array(items)) if !items.is_empty() => Hosts::Items(items),
                    // No host (skipped then, "no hosts"), or a render error: reported at run time.
                    Ok(Value::Array(_)) | Err(_) => Hosts::AtRunTime,
                    Ok(_) => Hosts::Single,
                }
            }
            spec::OnTargets::List(values) => {
                if values.is_empty() {
                    return Hosts::AtRunTime;
                }
                let rendered: Option<Vec<Value>> = values
                    .iter()
                    .map(|v| {
                        if scope != 0 && !v.templates().iter().all(|t| !t.text.contains("{{")) {
                            return None;
                        }
                        render_value(v, &ctx)
                    })
                    .collect();
                rendered.map_or(Hosts::AtRunTime, Hosts::Items)
            }
        }
    }

    /// The runbook a group runs: a called one (read and checked, and pushed on the call stack:
    /// `true`), or a block's steps as a runbook of their own.
    fn open_group(
        &mut self,
        scope: usize,
        step: &Step,
        group: GroupSource<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<(usize, bool)> {
        match group {
            GroupSource::Call(call) => self.load_call(scope, step, call, stack).map(|c| (c, true)),
            GroupSource::Block => {
                let caller = self.scopes[scope].runbook;
                let key = (caller, std::ptr::from_ref(step) as usize);
                if let Some(&index) = self.blocks.get(&key) {
                    return Some((index, false));
                }
                // Checked with the file it is written in (`static_checks`).
                self.runbooks
                    .push(Arc::new(self.runbooks[caller].of_block(step)));
                let index = self.runbooks.len() - 1;
                self.blocks.insert(key, index);
                Some((index, false))
            }
        }
    }

    /// Adds a group (a called runbook, or a block) in a new scope behind its entry node;
    /// returns the scope's exits.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per shape of group; a struct would only rename them"
    )]
    fn add_group(
        &mut self,
        scope: usize,
        step: &Step,
        group: GroupSource<'_>,
        entry: NodeIndex,
        id: &NodeId,
        item: Option<(String, Value)>,
        stack: &mut Vec<PathBuf>,
    ) -> Vec<NodeIndex> {
        let Some((callee, pushed)) = self.open_group(scope, step, group, stack) else {
            return vec![entry];
        };
        let with = match group {
            GroupSource::Call(call) => call
                .with
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect(),
            GroupSource::Block => Vec::new(),
        };
        self.scopes.push(Scope {
            group: Some(id.clone()),
            runbook: callee,
            caller: Some(scope),
            with,
            item,
            block: matches!(group, GroupSource::Block),
        });
        let called = self.scopes.len() - 1;
        if let Role::CallEntry { scope } = &mut self.graph[entry].role {
            *scope = called;
        }
        let exits = self.add_scope(called, &[entry], Phase::Main, stack);
        if pushed {
            stack.pop();
        }
        exits
    }

    fn link(&mut self, node: PlanNode, deps: &[NodeIndex]) -> NodeIndex {
        let index = self.graph.add_node(node);
        for &dep in deps {
            self.graph.add_edge(dep, index, ());
        }
        index
    }

    /// Root `finally:` steps, then every called runbook's, each list in its own order.
    fn add_finally(&mut self) {
        for scope in 0..self.scopes.len() {
            let mut stack = Vec::new();
            self.add_scope(scope, &[], Phase::Finally, &mut stack);
        }
    }

    /// The items of a `for_each` when they are known before the run: a literal list, or an
    /// expression over params only. `None`: expand at run time.
    fn static_items(&self, scope: usize, items: &ForEachItems) -> Option<Vec<Value>> {
        if scope != 0 {
            // A called runbook's params come from `with:`, which may need run-time values.
            return None;
        }
        let ctx = template::to_value(&serde_json::json!({ "params": self.root_params }));
        match items {
            ForEachItems::List(values) => values.iter().map(|v| render_value(v, &ctx)).collect(),
            ForEachItems::Expr(expr) => {
                let roots = references::roots(&expr.text)?;
                if roots.iter().any(|r| r != "params") {
                    return None;
                }
                let value = template::eval(&expr.text, &ctx).ok()?;
                match template::to_json_value(&value).ok()? {
                    Value::Array(items) => Some(items),
                    _ => None,
                }
            }
        }
    }

    fn load_call(
        &mut self,
        scope: usize,
        step: &Step,
        call: &spec::Call,
        stack: &mut Vec<PathBuf>,
    ) -> Option<usize> {
        let caller = Arc::clone(&self.runbooks[self.scopes[scope].runbook]);
        let base = caller.file.path.parent().unwrap_or_else(|| Path::new("."));
        let path = base.join(&call.path);
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if stack.contains(&canonical) {
            let chain: Vec<String> = stack
                .iter()
                .chain([&canonical])
                .map(|p| {
                    // Shown as the user named them, not as absolute paths.
                    self.loaded.get(p).map_or_else(
                        || spec::source::display_path(p),
                        |&i| self.runbooks[i].file.display_path(),
                    )
                })
                .collect();
            self.diagnostics.push(
                Diagnostic::new(
                    &caller.file,
                    call.path_span,
                    format!("call cycle: step `{}` calls `{}` again", step.id, call.path),
                )
                .label("already being called")
                .hint(format!(
                    "the calls go {}; a runbook cannot call itself, directly or through another",
                    chain.join(" → ")
                )),
            );
            return None;
        }
        let index = if let Some(&index) = self.loaded.get(&canonical) {
            index
        } else {
            match spec::load(&path) {
                Ok(runbook) => self.add_runbook(runbook),
                Err(spec::LoadError::Read { source, .. }) => {
                    self.diagnostics.push(
                        Diagnostic::new(
                            &caller.file,
                            call.path_span,
                            format!("cannot read called runbook `{}`: {source}", call.path),
                        )
                        .label("called here")
                        .hint(format!(
                            "the path is relative to this file's folder: {}",
                            spec::source::display_path(&path)
                        )),
                    );
                    return None;
                }
                Err(spec::LoadError::Invalid { diagnostics, .. }) => {
                    self.diagnostics.extend(diagnostics);
                    return None;
                }
            }
        };
        self.check_with(&caller, call, &self.runbooks[index].clone());
        stack.push(canonical);
        Some(index)
    }

    /// `with:` against the called runbook's params.
    fn check_with(&mut self, caller: &Runbook, call: &spec::Call, callee: &Runbook) {
        let declared: Vec<&str> = callee.params.iter().map(|p| p.name.as_str()).collect();
        for (name, value, span) in &call.with {
            match callee.param(name) {
                None => self.diagnostics.push(
                    Diagnostic::new(
                        &caller.file,
                        *span,
                        format!("`{}` has no param `{name}`", call.path),
                    )
                    .label("not declared by the called runbook")
                    .maybe_hint(
                        spec::suggest::did_you_mean(name, declared.iter().copied())
                            .or_else(|| Some(format!("it declares: {}", declared.join(", ")))),
                    ),
                ),
                Some(p) => {
                    if let Some(literal) = literal_json(value)
                        && !p.ty.accepts(&literal)
                    {
                        self.diagnostics.push(
                            Diagnostic::new(
                                &caller.file,
                                *span,
                                format!(
                                    "param `{name}` of `{}` is a {}, got {literal}",
                                    call.path,
                                    p.ty.name()
                                ),
                            )
                            .label("wrong type"),
                        );
                    }
                }
            }
        }
        for p in &callee.params {
            if p.required && !call.with.iter().any(|(n, _, _)| n == &p.name) {
                self.diagnostics.push(
                    Diagnostic::new(
                        &caller.file,
                        call.path_span,
                        format!("call of `{}` lacks required param `{}`", call.path, p.name),
                    )
                    .label("called here")
                    .hint(format!("add `with: {{ {}: … }}`", p.name)),
                );
            }
        }
    }
}

/// What a group runs.
#[derive(Clone, Copy)]
enum GroupSource<'s> {
    /// Another runbook file.
    Call(&'s spec::Call),
    /// Steps written in place.
    Block,
}

/// How a step's `on:` turns into nodes.
enum Hosts {
    /// One node (no `on:`, or one host).
    Single,
    /// One node per host, known now.
    Items(Vec<Value>),
    /// One node that expands when it becomes ready.
    AtRunTime,
}

/// Whether a `for_each` list reads nothing but params, so that it is known before the run once
/// the params are given. (A list that does not parse is reported on its own.)
fn reads_only_params(items: &ForEachItems) -> bool {
    match items {
        ForEachItems::Expr(expr) => {
            references::roots(&expr.text).is_none_or(|roots| roots.iter().all(|r| r == "params"))
        }
        ForEachItems::List(values) => values.iter().flat_map(spec::Value::templates).all(|t| {
            limits::check(&t.text, false).is_err()
                || template::environment()
                    .template_from_str(&t.text)
                    .map_or(true, |t| {
                        t.undeclared_variables(false)
                            .iter()
                            .all(|n| n == "params" || template::GLOBALS.contains(&n.as_str()))
                    })
        }),
    }
}

/// A value's JSON when it holds no template at all.
fn literal_json(value: &spec::Value) -> Option<Value> {
    if value
        .templates()
        .iter()
        .any(|t| t.text.contains("{{") || t.text.contains("{%"))
    {
        return None;
    }
    render_value(value, &minijinja::Value::from(()))
}

/// Renders every template in a value.
pub fn render_value(value: &spec::Value, ctx: &minijinja::Value) -> Option<Value> {
    render_value_with(value, &mut |t| template::render(&t.text, ctx).ok())
}

/// Renders every template in a value with a caller-supplied renderer.
pub fn render_value_with(
    value: &spec::Value,
    render: &mut dyn FnMut(&spec::Template) -> Option<Value>,
) -> Option<Value> {
    Some(match value {
        spec::Value::Null => Value::Null,
        spec::Value::Bool(b) => Value::Bool(*b),
        spec::Value::Int(i) => Value::from(*i),
        spec::Value::Float(f) => Value::from(*f),
        spec::Value::Str(t) => render(t)?,
        spec::Value::List(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value_with(v, render))
                .collect::<Option<_>>()?,
        ),
        spec::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| render_value_with(v, render).map(|v| (k.clone(), v)))
                .collect::<Option<_>>()?,
        ),
    })
}

impl Step {
    /// The ids this step waits for: `needs`, else the step written before it.
    pub fn deps<'a>(&'a self, steps: &'a [Arc<Step>], index: usize) -> Option<Vec<&'a str>> {
        match &self.needs {
            // Unknown ids were reported by `spec`; callers look ids up and skip what is missing.
            Some(needs) => Some(needs.iter().map(|(id, _)| id.as_str()).collect()),
            None if index > 0 => Some(vec![steps[index - 1].id.as_str()]),
            None => None,
        }
    }
}

/// Step indices in dependency order, file order among equals (Kahn's algorithm).
fn step_order(steps: &[Arc<Step>]) -> Vec<usize> {
    let index_of: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut waiting = vec![0usize; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for dep in step.deps(steps, i).unwrap_or_default() {
            if let Some(&d) = index_of.get(dep) {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..steps.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order
}

/// Every dependency cycle among steps, each named whole and located at its first step's `needs`.
fn step_cycles(steps: &[Arc<Step>], runbook: &Runbook, order: &Ancestry<'_>) -> Vec<Diagnostic> {
    if order.is_acyclic() {
        // The order's graph has every edge used below (and self-dependencies): no cycle here.
        return Vec::new();
    }
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    // A repeated id names its first step and a step needing itself is left out: `spec` reports
    // both, and when `validate` checks such a runbook anyway they must not look like cycles.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        index_of.entry(s.id.as_str()).or_insert(i);
    }
    for (i, step) in steps.iter().enumerate() {
        for dep in step.deps(steps, i).unwrap_or_default() {
            if let Some(&d) = index_of.get(dep).filter(|&&d| d != i) {
                graph.add_edge(nodes[d], nodes[i], ());
            }
        }
    }
    let mut out = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let is_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !is_cycle {
            continue;
        }
        let mut members: Vec<usize> = scc.iter().map(|n| graph[*n]).collect();
        members.sort_unstable();
        let names: Vec<&str> = members.iter().map(|&i| steps[i].id.as_str()).collect();
        let first = &steps[members[0]];
        let span = first
            .needs
            .as_ref()
            .and_then(|n| {
                n.iter()
                    .find(|(id, _)| names.contains(&id.as_str()))
                    .map(|(_, s)| *s)
            })
            .unwrap_or(first.id_span);
        let mut ring = names.clone();
        ring.push(names[0]);
        out.push(
            Diagnostic::new(
                &runbook.file,
                span,
                format!("dependency cycle: {}", ring.join(" → ")),
            )
            .label("this dependency closes the cycle")
            .hint(format!(
                "the steps {} wait for each other; remove one of the `needs` between them",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
    out
}

/// Diagnostics file by file (in the order each file was first reported), top to bottom.
fn in_reading_order(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in &diagnostics {
        if !files.contains(&d.at.file.path) {
            files.push(d.at.file.path.clone());
        }
    }
    diagnostics.sort_by_key(|d| {
        let file = files.iter().position(|f| *f == d.at.file.path);
        (file, d.at.span.offset)
    });
    diagnostics
}

/// Graph nodes in dependency order, creation order among equals.
fn topological_order(graph: &DiGraph<PlanNode, ()>) -> Vec<NodeIndex> {
    let mut waiting: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = graph
        .node_indices()
        .filter(|n| waiting[n.index()] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for d in graph.neighbors_directed(n, petgraph::Direction::Outgoing) {
            waiting[d.index()] -= 1;
            if waiting[d.index()] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order
}
