//! The JSON Schema of a runbook file, for editors and `runbook schema`.
//!
//! The types below mirror the file format key for key, only so that schemars can generate
//! `schemas/runbook.schema.json`; nothing is ever deserialized into them. Runbooks are read by the
//! hand-written decoder in [`super::step`] and [`super::runbook`], which collects every mistake with
//! its line and column. The schema gives editors completion, hover text (the `///` comments below,
//! written for operators) and early squiggles; `runbook validate` remains the authority, and checks
//! much the schema cannot (templates, references between steps, cycles).
//!
//! A test (`tests/cli/schema.rs`) keeps the checked-in file equal to [`schema_json`] and checks every
//! runbook under `runbooks/` against it.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

/// The schema's identifier (`$id`). Versioned with the file format.
pub const SCHEMA_ID: &str = "urn:runbook:schema:runbook:v1";

/// Step ids, param names, output names and `as` names: `[a-z][a-z0-9_]*`.
const ID_PATTERN: &str = "^[a-z][a-z0-9_]*$";

/// Runbook names: `[a-z0-9][a-z0-9_-]*`.
const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";

/// Durations: one or more `<whole number><unit>` parts.
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

/// The JSON Schema of a runbook file: pretty JSON ending with a newline, keys sorted so the text
/// does not depend on which `serde_json` features the build enables.
pub fn schema_json() -> String {
    let settings = SchemaSettings::draft2020_12().with_transform(RecursiveTransform(tidy));
    let schema = settings
        .into_generator()
        .into_root_schema_for::<RunbookFile>();
    let value = sorted(schema.to_value());
    // Serializing a `serde_json::Value` to a string cannot fail: its keys are strings.
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Removes what schemars adds for Rust's sake and a runbook does not allow: `null` for every
/// `Option` (a key is left out, never written as `~`) and integer `format`s such as `uint32`.
/// Also joins the lines of each doc comment, so that hover text flows in any editor.
fn tidy(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("format");
    if let Some(Value::String(description)) = obj.get_mut("description") {
        *description = unwrap_lines(description);
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            obj.insert("type".to_owned(), only);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if let Some(Value::Array(alternatives)) = obj.get_mut("anyOf") {
        alternatives.retain(|a| a.get("type").is_none_or(|t| t != "null"));
        if alternatives.len() == 1 {
            // `{anyOf: [X], description}` reads better as `{…X, description}`.
            if let Some(Value::Object(only)) = alternatives.pop() {
                obj.remove("anyOf");
                for (key, value) in only {
                    obj.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// Doc-comment text with its line breaks turned into spaces; blank lines (paragraphs) are kept.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The value with every object's keys in sorted order, at every depth.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A runbook: an operational procedure as a graph of steps that `runbook` runs with durable
/// checkpoints, honest dry-runs and resume. Every string value is a template (minijinja):
/// `{{ params.x }}`, `{{ steps.<id>.outputs.<name> }}`, `{{ secrets.x }}`, `{{ run.id }}`.
#[derive(JsonSchema)]
#[schemars(
    title = "runbook file",
    deny_unknown_fields,
    extend("$id" = SCHEMA_ID)
)]
pub struct RunbookFile {
    /// The runbook's name, shown in `runbook runs` and `runbook show`: lowercase letters, digits,
    /// `-` and `_`, starting with a letter or digit (e.g. `devicedb-restore`).
    #[schemars(pattern(NAME_PATTERN))]
    pub name: String,
    /// What the procedure does and when to use it.
    pub description: Option<String>,
    /// Inputs, given with `--set key=value` or `--params FILE.yaml`, used as `{{ params.<name> }}`.
    /// Names are in snake case: lowercase letters, digits and `_`.
    #[schemars(extend("propertyNames" = {"pattern": ID_PATTERN}))]
    pub params: Option<BTreeMap<String, Param>>,
    /// Secrets, used as `{{ secrets.<name> }}`: read when the run starts, never written to the
    /// journal, logs or reports, and masked as `***` in everything the engine prints.
    pub secrets: Option<BTreeMap<String, Secret>>,
    /// SSH targets that steps name in `on:`.
    pub hosts: Option<BTreeMap<String, Host>>,
    /// Environment variables for every command step (a step's own `env` wins).
    pub env: Option<BTreeMap<String, Text>>,
    /// Defaults for every step.
    pub defaults: Option<Defaults>,
    /// The procedure, top to bottom. A step without `needs` waits for the step written before it.
    pub steps: Vec<Step>,
    /// Steps run when the run ends, succeeded or failed (not when it pauses or is interrupted:
    /// `runbook resume` continues those). `{{ run.status }}` tells how it ended.
    pub finally: Option<Vec<Step>>,
    /// HTTP requests sent when the run pauses for a person, fails or succeeds, so that a pause
    /// at 3 a.m. reaches someone. Without `json` or `body`, the request is a POST of
    /// `{run_id, runbook, status, waiting_for, resume_command}`. A notification that cannot be
    /// sent is logged and journaled; it never fails the run.
    pub notify: Option<Vec<Notify>>,
}

/// A notification: when it is sent, and the request.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Notify {
    /// The run statuses it is sent on.
    pub on: NotifyOnList,
    /// The request. Its templates see `params`, `secrets`, `env` and `run` (`id`, `name`,
    /// `status`, `waiting_for`: the manual steps waiting for a person, `resume_command`).
    pub http: Http,
}

/// One run status, or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum NotifyOnList {
    /// One status.
    One(NotifyOn),
    /// Several.
    Many(Vec<NotifyOn>),
}

/// A run status a notification is sent on.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum NotifyOn {
    /// The run waits for a person at a manual step.
    Paused,
    /// A step failed.
    Failed,
    /// The run succeeded.
    Succeeded,
}

/// A declared input.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("not" = {"required": ["required", "default"], "properties": {"required": {"const": true}}}),
    extend("allOf" = [
        {"if": {"properties": {"type": {"const": "string"}}},
         "then": {"properties": {"default": {"type": "string"}}}},
        {"if": {"properties": {"type": {"const": "int"}}, "required": ["type"]},
         "then": {"properties": {"default": {"type": "integer"}}}},
        {"if": {"properties": {"type": {"const": "bool"}}, "required": ["type"]},
         "then": {"properties": {"default": {"type": "boolean"}}}},
        {"if": {"properties": {"type": {"const": "list"}}, "required": ["type"]},
         "then": {"properties": {"default": {"type": "array"}}}},
        {"if": {"properties": {"type": {"const": "map"}}, "required": ["type"]},
         "then": {"properties": {"default": {"type": "object"}}}},
        {"if": {"required": ["pattern"]},
         "then": {"properties": {"type": {"const": "string"}}}}
    ])
)]
pub struct Param {
    /// The value's type; `string` when left out. The default must have this type.
    #[schemars(rename = "type")]
    pub ty: Option<ParamType>,
    /// Whether the run refuses to start without a value. A required param has no default.
    pub required: Option<bool>,
    /// The value used when none is given (of the param's `type`). Data, like a value given with
    /// `--set`: never rendered, so it may not be a template.
    pub default: Option<Value>,
    /// What the param is for, shown to whoever runs the runbook.
    pub description: Option<String>,
    /// The only values the param takes (of its `type`), e.g. `[staging, production]`; any other
    /// value is refused before anything runs.
    #[schemars(rename = "enum", length(min = 1))]
    pub allowed: Option<Vec<Value>>,
    /// For a string param: a regex (Rust syntax) that the whole value must match, e.g.
    /// `"^v[0-9]+$"`; any other value is refused before anything runs.
    pub pattern: Option<String>,
}

/// The type of a param.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
    /// A list (on the command line in YAML flow syntax: `--set ports=[8080,8181]`).
    List,
    /// A mapping (`{a: 1}`).
    Map,
}

/// Where a secret's value comes from: exactly one of `env` or `file`.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [{"required": ["env"]}, {"required": ["file"]}])
)]
pub struct Secret {
    /// An environment variable of the `runbook` process (e.g. `S3_ACCESS_KEY`).
    pub env: Option<String>,
    /// A file holding the value, relative to the runbook's folder (e.g. `./secrets/s3_key`).
    pub file: Option<String>,
}

/// An SSH target for `on:`; the command runs through the system `ssh`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Host {
    /// The destination, `user@host` (a template: `"core@{{ params.host }}"`).
    pub ssh: String,
    /// The SSH port, 22 when left out.
    pub port: Option<Port>,
    /// A private key file (`ssh -i`).
    pub identity_file: Option<String>,
    /// Extra ssh options, each passed as `-o OPTION` (e.g. `StrictHostKeyChecking=accept-new`;
    /// templates, e.g. `"UserKnownHostsFile={{ params.known_hosts }}"`). They win over
    /// `defaults.ssh.options`.
    pub options: Option<Vec<String>>,
}

/// SSH settings every host gets (declared under `hosts:`, or named in `on:`) unless it sets
/// its own. A called runbook uses its caller's unless it declares its own.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshDefaults {
    /// The SSH port, 22 when left out.
    pub port: Option<Port>,
    /// A private key file (`ssh -i`).
    pub identity_file: Option<String>,
    /// Extra ssh options, each passed as `-o OPTION`.
    pub options: Option<Vec<String>>,
}

/// A TCP port: a number from 1 to 65535, or a template that gives one (`"{{ params.ssh_port }}"`).
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Port {
    /// A port number.
    Number(#[schemars(range(min = 1, max = 65535))] u16),
    /// A template that renders to a port number.
    Template(#[schemars(pattern(r"\{\{"))] String),
}

/// Defaults applied to every step that does not set its own.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Defaults {
    /// Time limit of one attempt of a step; at the limit the step's whole process group is killed.
    pub timeout: Option<Duration>,
    /// Shell that runs `run:` scripts (`sh` when not set), e.g. `bash`.
    pub shell: Option<String>,
    /// How many steps (and `for_each` items) run at once.
    pub max_parallel: Option<Count>,
    /// Retry policy of every step that has none.
    pub retry: Option<Retry>,
    /// Wait between two polls of an `until` step (5s when not set).
    pub interval: Option<Duration>,
    /// SSH settings for every host.
    pub ssh: Option<SshDefaults>,
}

/// One step: an `id` and exactly one kind (`run`, `http`, `manual`, `assert`, `sleep`, `call`,
/// `block`, `upload` or `download`), plus any modifiers.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [
        {"required": ["run"]},
        {"required": ["http"]},
        {"required": ["manual"]},
        {"required": ["assert"]},
        {"required": ["sleep"]},
        {"required": ["call"]},
        {"required": ["upload"]},
        {"required": ["download"]},
        {"required": ["block"]}
    ]),
    extend("dependentRequired" = {
        "with": ["call"],
        "as": ["for_each"],
        "interval": ["until"],
        "fail_when": ["until"],
        "upload": ["on"],
        "download": ["on"],
        "finally": ["block"]
    })
)]
pub struct Step {
    /// The step's id: unique in the runbook and in snake case (`[a-z][a-z0-9_]*`), so that templates
    /// can name it: `{{ steps.stop_core.outputs.x }}`.
    pub id: StepId,
    /// A human title, shown in progress and reports (a template).
    pub name: Option<String>,
    /// What the step is for, for the people who run it: shown in the rehearsal and in
    /// `runbook show`.
    pub description: Option<String>,
    /// Kind: a command. A string is a script run by the shell (`shell`, `defaults.shell`, else
    /// `sh`); a list is a program and its arguments, run without a shell.
    pub run: Option<Command>,
    /// Kind: one HTTP request. Without `expect`, any 2xx status succeeds.
    pub http: Option<Http>,
    /// Kind: a person's step. The instructions are shown and a person approves at the terminal
    /// prompt, or with `--approve STEP` or `--approve-all` (never `--yes`); without a terminal
    /// the run pauses (exit 3) until `runbook resume RUN_ID --approve STEP`. Every decision
    /// records who (`--as NAME`), when and how.
    pub manual: Option<Manual>,
    /// Kind: verification. One expression or a list; each must be true, and a failure shows the
    /// expression and the values in it (e.g. `steps.health.outputs.status == "green"`).
    pub assert: Option<Expressions>,
    /// Kind: wait this long (e.g. `30s`).
    pub sleep: Option<Duration>,
    /// Kind: run another runbook's steps as part of this graph, their ids prefixed `<id>.`. The
    /// path is relative to this file; pass its params with `with`.
    pub call: Option<String>,
    /// Kind: copy a local file or folder (`src`), or text rendered here (`content`), to the host
    /// of `on:`. Written to a temporary name and renamed, verified by sha256; an identical
    /// destination is not written again. Outputs `changed` and `sha256`.
    pub upload: Option<Upload>,
    /// Kind: copy a file or folder from the host of `on:`. Written to a temporary name and
    /// renamed, verified by sha256; an identical destination is not written again. Outputs
    /// `changed` and `sha256`.
    pub download: Option<Download>,
    /// Kind: steps written in place, run as one group — like a `call` of another runbook, but
    /// sharing this file's params, hosts and the steps around it. Its steps are named
    /// `<id>.<inner>`; `when` skips them all, `retry` runs its failed and not-yet-run steps
    /// again, `timeout` bounds the whole block, `for_each` runs it once per item.
    pub block: Option<Vec<Step>>,
    /// Steps run when the block ends (each item of a fanned-out block on its own), with
    /// `{{ run.status }}` the block's status: "re-enable the node even if its upgrade failed".
    /// Only beside `block:`.
    pub finally: Option<Vec<Step>>,
    /// Params for the runbook named by `call` (only on `call` steps).
    pub with: Option<BTreeMap<String, Value>>,
    /// The steps this one waits for. Left out: the step written before it. `[]`: none, so it may
    /// start at once.
    pub needs: Option<Needs>,
    /// A condition (an expression, e.g. `params.verify`). When false the step is skipped, and a
    /// skipped step satisfies the steps that need it.
    pub when: Option<Expression>,
    /// Fan-out: run the step once per item of a list, each item checkpointed on its own as
    /// `<id>[0]`, `<id>[1]`, … A literal list, or an expression that yields one
    /// (`params.ports`, `steps.list.outputs.names`).
    pub for_each: Option<ForEach>,
    /// The name of the current `for_each` item inside the step (`item` when left out).
    #[schemars(rename = "as", pattern(ID_PATTERN))]
    pub as_name: Option<String>,
    /// How many items of a fan-out (`for_each`, or `on:` a list of hosts) run at once: a number,
    /// or a percentage of the items (`"25%"`), or a template over params.
    pub max_parallel: Option<ItemCount>,
    /// Run the items of a fan-out in batches: a batch ends before the next starts. A number, a
    /// percentage of the items (`"25%"`), or a list of them whose last entry repeats (canary
    /// first: `[1, "10%", "50%"]`), or a template over params.
    pub batch: Option<Batch>,
    /// Failed items of a fan-out tolerated across its batches (0 when left out): while within
    /// this budget the fan-out goes on and, ending within it, the step succeeds with its failed
    /// items kept as failed. One more failure stops new items and batches, and the step fails.
    pub max_failures: Option<Budget>,
    /// A probe that must hold after each batch of a fan-out before the next batch starts; if it
    /// does not hold in time, the step fails and no further batch starts.
    pub gate: Option<Gate>,
    /// Values kept after the step succeeds, as `{{ steps.<id>.outputs.<name> }}`. Each is a
    /// template with `result` in scope: for commands `{stdout, stderr, exit_code, json}`, for HTTP
    /// `{status, headers, body, json}`.
    #[schemars(extend("propertyNames" = {"pattern": ID_PATTERN}))]
    pub outputs: Option<BTreeMap<String, String>>,
    /// Poll: repeat the step until this expression holds (`result` in scope, e.g.
    /// `result.status == 200`); `timeout` is then the deadline of the whole poll.
    pub until: Option<Expression>,
    /// Stop polling and fail at once when this expression holds (`result` in scope, e.g.
    /// `result.json.status == "failed"`): a known failure is not polled until the timeout.
    pub fail_when: Option<Expression>,
    /// Wait between two polls of `until` (5s when left out); a template over params is allowed.
    pub interval: Option<DurationSetting>,
    /// Wait this long before the first attempt (e.g. a service that needs 45s to start); not
    /// counted in `timeout`.
    pub delay: Option<Duration>,
    /// Time limit of one attempt (with `until`: of the whole poll; on a `call`: of the whole
    /// called runbook). At the limit the step's whole process group is killed, on its host too.
    /// A template over params is allowed.
    pub timeout: Option<DurationSetting>,
    /// Retry on failure.
    pub retry: Option<Retry>,
    /// When true, a failure of this step does not fail the run, and the steps that need it still
    /// run.
    pub allow_failure: Option<bool>,
    /// When true, the step asks for confirmation before it runs (unless `--yes`), and a dry-run
    /// flags it.
    pub destructive: Option<bool>,
    /// Whether the step may be re-run blindly on resume if it was in flight when the process died
    /// (true when left out). When false, its `check` decides, or a person confirms.
    pub idempotent: Option<bool>,
    /// A probe that succeeds when the step's effect is already in place: the step is then recorded
    /// as succeeded (checked) without running.
    pub check: Option<Check>,
    /// When true, the step only reads: it runs for real during a dry-run (rehearsal probes).
    pub safe: Option<bool>,
    /// Where the step runs, over SSH: a host declared under `hosts:`, an SSH destination
    /// (`core@10.0.0.7`), a template, or a list of them (maps `{ssh, port, identity_file,
    /// options}` for hosts of their own). A list is a fan-out: one node per host, `<id>[<host>]`,
    /// each checkpointed, with `batch`, `max_parallel`, `max_failures` and `gate`. `{{ host }}`
    /// is the host inside the step.
    pub on: Option<On>,
    /// Extra environment variables for the command.
    pub env: Option<BTreeMap<String, Text>>,
    /// Working directory of the command.
    pub cwd: Option<String>,
    /// Shell that runs this step's script (e.g. `bash`); not for argv lists.
    pub shell: Option<String>,
}

/// A manual step: its instructions, or the long form with a time limit, a number of approvers
/// and the values a person supplies.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Manual {
    /// The instructions (a template).
    Instructions(String),
    /// The long form.
    Long(ManualLong),
}

/// `manual: {instructions, timeout, approvers, inputs}`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ManualLong {
    /// What the person is asked to do (a template).
    pub instructions: String,
    /// No decision within this long (from when the step first asks or pauses, across resumes)
    /// fails the step, and `finally` runs: fail closed.
    pub timeout: Option<Duration>,
    /// How many distinct people must approve (two-person rule); the run stays paused until
    /// they have. 1 when left out.
    pub approvers: Option<Count>,
    /// Values the approvers supply (`--input STEP.NAME=VALUE`, or at the prompt), then
    /// available as `{{ steps.<id>.outputs.<name> }}`. Journaled: never a secret.
    #[schemars(extend("propertyNames" = {"pattern": ID_PATTERN}))]
    pub inputs: Option<BTreeMap<String, ManualInput>>,
}

/// One value a person supplies to a manual step.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ManualInput {
    /// The value's type; `string` when left out.
    #[schemars(rename = "type")]
    pub ty: Option<ParamType>,
    /// What the value is, shown to the person asked.
    pub description: Option<String>,
    /// The only values it takes (of its `type`).
    #[schemars(rename = "enum", length(min = 1))]
    pub allowed: Option<Vec<Value>>,
}

/// A step id, in snake case: `[a-z][a-z0-9_]*`. A kebab-case id such as `stop-core` is an error:
/// write `stop_core`.
#[derive(JsonSchema)]
pub struct StepId(#[schemars(pattern(ID_PATTERN))] pub String);

/// A duration: a whole number and a unit (`ms`, `s`, `m`, `h`, `d`), parts may be combined:
/// `500ms`, `30s`, `5m`, `1h30m`, `2d`.
#[derive(JsonSchema)]
pub struct Duration(#[schemars(pattern(DURATION_PATTERN))] pub String);

/// A whole number, at least 1.
#[derive(JsonSchema)]
pub struct Count(#[schemars(range(min = 1))] pub u32);

/// A duration, or a template over params that renders to one (`"{{ params.wait }}"`).
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum DurationSetting {
    /// A duration.
    Duration(Duration),
    /// A template.
    Template(#[schemars(pattern(r"\{\{"))] String),
}

/// A number of items (at least 1), a percentage of them (`"25%"`), or a template over params.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum ItemCount {
    /// A number of items.
    Number(#[schemars(range(min = 1))] u32),
    /// A percentage of the items, or a template.
    Text(#[schemars(pattern(r"^([1-9][0-9]?%|100%|.*\{\{.*)$"))] String),
}

/// A failure budget: a number of items (0 or more), a percentage of them, or a template.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Budget {
    /// A number of items.
    Number(u32),
    /// A percentage of the items, or a template.
    Text(#[schemars(pattern(r"^([0-9]{1,2}%|100%|.*\{\{.*)$"))] String),
}

/// Batch sizes: one size, or a list whose last entry repeats.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Batch {
    /// One size for every batch.
    One(ItemCount),
    /// Successive sizes, the last one repeated.
    List(#[schemars(length(min = 1))] Vec<ItemCount>),
}

/// A probe polled after each batch until `until` holds: exactly one of `run` or `http`.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [{"required": ["run"]}, {"required": ["http"]}])
)]
pub struct Gate {
    /// A command; `result` is `{stdout, stderr, exit_code, json}`.
    pub run: Option<Command>,
    /// A request; `result` is `{status, headers, body, json}`.
    pub http: Option<Http>,
    /// The host the probe runs on: its command runs there, its request is sent from there (over
    /// the host's SSH connection, reaching what listens on the host's loopback).
    pub on: Option<String>,
    /// When the gate holds (e.g. `result.json.status == "green"`).
    pub until: Expression,
    /// Wait between two polls (5s when left out).
    pub interval: Option<Duration>,
    /// How long the gate may take to hold (10m when left out).
    pub timeout: Option<Duration>,
}

/// Where a step runs: one host, or a list of them (a fan-out).
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum On {
    /// A declared host, an SSH destination, or a template (a string, a map or a list).
    One(String),
    /// A host of its own.
    Map(HostMap),
    /// Several hosts: one node per host.
    List(Vec<OnItem>),
}

/// One host of an `on:` list.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum OnItem {
    /// A declared host, an SSH destination, or a template.
    Name(String),
    /// A host of its own.
    Map(HostMap),
}

/// A host given in place: the same fields as under `hosts:`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostMap {
    /// The destination, `user@host`.
    pub ssh: String,
    /// The SSH port.
    pub port: Option<Port>,
    /// A private key file (`ssh -i`).
    pub identity_file: Option<String>,
    /// Extra ssh options, each passed as `-o OPTION`.
    pub options: Option<Vec<String>>,
}

/// `upload:` — exactly one of `src` or `content`, and `dest`.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [{"required": ["src"]}, {"required": ["content"]}])
)]
pub struct Upload {
    /// A local file or folder (relative to where `runbook` runs).
    pub src: Option<String>,
    /// Text rendered here and written to `dest` (a configuration file).
    pub content: Option<String>,
    /// The path on the host; ending in `/`, a folder.
    pub dest: String,
    /// Permissions of what is written, an octal string (`"0644"`).
    #[schemars(pattern("^0?[0-7]{3,4}$"))]
    pub mode: Option<String>,
}

/// `download:` — `src` on the host, `dest` here.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Download {
    /// The path on the host.
    pub src: String,
    /// The local path; ending in `/`, a folder.
    pub dest: String,
}

/// A bare expression (minijinja), e.g. `result.status == 200`; `{{ }}` around it is accepted too.
#[derive(JsonSchema)]
pub struct Expression(pub String);

/// Text (a template). Numbers and booleans are accepted and used as written.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Text {
    /// A string.
    String(String),
    /// A number, used as written.
    Number(f64),
    /// A boolean, used as written.
    Bool(bool),
}

/// A command: a script for the shell, or a program and its arguments.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Command {
    /// A script, run by the shell.
    Script(String),
    /// A program and its arguments, run without a shell: `[systemctl, stop, nginx]`.
    Argv(#[schemars(length(min = 1))] Vec<String>),
}

/// One or more expressions.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Expressions {
    /// One expression.
    One(Expression),
    /// Several expressions, all of which must hold.
    List(Vec<Expression>),
}

/// One step id or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Needs {
    /// One step.
    One(StepId),
    /// Several steps (`[]`: none).
    List(Vec<StepId>),
}

/// What a `for_each` goes over.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum ForEach {
    /// An expression that yields a list, e.g. `params.ports`; a list known only at run time (from
    /// outputs) is expanded when the step becomes ready.
    Expression(Expression),
    /// A literal list; items may be any value (strings are templates).
    List(Vec<Value>),
}

/// One HTTP request. The URL, headers and body are templates.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("not" = {"required": ["json", "body"]})
)]
pub struct Http {
    /// The method, `GET` when left out.
    #[schemars(extend("enum" = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
        "get", "post", "put", "delete", "patch", "head", "options"
    ]))]
    pub method: Option<String>,
    /// The URL, e.g. `"{{ params.es_url }}/_cluster/health"`.
    pub url: String,
    /// Request headers.
    pub headers: Option<BTreeMap<String, Text>>,
    /// A body sent as JSON (any value; strings inside are templates). Not with `body`.
    pub json: Option<Value>,
    /// A body sent as written. Not with `json`.
    pub body: Option<String>,
    /// Time limit of the request.
    pub timeout: Option<Duration>,
    /// When true, TLS certificates are not verified.
    pub insecure: Option<bool>,
    /// What counts as success.
    pub expect: Option<Expect>,
}

/// What counts as a successful response.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Expect {
    /// The accepted status, or a list of them (any 2xx when left out).
    pub status: Option<Statuses>,
}

/// One HTTP status or a list of them.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Statuses {
    /// One status.
    One(Status),
    /// Several statuses.
    List(Vec<Status>),
}

/// An HTTP status, 100 to 599.
#[derive(JsonSchema)]
pub struct Status(#[schemars(range(min = 100, max = 599))] pub u16);

/// Retry on failure: up to `attempts` attempts in all, waiting `delay` after the first failure,
/// multiplied by `backoff` after each further one, never more than `max_delay`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first one included (a template over params is allowed).
    pub attempts: Attempts,
    /// Wait after the first failed attempt (1s when left out).
    pub delay: Option<Duration>,
    /// Factor applied to the wait after each failed attempt: 1 (the default) keeps it constant,
    /// 2 doubles it.
    #[schemars(range(min = 1.0))]
    pub backoff: Option<f64>,
    /// Longest wait between two attempts.
    pub max_delay: Option<Duration>,
}

/// A number of attempts (at least 1), or a template over params.
#[derive(JsonSchema)]
#[schemars(untagged)]
pub enum Attempts {
    /// A number.
    Number(#[schemars(range(min = 1))] u32),
    /// A template.
    Template(#[schemars(pattern(r"\{\{"))] String),
}

/// A probe that tells whether a step's effect is already in place: exactly one of `run` (exit 0
/// means in place) or `http` (a successful response means in place).
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [{"required": ["run"]}, {"required": ["http"]}])
)]
pub struct Check {
    /// A command; exit status 0 means the effect is in place.
    pub run: Option<Command>,
    /// A request; an expected status means the effect is in place.
    pub http: Option<Http>,
    /// The host the probe runs on, instead of its step's (a request is sent from there).
    pub on: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_ends_with_a_newline_and_names_itself() {
        let text = schema_json();
        assert!(text.ends_with("}\n"));
        let value: Value = serde_json::from_str(&text).expect("the schema is JSON");
        assert_eq!(value["$id"], SCHEMA_ID);
        assert_eq!(value["title"], "runbook file");
    }

    #[test]
    fn doc_comment_lines_flow_into_one_paragraph() {
        assert_eq!(unwrap_lines("one\ntwo\n\nthree"), "one two\n\nthree");
    }

    #[test]
    fn no_optional_key_accepts_null() {
        assert!(!schema_json().contains("\"null\""));
    }
}
