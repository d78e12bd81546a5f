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
    Call, Command, ForEach, ForEachItems, HttpBody, HttpRequest, Poll, Probe, ProbeKind, Retry,
    Step, StepKind, Template, Value as SpecValue,
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
        kind,
        kind_span: _,
        needs,
        when,
        for_each,
        outputs,
        poll,
        timeout,
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
        fields.set("for_each", fan_out(for_each));
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
    fields.duration("timeout", *timeout);
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
    if !on.is_empty() {
        fields.set(
            "on",
            Value::from(on.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>()),
        );
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
        StepKind::Manual(text) => object([("manual", Value::from(text.text.as_str()))]),
        StepKind::Assert(exprs) => object([(
            "assert",
            Value::from(exprs.iter().map(|e| e.text.as_str()).collect::<Vec<_>>()),
        )]),
        StepKind::Sleep(duration) => object([("sleep", nanos(*duration))]),
        StepKind::Call(call) => object([("call", calling(call))]),
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

fn fan_out(for_each: &ForEach) -> Value {
    let ForEach {
        items,
        as_name,
        max_parallel,
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
    if let Some(n) = max_parallel {
        fields.set("max_parallel", Value::from(*n));
    }
    Value::Object(fields.0)
}

fn polling(poll: &Poll) -> Value {
    let Poll { until, interval } = poll;
    object([
        ("until", Value::from(until.text.as_str())),
        ("interval", nanos(*interval)),
    ])
}

fn retrying(retry: &Retry) -> Value {
    let Retry {
        attempts,
        delay,
        backoff,
        max_delay,
    } = retry;
    let mut fields = Fields::default();
    fields.set("attempts", Value::from(*attempts));
    fields.set("delay", nanos(*delay));
    fields.set("backoff", Value::from(*backoff));
    fields.duration("max_delay", *max_delay);
    Value::Object(fields.0)
}

fn probe(probe: &Probe) -> Value {
    let Probe { kind, span: _ } = probe;
    match kind {
        ProbeKind::Run(command) => object([("run", run(command))]),
        ProbeKind::Http(request) => object([("http", http(request))]),
    }
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
