//! The validated runbook: the domain types every later stage works with.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::source::{SourceFile, Span};

/// A validated runbook file.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// `name:`.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// Declared inputs, in file order.
    pub params: Vec<Param>,
    /// Declared secrets, in file order.
    pub secrets: Vec<Secret>,
    /// SSH targets for `on:`.
    pub hosts: Vec<Host>,
    /// Environment for every command step.
    pub env: Vec<(String, Template)>,
    /// Defaults for every step.
    pub defaults: Defaults,
    /// The procedure, in file order. Shared, so that plan nodes point at a step without
    /// copying it.
    pub steps: Vec<Arc<Step>>,
    /// Steps run when the run ends, succeeded or failed.
    pub finally: Vec<Arc<Step>>,
    /// Requests sent when the run pauses for a person, fails or succeeds.
    pub notify: Vec<Notify>,
    /// The file it was read from.
    pub file: Arc<SourceFile>,
    /// For a block's steps: the steps around the block, which its templates may read too.
    pub enclosing: Vec<Arc<Step>>,
    /// For a block's steps: the `as` names of the fanned-out blocks around them (in scope).
    pub block_items: Vec<String>,
}

impl Runbook {
    /// A declared param by name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Every step, main steps then `finally` steps.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().chain(&self.finally).map(AsRef::as_ref)
    }

    /// A block's steps as a runbook of their own: the same file, params, hosts, env and
    /// defaults (what a block shares with the steps around it); the steps around it are
    /// readable from its templates; the run's secrets apply, none are declared again.
    #[must_use]
    pub fn of_block(&self, step: &Step) -> Self {
        let mut enclosing: Vec<Arc<Step>> = self.steps.clone();
        enclosing.extend(self.finally.iter().cloned());
        enclosing.extend(self.enclosing.iter().cloned());
        let mut block_items = self.block_items.clone();
        block_items.extend(step.for_each.as_ref().map(|f| f.as_name.clone()));
        let (steps, finally) = match &step.kind {
            StepKind::Block(block) => (block.steps.clone(), block.finally.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        Self {
            steps,
            finally,
            secrets: Vec::new(),
            notify: Vec::new(),
            enclosing,
            block_items,
            ..self.clone()
        }
    }
}

/// The type of a param.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number.
    Int,
    /// true / false.
    Bool,
    /// A list (YAML flow syntax on the command line: `[1, 2]`).
    List,
    /// A mapping (`{a: 1}`).
    Map,
}

impl ParamType {
    /// Every type's spelling, as written in a runbook.
    pub const NAMES: [&'static str; 5] = ["string", "int", "bool", "list", "map"];

    /// Reads a type's spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "string" => Some(Self::String),
            "int" => Some(Self::Int),
            "bool" => Some(Self::Bool),
            "list" => Some(Self::List),
            "map" => Some(Self::Map),
            _ => None,
        }
    }

    /// The spelling, as written in a runbook.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Bool => "bool",
            Self::List => "list",
            Self::Map => "map",
        }
    }

    /// Whether a JSON value has this type.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Int => value.is_i64() || value.is_u64(),
            Self::Bool => value.is_boolean(),
            Self::List => value.is_array(),
            Self::Map => value.is_object(),
        }
    }
}

/// A declared input.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name (`params.<name>`).
    pub name: String,
    /// Its type.
    pub ty: ParamType,
    /// Whether a value must be given.
    pub required: bool,
    /// The value used when none is given.
    pub default: Option<serde_json::Value>,
    /// What it is for.
    pub description: Option<String>,
    /// The only values it may take (`enum:`); empty: any value of its type.
    pub allowed: Vec<serde_json::Value>,
    /// A regex the whole of a string value must match (`pattern:`).
    pub pattern: Option<Pattern>,
    /// Where it is declared.
    pub span: Span,
}

impl Param {
    /// Why a value of the right type is still not one this param takes (`enum`, `pattern`).
    pub fn refuses(&self, value: &serde_json::Value) -> Option<String> {
        refused_choice(&self.allowed, value).or_else(|| {
            let pattern = self.pattern.as_ref()?;
            match value {
                serde_json::Value::String(s) if !pattern.matches(s) => Some(format!(
                    "`{s}` does not match its pattern `{}`",
                    pattern.text
                )),
                _ => None,
            }
        })
    }
}

/// Why a value is not one of `allowed` (an empty list allows every value).
pub fn refused_choice(allowed: &[serde_json::Value], value: &serde_json::Value) -> Option<String> {
    if allowed.is_empty() || allowed.contains(value) {
        return None;
    }
    Some(format!(
        "`{}` is not one of {}",
        shown_value(value),
        allowed
            .iter()
            .map(shown_value)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A value as a person writes it: strings without quotes, everything else as JSON.
pub fn shown_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `pattern:` — a regex that the whole of a string value must match.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written.
    pub text: String,
    /// Compiled, anchored at both ends.
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles a pattern (anchored: the whole value must match); `Err` is the regex's reason.
    pub fn new(text: &str) -> Result<Self, String> {
        regex::Regex::new(&format!("^(?:{text})$"))
            .map(|regex| Self {
                text: text.to_owned(),
                regex,
            })
            .map_err(|err| {
                err.to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid regex")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_owned()
            })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// A declared secret.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Its name (`secrets.<name>`).
    pub name: String,
    /// Where its value comes from.
    pub source: SecretSource,
    /// Where it is declared.
    pub span: Span,
}

/// Where a secret's value is read from at run start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (relative to the runbook's folder).
    File(PathBuf),
}

/// A named SSH target for `on:`.
#[derive(Debug, Clone)]
pub struct Host {
    /// The name steps use in `on:`.
    pub name: String,
    /// `user@host` (a template).
    pub ssh: Template,
    /// The SSH port (a template: it may come from a param).
    pub port: Option<Template>,
    /// A private key file.
    pub identity_file: Option<Template>,
    /// Extra `-o` options for ssh (templates), after `defaults.ssh.options`.
    pub options: Vec<Template>,
    /// Where it is declared.
    pub span: Span,
}

/// `defaults.ssh`: what every host (declared or ad hoc) gets unless it says otherwise.
#[derive(Debug, Clone, Default)]
pub struct SshDefaults {
    /// The SSH port.
    pub port: Option<Template>,
    /// A private key file.
    pub identity_file: Option<Template>,
    /// Extra `-o` options, before a host's own.
    pub options: Vec<Template>,
}

/// Defaults applied to every step.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Shell for `run:` scripts.
    pub shell: Option<String>,
    /// How many steps may run at once.
    pub max_parallel: Option<usize>,
    /// Retry policy.
    pub retry: Option<Retry>,
    /// Poll interval for `until`.
    pub interval: Option<Duration>,
    /// SSH settings for every host.
    pub ssh: SshDefaults,
}

/// A step's id: `[a-z][a-z0-9_]*`, unique in its runbook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId(pub String);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StepId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A template string (minijinja) with the span of the YAML scalar it was written in.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The text as written.
    pub text: String,
    /// Where the scalar is.
    pub span: Span,
}

/// A bare expression (`when`, `until`, `assert`, `for_each`), `{{ }}` already stripped.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The expression's source.
    pub text: String,
    /// Where the scalar is.
    pub span: Span,
}

/// A YAML value whose strings are templates (request bodies, `with:`, literal lists).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A templated string.
    Str(Template),
    /// A list.
    List(Vec<Value>),
    /// A mapping.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Every template inside, depth first.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Template>) {
        match self {
            Self::Str(t) => out.push(t),
            Self::List(items) => items.iter().for_each(|v| v.collect(out)),
            Self::Map(entries) => entries.iter().for_each(|(_, v)| v.collect(out)),
            Self::Null | Self::Bool(_) | Self::Int(_) | Self::Float(_) => {}
        }
    }
}

/// One step of the procedure.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id.
    pub id: StepId,
    /// Where the id is written.
    pub id_span: Span,
    /// Human title.
    pub name: Option<String>,
    /// Where the title is written (a template, like every string).
    pub name_span: Option<Span>,
    /// What the step does.
    pub kind: StepKind,
    /// Where its kind key is written.
    pub kind_span: Span,
    /// Explicit dependencies (`None`: the step written before it).
    pub needs: Option<Vec<(StepId, Span)>>,
    /// Condition; false means skipped.
    pub when: Option<Expr>,
    /// Fan-out.
    pub for_each: Option<ForEach>,
    /// How the items of a fan-out go (`max_parallel`, `batch`, `max_failures`, `gate`).
    pub fan: FanPolicy,
    /// Values extracted after success.
    pub outputs: Vec<Output>,
    /// Repeat until an expression holds.
    pub poll: Option<Poll>,
    /// Per-attempt timeout (for a poll: the whole poll's deadline; for a call: the whole group).
    pub timeout: Option<Setting<Duration>>,
    /// Wait before the first attempt (not counted in `timeout`).
    pub delay: Option<Duration>,
    /// What the step is for, for people (shown in the rehearsal and `show`).
    pub description: Option<String>,
    /// Retry on failure.
    pub retry: Option<Retry>,
    /// A failure does not fail the run.
    pub allow_failure: bool,
    /// Needs confirmation.
    pub destructive: bool,
    /// Safe to re-run blindly when it was in flight at a crash.
    pub idempotent: bool,
    /// Read-only: runs even in a dry-run.
    pub safe: bool,
    /// Probe whose success means the step's effect is already in place.
    pub check: Option<Probe>,
    /// Where it runs: hosts over SSH.
    pub on: Option<On>,
    /// Extra environment.
    pub env: Vec<(String, Template)>,
    /// Working directory.
    pub cwd: Option<Template>,
    /// Shell for `run:` scripts.
    pub shell: Option<String>,
    /// Whether the step is in `finally:`.
    pub is_finally: bool,
}

impl Step {
    /// The names of its outputs: those it declares, and those its kind always has (a
    /// transfer's `changed` and `sha256`).
    pub fn output_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
        match &self.kind {
            StepKind::Upload(_) | StepKind::Download(_) => names.extend(["changed", "sha256"]),
            // The values its approvers supply.
            StepKind::Manual(manual) => names.extend(manual.inputs.iter().map(|i| i.name.as_str())),
            _ => {}
        }
        names
    }
}

/// What a step does: exactly one kind per step.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// A command.
    Run(Command),
    /// One HTTP request.
    Http(HttpRequest),
    /// A person's step.
    Manual(Manual),
    /// Verifications.
    Assert(Vec<Expr>),
    /// A wait.
    Sleep(Duration),
    /// Another runbook inlined.
    Call(Call),
    /// A file, a folder or rendered content copied to a host.
    Upload(Upload),
    /// A file or folder copied from a host.
    Download(Download),
    /// Steps written in place, run as a group.
    Block(Block),
}

/// `manual:` — what a person is asked to do, and how their decision is taken.
#[derive(Debug, Clone)]
pub struct Manual {
    /// What to do (a template).
    pub instructions: Template,
    /// No decision within this long fails the step (fail closed).
    pub timeout: Option<Duration>,
    /// Approvals by distinct people needed (1 unless it says).
    pub approvers: u32,
    /// Values the approvers supply, in file order; they become the step's outputs.
    pub inputs: Vec<Input>,
}

/// One value a person supplies to a manual step (`inputs:`).
#[derive(Debug, Clone)]
pub struct Input {
    /// Its name (`steps.<id>.outputs.<name>`).
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// Its type.
    pub ty: ParamType,
    /// What it is, for the person asked.
    pub description: Option<String>,
    /// The only values it takes (`enum:`); empty: any value of its type.
    pub allowed: Vec<serde_json::Value>,
}

/// `block:` — steps written in place, run as one group (like a call of another runbook), with
/// its own `finally:` written beside `block:`.
#[derive(Debug, Clone)]
pub struct Block {
    /// Its steps, ids `ID.inner`.
    pub steps: Vec<Arc<Step>>,
    /// Run when the block ends, with `run.status` the block's status.
    pub finally: Vec<Arc<Step>>,
}

impl StepKind {
    /// The kind's key, as written.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Run(_) => "run",
            Self::Http(_) => "http",
            Self::Manual(_) => "manual",
            Self::Assert(_) => "assert",
            Self::Sleep(_) => "sleep",
            Self::Call(_) => "call",
            Self::Upload(_) => "upload",
            Self::Download(_) => "download",
            Self::Block(_) => "block",
        }
    }
}

/// A command to run.
#[derive(Debug, Clone)]
pub enum Command {
    /// A script for the shell.
    Script(Template),
    /// A program and its arguments, no shell.
    Argv(Vec<Template>),
}

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// GET, POST, …
    pub method: String,
    /// The URL (a template).
    pub url: Template,
    /// Request headers.
    pub headers: Vec<(String, Template)>,
    /// Request body.
    pub body: Option<HttpBody>,
    /// Request timeout.
    pub timeout: Option<Duration>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Accepted statuses (empty: any 2xx).
    pub expect_status: Vec<u16>,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum HttpBody {
    /// Sent as JSON.
    Json(Value),
    /// Sent as text.
    Text(Template),
}

/// `upload:` — what goes to the host, and where.
#[derive(Debug, Clone)]
pub struct Upload {
    /// A local file or folder, or content rendered here.
    pub source: UploadSource,
    /// Where on the host (a path ending in `/` is a folder).
    pub dest: Template,
    /// Permissions of what is written (`0644`).
    pub mode: Option<u32>,
}

/// What an upload sends.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A local path (relative to where runbook runs).
    Src(Template),
    /// Text rendered locally (a configuration file).
    Content(Template),
}

/// `download:` — what comes from the host, and where it goes.
#[derive(Debug, Clone)]
pub struct Download {
    /// The path on the host.
    pub src: Template,
    /// The local path (a path ending in `/` is a folder).
    pub dest: Template,
}

/// `on:` — the hosts a step runs on.
#[derive(Debug, Clone)]
pub struct On {
    /// What was written.
    pub targets: OnTargets,
    /// Where `on` is written.
    pub span: Span,
}

/// The forms `on:` takes.
#[derive(Debug, Clone)]
pub enum OnTargets {
    /// One string: a declared host, a destination, or a template (a string, a map, or a list).
    One(Template),
    /// A list: a fan-out, one node per host, even with one host.
    List(Vec<Value>),
}

/// A value a runbook gives literally or as a template over params (rendered before use).
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    /// Written as a value.
    Fixed(T),
    /// Written as a template (`"{{ params.batch }}"`).
    Template(Template),
}

/// A number of items: a count, or a percentage of the fan-out's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// That many items.
    Items(usize),
    /// That percentage of the items (1 to 100).
    Percent(u32),
}

impl Count {
    /// How many items of `total`: a percentage is rounded up, at least 1 (`floor`: rounded
    /// down instead, and 0 allowed — a failure budget).
    pub fn of(self, total: usize, floor: bool) -> usize {
        match self {
            Self::Items(n) => n,
            Self::Percent(p) => {
                let scaled = total * p as usize;
                if floor {
                    scaled / 100
                } else {
                    scaled.div_ceil(100).max(1)
                }
            }
        }
    }
}

/// `batch:` — successive batch sizes, each given or a template; or one template that renders
/// to a size or a list of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Sizes as written (the last repeats).
    Sizes(Vec<Setting<Count>>),
    /// A template over params that renders to a size or a list of sizes.
    Template(Template),
}

/// How the items of a fan-out go.
#[derive(Debug, Clone, Default)]
pub struct FanPolicy {
    /// At most this many items at once.
    pub max_parallel: Option<Setting<Count>>,
    /// Successive batch sizes (the last repeats); a batch ends before the next starts.
    pub batch: Option<Batch>,
    /// Failed items tolerated across batches.
    pub max_failures: Option<Setting<Count>>,
    /// A probe that must hold after each batch.
    pub gate: Option<Gate>,
}

impl FanPolicy {
    /// Whether any field is set.
    pub fn is_set(&self) -> bool {
        self.max_parallel.is_some()
            || self.batch.is_some()
            || self.max_failures.is_some()
            || self.gate.is_some()
    }
}

/// `gate:` — a probe that must hold after each batch of a fan-out.
#[derive(Debug, Clone)]
pub struct Gate {
    /// What it runs.
    pub probe: ProbeKind,
    /// The host it runs on (`on:`): its command runs there, its request is sent from there.
    pub on: Option<Template>,
    /// When it holds (`result` in scope).
    pub until: Expr,
    /// Wait between polls.
    pub interval: Option<Duration>,
    /// How long it may take to hold.
    pub timeout: Option<Duration>,
    /// Where `gate` is written.
    pub span: Span,
}

/// Another runbook run as part of this one.
#[derive(Debug, Clone)]
pub struct Call {
    /// The path as written (relative to the calling file).
    pub path: String,
    /// Where the path is written.
    pub path_span: Span,
    /// Params passed to the called runbook.
    pub with: Vec<(String, Value, Span)>,
}

/// Fan-out over a list.
#[derive(Debug, Clone)]
pub struct ForEach {
    /// Where the items come from.
    pub items: ForEachItems,
    /// The item's name inside the step.
    pub as_name: String,
    /// Where `for_each` is written.
    pub span: Span,
}

/// The list a `for_each` goes over.
#[derive(Debug, Clone)]
pub enum ForEachItems {
    /// A literal list.
    List(Vec<Value>),
    /// An expression yielding a list.
    Expr(Expr),
}

/// A named output.
#[derive(Debug, Clone)]
pub struct Output {
    /// `steps.<id>.outputs.<name>`.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// Its template (`result` in scope).
    pub template: Template,
}

/// Repeat a step until an expression holds.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The expression (`result` in scope).
    pub until: Expr,
    /// Stop polling and fail at once when this holds (`result` in scope).
    pub fail_when: Option<Expr>,
    /// Wait between attempts as written (else `defaults.interval`, else
    /// [`Poll::DEFAULT_INTERVAL`]).
    pub interval: Option<Setting<Duration>>,
}

impl Poll {
    /// The wait between polls when neither the step nor `defaults` says.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
}

/// Retry on failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Total attempts, the first included.
    pub attempts: Setting<u32>,
    /// Wait before the second attempt.
    pub delay: Duration,
    /// Factor applied to the wait after each attempt.
    pub backoff: f64,
    /// Upper bound of a wait.
    pub max_delay: Option<Duration>,
}

impl Retry {
    /// The wait after attempt `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self
            .backoff
            .powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let wait = self.delay.mul_f64(factor.min(1e9));
        self.max_delay.map_or(wait, |max| wait.min(max))
    }
}

/// A probe: succeeds when a step's effect is already in place.
#[derive(Debug, Clone)]
pub struct Probe {
    /// What the probe runs.
    pub kind: ProbeKind,
    /// The host it runs on (`on:`), instead of its step's.
    pub on: Option<Template>,
    /// Where `check` is written.
    pub span: Span,
}

/// What a probe runs.
#[derive(Debug, Clone)]
pub enum ProbeKind {
    /// A command; exit 0 means in place.
    Run(Command),
    /// A request; an expected status means in place.
    Http(HttpRequest),
}

/// `notify:` — an HTTP request sent when the run ends in one of the statuses in `on`.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The statuses it is sent on.
    pub on: Vec<NotifyOn>,
    /// The request (templates over params, secrets and `run`).
    pub http: HttpRequest,
}

/// A run status a notification is sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    /// The run waits for a person at a manual step.
    Paused,
    /// A step failed.
    Failed,
    /// The run succeeded.
    Succeeded,
}

impl NotifyOn {
    /// Every value, as written.
    pub const ALL: [(&'static str, Self); 3] = [
        ("paused", Self::Paused),
        ("failed", Self::Failed),
        ("succeeded", Self::Succeeded),
    ];

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::Succeeded => "succeeded",
        }
    }
}
