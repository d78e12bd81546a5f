//! The canonical form of what a plan node does: every field of its step that changes what the
//! step does, written explicitly as canonical JSON (object keys sorted, no whitespace), without
//! source positions and without relying on `Debug`. Its hash is the step's fingerprint, stored
//! in journals: the form is versioned by [`FINGERPRINT_VERSION`], and a snapshot test pins the
//! fingerprint of every fixture and shipped runbook.
//!
//! A field at its default value is left out. A new step field must therefore enter the form only
//! when it is set: every fingerprint recorded before the field existed stays the same. Changing
//! how an existing field is written changes stored fingerprints and needs a new version.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::plan::{PlanNode, Role};
use crate::spec::{
    Batch, Block, Call, Command, Count, Download, FanPolicy, ForEach, ForEachItems, Gate, HttpBody,
    HttpRequest, Input, Manual, On, OnTargets, Poll, Probe, ProbeKind, Retry, Setting, Step,
    StepKind, Template, Upload, UploadSource, Value as SpecValue,
};

/// The version of the canonical form this build writes. Journals record it next to the
/// fingerprints; fingerprints of another version cannot be compared with these.
pub const FINGERPRINT_VERSION: u32 = 1;

/// The canonical text of a node: its step and what the node is (an item, a fan-out, a call).
pub fn node(node: &PlanNode) -> String {
    let mut fields = step(&node.step);
    match &node.role {
        Role::Step => {}
        Role::Item { index, value } => {
            fields.insert(
                "item".to_owned(),
                object([("index", Value::from(*index)), ("value", value.clone())]),
            );
        }
        Role::DynamicFanOut => {
            fields.insert("fan_out".to_owned(), Value::Bool(true));
        }
        Role::CallEntry { .. } => {
            fields.insert("call_entry".to_owned(), Value::Bool(true));
        }
    }
    let mut out = String::new();
    write_canonical(&mut out, &Value::Object(fields));
    out
}

/// The fields of a step that change what it does. Its `id` is the key its fingerprint is stored
/// under and its `name` is a title: neither is part of the form.
fn step(step: &Step) -> Map<String, Value> {
    // Every field is named: a field added to `Step` does not compile until it is decided here.
    let Step {
        id: _,
        id_span: _,
        name: _,
        name_span: _,
        // What the step is for, for people: not what it does.
        description: _,
        kind,
        kind_span: _,
        needs,
        when,
        for_each,
        fan,
        outputs,
        poll,
        timeout,
        delay,
        retry,
        allow_failure,
        destructive,
        idempotent,
        safe,
        check,
        on,
        env,
        cwd,
        shell,
        is_finally,
    } = step;
    let mut fields = Fields::default();
    fields.set("kind", step_kind(kind));
    if let Some(needs) = needs {
        // Order does not matter to a dependency; an empty list (`needs: []`) is written.
        let mut ids: Vec<&str> = needs.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        fields.set("needs", Value::from(ids));
    }
    fields.text("when", when.as_ref().map(|e| e.text.as_str()));
    if let Some(for_each) = for_each {
        fields.set("for_each", fan_out(for_each, fan));
    }
    let policy = fan_policy(fan, for_each.is_some());
    if !policy.is_empty() {
        fields.set("fan", Value::Object(policy));
    }
    if !outputs.is_empty() {
        fields.set(
            "outputs",
            Value::Object(
                outputs
                    .iter()
                    .map(|o| (o.name.clone(), Value::from(o.template.text.as_str())))
                    .collect(),
            ),
        );
    }
    if let Some(poll) = poll {
        fields.set("poll", polling(poll));
    }
    if let Some(timeout) = timeout {
        fields.set("timeout", duration_setting(timeout));
    }
    fields.duration("delay", *delay);
    if let Some(retry) = retry {
        fields.set("retry", retrying(retry));
    }
    fields.flag("allow_failure", *allow_failure, false);
    fields.flag("destructive", *destructive, false);
    fields.flag("idempotent", *idempotent, true);
    fields.flag("safe", *safe, false);
    if let Some(check) = check {
        fields.set("check", probe(check));
    }
    if let Some(on) = on {
        let (key, value) = hosts(on);
        fields.set(key, value);
    }
    fields.templates("env", env);
    fields.text("cwd", cwd.as_ref().map(|t| t.text.as_str()));
    fields.text("shell", shell.as_deref());
    fields.flag("finally", *is_finally, false);
    fields.0
}

fn step_kind(kind: &StepKind) -> Value {
    match kind {
        StepKind::Run(command) => object([("run", run(command))]),
        StepKind::Http(request) => object([("http", http(request))]),
        StepKind::Manual(manual) => manual_step(manual),
        StepKind::Assert(exprs) => object([(
            "assert",
            Value::from(exprs.iter().map(|e| e.text.as_str()).collect::<Vec<_>>()),
        )]),
        StepKind::Sleep(duration) => object([("sleep", nanos(*duration))]),
        StepKind::Call(call) => object([("call", calling(call))]),
        StepKind::Upload(upload) => object([("upload", uploading(upload))]),
        StepKind::Download(download) => object([("download", downloading(download))]),
        StepKind::Block(block) => object([("block", blocking(block))]),
    }
}

/// A manual step: its instructions, and its long form's fields when they are set (a step in the
/// short form keeps the fingerprint it had before the long form existed).
fn manual_step(manual: &Manual) -> Value {
    let Manual {
        instructions,
        timeout,
        approvers,
        inputs,
    } = manual;
    let mut fields = Fields::default();
    fields.set("manual", Value::from(instructions.text.as_str()));
    fields.duration("manual_timeout", *timeout);
    if *approvers != 1 {
        fields.set("approvers", Value::from(*approvers));
    }
    if !inputs.is_empty() {
        let inputs = inputs
            .iter()
            .map(|input| {
                let Input {
                    name,
                    name_span: _,
                    ty,
                    // What it is, for people: not what the step does.
                    description: _,
                    allowed,
                } = input;
                let mut fields = Fields::default();
                fields.set("type", Value::from(ty.name()));
                if !allowed.is_empty() {
                    fields.set("enum", Value::Array(allowed.clone()));
                }
                (name.clone(), Value::Object(fields.0))
            })
            .collect();
        fields.set("inputs", Value::Object(inputs));
    }
    Value::Object(fields.0)
}

fn uploading(upload: &Upload) -> Value {
    let Upload { source, dest, mode } = upload;
    let mut fields = Fields::default();
    match source {
        UploadSource::Src(t) => fields.set("src", Value::from(t.text.as_str())),
        UploadSource::Content(t) => fields.set("content", Value::from(t.text.as_str())),
    }
    fields.set("dest", Value::from(dest.text.as_str()));
    if let Some(mode) = mode {
        fields.set("mode", Value::from(*mode));
    }
    Value::Object(fields.0)
}

fn downloading(download: &Download) -> Value {
    let Download { src, dest } = download;
    object([
        ("src", Value::from(src.text.as_str())),
        ("dest", Value::from(dest.text.as_str())),
    ])
}

/// A block: the canonical form of each of its steps, by id.
fn blocking(block: &Block) -> Value {
    let Block { steps, finally } = block;
    let list = |steps: &[std::sync::Arc<Step>]| {
        Value::Object(
            steps
                .iter()
                .map(|s| (s.id.to_string(), Value::Object(step(s))))
                .collect(),
        )
    };
    let mut fields = Fields::default();
    fields.set("steps", list(steps));
    if !finally.is_empty() {
        fields.set("finally", list(finally));
    }
    Value::Object(fields.0)
}

/// `on:` — one host as a list of one (as before lists fanned out), or a list of hosts.
fn hosts(on: &On) -> (&'static str, Value) {
    let On { targets, span: _ } = on;
    match targets {
        OnTargets::One(t) => ("on", Value::from(vec![t.text.as_str()])),
        OnTargets::List(values) => (
            "on_list",
            Value::from(values.iter().map(spec_value).collect::<Vec<_>>()),
        ),
    }
}

/// The fan-out settings that are not already written with `for_each` (its `max_parallel`).
fn fan_policy(fan: &FanPolicy, with_for_each: bool) -> Map<String, Value> {
    let FanPolicy {
        max_parallel,
        batch,
        max_failures,
        gate,
    } = fan;
    let mut fields = Fields::default();
    if let (Some(max), false) = (max_parallel, with_for_each) {
        fields.set("max_parallel", count_setting(max));
    }
    match batch {
        Some(Batch::Sizes(sizes)) => fields.set(
            "batch",
            Value::from(sizes.iter().map(count_setting).collect::<Vec<_>>()),
        ),
        Some(Batch::Template(t)) => fields.set("batch", template(t)),
        None => {}
    }
    if let Some(budget) = max_failures {
        fields.set("max_failures", count_setting(budget));
    }
    if let Some(gate) = gate {
        fields.set("gate", gating(gate));
    }
    fields.0
}

fn gating(gate: &Gate) -> Value {
    let Gate {
        probe: kind,
        on,
        until,
        interval,
        timeout,
        span: _,
    } = gate;
    let mut fields = Fields::default();
    match kind {
        ProbeKind::Run(command) => fields.set("run", run(command)),
        ProbeKind::Http(request) => fields.set("http", http(request)),
    }
    if let Some(on) = on {
        fields.set("on", template(on));
    }
    fields.set("until", Value::from(until.text.as_str()));
    fields.duration("interval", *interval);
    fields.duration("timeout", *timeout);
    Value::Object(fields.0)
}

fn template(t: &Template) -> Value {
    object([("template", Value::from(t.text.as_str()))])
}

fn count_setting(setting: &Setting<Count>) -> Value {
    match setting {
        Setting::Fixed(Count::Items(n)) => Value::from(*n),
        Setting::Fixed(Count::Percent(p)) => Value::from(format!("{p}%")),
        Setting::Template(t) => template(t),
    }
}

fn duration_setting(setting: &Setting<Duration>) -> Value {
    match setting {
        Setting::Fixed(d) => nanos(*d),
        Setting::Template(t) => template(t),
    }
}

fn run(command: &Command) -> Value {
    match command {
        Command::Script(script) => object([("script", Value::from(script.text.as_str()))]),
        Command::Argv(argv) => object([(
            "argv",
            Value::from(argv.iter().map(|t| t.text.as_str()).collect::<Vec<_>>()),
        )]),
    }
}

fn http(request: &HttpRequest) -> Value {
    let HttpRequest {
        method,
        url,
        headers,
        body,
        timeout,
        insecure,
        expect_status,
    } = request;
    let mut fields = Fields::default();
    fields.set("method", Value::from(method.as_str()));
    fields.set("url", Value::from(url.text.as_str()));
    fields.templates("headers", headers);
    match body {
        Some(HttpBody::Json(value)) => fields.set("json", spec_value(value)),
        Some(HttpBody::Text(text)) => fields.set("body", Value::from(text.text.as_str())),
        None => {}
    }
    fields.duration("timeout", *timeout);
    fields.flag("insecure", *insecure, false);
    if !expect_status.is_empty() {
        fields.set("expect_status", Value::from(expect_status.clone()));
    }
    Value::Object(fields.0)
}

fn calling(call: &Call) -> Value {
    let Call {
        path,
        path_span: _,
        with,
    } = call;
    let mut fields = Fields::default();
    fields.set("path", Value::from(path.as_str()));
    if !with.is_empty() {
        fields.set(
            "with",
            Value::Object(
                with.iter()
                    .map(|(name, value, _)| (name.clone(), spec_value(value)))
                    .collect(),
            ),
        );
    }
    Value::Object(fields.0)
}

fn fan_out(for_each: &ForEach, fan: &FanPolicy) -> Value {
    let ForEach {
        items,
        as_name,
        span: _,
    } = for_each;
    let mut fields = Fields::default();
    match items {
        ForEachItems::List(values) => {
            fields.set(
                "list",
                Value::from(values.iter().map(spec_value).collect::<Vec<_>>()),
            );
        }
        ForEachItems::Expr(expr) => fields.set("expr", Value::from(expr.text.as_str())),
    }
    if as_name != "item" {
        fields.set("as", Value::from(as_name.as_str()));
    }
    if let Some(max) = &fan.max_parallel {
        fields.set("max_parallel", count_setting(max));
    }
    Value::Object(fields.0)
}

fn polling(poll: &Poll) -> Value {
    let Poll {
        until,
        fail_when,
        interval,
    } = poll;
    let mut fields = Fields::default();
    fields.set("until", Value::from(until.text.as_str()));
    // An interval left out was written as the default in version 1: it still is.
    fields.set(
        "interval",
        interval
            .as_ref()
            .map_or_else(|| nanos(Poll::DEFAULT_INTERVAL), duration_setting),
    );
    fields.text("fail_when", fail_when.as_ref().map(|e| e.text.as_str()));
    Value::Object(fields.0)
}

fn retrying(retry: &Retry) -> Value {
    let Retry {
        attempts,
        delay,
        backoff,
        max_delay,
    } = retry;
    let mut fields = Fields::default();
    fields.set(
        "attempts",
        match attempts {
            Setting::Fixed(n) => Value::from(*n),
            Setting::Template(t) => template(t),
        },
    );
    fields.set("delay", nanos(*delay));
    fields.set("backoff", Value::from(*backoff));
    fields.duration("max_delay", *max_delay);
    Value::Object(fields.0)
}

fn probe(probe: &Probe) -> Value {
    let Probe { kind, on, span: _ } = probe;
    let mut value = match kind {
        ProbeKind::Run(command) => object([("run", run(command))]),
        ProbeKind::Http(request) => object([("http", http(request))]),
    };
    if let (Some(on), Value::Object(fields)) = (on, &mut value) {
        fields.insert("on".to_owned(), template(on));
    }
    value
}

/// A YAML value whose strings are templates: the templates' texts.
fn spec_value(value: &SpecValue) -> Value {
    match value {
        SpecValue::Null => Value::Null,
        SpecValue::Bool(b) => Value::Bool(*b),
        SpecValue::Int(i) => Value::from(*i),
        SpecValue::Float(f) => Value::from(*f),
        SpecValue::Str(t) => Value::from(t.text.as_str()),
        SpecValue::List(items) => Value::from(items.iter().map(spec_value).collect::<Vec<_>>()),
        SpecValue::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), spec_value(v)))
                .collect(),
        ),
    }
}

/// A duration as whole nanoseconds (exact, whatever unit it was written in).
fn nanos(duration: Duration) -> Value {
    Value::from(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// An object under construction; fields at their default are not written.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), value);
    }

    fn text(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.set(key, Value::from(v));
        }
    }

    fn duration(&mut self, key: &str, value: Option<Duration>) {
        if let Some(d) = value {
            self.set(key, nanos(d));
        }
    }

    fn flag(&mut self, key: &str, value: bool, default: bool) {
        if value != default {
            self.set(key, Value::Bool(value));
        }
    }

    fn templates(&mut self, key: &str, entries: &[(String, Template)]) {
        if !entries.is_empty() {
            self.set(
                key,
                Value::Object(
                    entries
                        .iter()
                        .map(|(k, t)| (k.clone(), Value::from(t.text.as_str())))
                        .collect(),
                ),
            );
        }
    }
}

/// Canonical JSON: object keys in byte order, no whitespace, strings and numbers as
/// `serde_json` writes them. Independent of the order a map keeps its keys in.
fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_canonical(out, &map[key]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::String(s) => write_string(out, s),
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            let _ = write!(out, "{value}");
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    let _ = write!(out, "{}", Value::from(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": [{"z": 1, "a": "x\"y"}], "a": null});
        let mut out = String::new();
        write_canonical(&mut out, &value);
        assert_eq!(out, r#"{"a":null,"b":[{"a":"x\"y","z":1}]}"#);
    }
}
