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
    /// The file it was read from.
    pub file: Arc<SourceFile>,
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
    /// Where it is declared.
    pub span: Span,
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
    /// Extra `-o` options for ssh.
    pub options: Vec<String>,
    /// Where it is declared.
    pub span: Span,
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
    /// Values extracted after success.
    pub outputs: Vec<Output>,
    /// Repeat until an expression holds.
    pub poll: Option<Poll>,
    /// Per-attempt timeout (for a poll: the whole poll's deadline).
    pub timeout: Option<Duration>,
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
    /// SSH targets.
    pub on: Vec<(String, Span)>,
    /// Extra environment.
    pub env: Vec<(String, Template)>,
    /// Working directory.
    pub cwd: Option<Template>,
    /// Shell for `run:` scripts.
    pub shell: Option<String>,
    /// Whether the step is in `finally:`.
    pub is_finally: bool,
}

/// What a step does: exactly one kind per step.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// A command.
    Run(Command),
    /// One HTTP request.
    Http(HttpRequest),
    /// Human instructions.
    Manual(Template),
    /// Verifications.
    Assert(Vec<Expr>),
    /// A wait.
    Sleep(Duration),
    /// Another runbook inlined.
    Call(Call),
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
    /// How many items run at once.
    pub max_parallel: Option<usize>,
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
    /// Wait between attempts.
    pub interval: Duration,
}

/// Retry on failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Total attempts, the first included.
    pub attempts: u32,
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
