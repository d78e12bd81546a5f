//! Rendering a step's templates against the run's context, with errors that name the field and,
//! for an undefined value, what is undefined and why.

use minijinja::ErrorKind;
use serde_json::Value;

use super::step::Failure;
use crate::spec::{self, Template};
use crate::template;

/// The context a step's templates see.
pub struct Scope {
    /// As a template value.
    pub value: minijinja::Value,
}

impl Scope {
    /// Wraps a JSON context.
    pub fn new(json: &Value) -> Self {
        Self {
            value: template::to_value(json),
        }
    }

    /// Wraps a context that is already a template value.
    pub fn from_value(value: minijinja::Value) -> Self {
        Self { value }
    }

    #[must_use]
    /// The same context with one more name (`result`, the `as` item).
    pub fn with(&self, name: &str, extra: &Value) -> Self {
        Self {
            value: super::context::extend(&self.value, name, template::to_value(extra)),
        }
    }

    /// A template rendered to text.
    pub fn text(&self, t: &Template, field: &str) -> Result<String, Failure> {
        template::render_text(&t.text, &self.value)
            .map_err(|e| Failure::new(format!("in `{field}`: {}", error_text(&e, &self.value))))
    }

    /// A template rendered to a typed value (a single `{{ expr }}` keeps its type).
    pub fn typed(&self, t: &Template, field: &str) -> Result<Value, Failure> {
        template::render(&t.text, &self.value)
            .map_err(|e| Failure::new(format!("in `{field}`: {}", error_text(&e, &self.value))))
    }

    /// An expression evaluated to a value.
    pub fn eval(&self, expr: &spec::Expr, field: &str) -> Result<minijinja::Value, Failure> {
        template::eval(&expr.text, &self.value).map_err(|e| {
            Failure::new(format!(
                "in `{field}: {}`: {}",
                expr.text,
                error_text(&e, &self.value)
            ))
        })
    }

    /// A value whose strings are templates.
    pub fn value(&self, v: &spec::Value, field: &str) -> Result<Value, Failure> {
        let mut error = None;
        let rendered =
            crate::plan::build::render_value_with(v, &mut |t| match self.typed(t, field) {
                Ok(v) => Some(v),
                Err(e) => {
                    error = Some(e);
                    None
                }
            });
        rendered.ok_or_else(|| {
            error.unwrap_or_else(|| Failure::new(format!("in `{field}`: cannot render")))
        })
    }

    /// Whether an expression reads a value that is known only at run time (a rehearsal's
    /// placeholder `<steps.ID.outputs.NAME>`).
    pub fn reads_unknown(&self, expr: &str) -> bool {
        super::step::assert::values_in(expr, &self.value)
            .iter()
            .any(|(_, v)| v.contains("<steps."))
    }
}

/// A template error as one line of text. When a value is undefined, it says which (minijinja
/// names the expression) and why: the step was skipped, the param was not given, ….
pub fn error_text(err: &minijinja::Error, ctx: &minijinja::Value) -> String {
    let text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.to_string(),
    };
    let Some(path) = undefined_path(err) else {
        return text;
    };
    let why = explain_undefined(path, ctx);
    match (err.kind(), why) {
        (ErrorKind::UndefinedError, Some(why)) => format!("`{path}` is undefined: {why}"),
        (ErrorKind::UndefinedError, None) => format!("`{path}` is undefined"),
        (_, Some(why)) => format!("{text}: {why}"),
        (_, None) => text,
    }
}

/// The expression an error names as undefined: ``… `steps.a.outputs.b` is undefined …``.
fn undefined_path(err: &minijinja::Error) -> Option<&str> {
    let detail = err.detail()?;
    let end = detail.find("` is undefined")?;
    let start = detail[..end].rfind('`')? + 1;
    Some(&detail[start..end])
}

/// Why a dotted path is undefined in a context: the first name along it that is missing, said
/// in the runbook's terms. `None` for anything but a plain dotted path, or a path that is defined.
fn explain_undefined(path: &str, ctx: &minijinja::Value) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let plain = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !parts.iter().all(plain) {
        return None;
    }
    let mut value = ctx.clone();
    for (i, name) in parts.iter().enumerate() {
        match value.get_attr(name) {
            Ok(next) if !next.is_undefined() => value = next,
            _ => return Some(why_missing(&parts[..i], name, &value, ctx)),
        }
    }
    None
}

fn why_missing(
    parents: &[&str],
    name: &str,
    parent: &minijinja::Value,
    ctx: &minijinja::Value,
) -> String {
    match parents {
        [] => format!("nothing named `{name}` is in scope here"),
        ["params"] => format!("param `{name}` has no value: it has no default and was not given"),
        ["env"] => format!("the environment variable `{name}` is not set"),
        ["steps"] => format!("no step `{name}` is visible here"),
        ["result"] if name == "json" => {
            let output = ["stdout", "body"]
                .into_iter()
                .find_map(|k| parent.get_attr(k).ok().filter(|v| !v.is_undefined()))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let start: String = output.chars().take(60).collect();
            let more = if output.chars().count() > 60 {
                "…"
            } else {
                ""
            };
            format!(
                "the output is not JSON: `{}{more}` (test it first with `result.json is defined`)",
                start.trim_end()
            )
        }
        ["steps", id, "outputs"] => {
            let step = ctx
                .get_attr("steps")
                .and_then(|steps| steps.get_attr(id))
                .unwrap_or_default();
            let status = step.get_attr("status").unwrap_or_default();
            let fans_out = step
                .get_attr("items")
                .ok()
                .and_then(|items| items.len())
                .is_some_and(|n| n > 0);
            match status.as_str() {
                Some("skipped") => format!("step `{id}` has no output `{name}`: it was skipped"),
                Some("failed") => format!("step `{id}` has no output `{name}`: it failed"),
                Some("pending" | "running") => {
                    format!("step `{id}` has no output `{name}` yet: it has not finished")
                }
                _ if fans_out => format!(
                    "step `{id}` fans out: each item has its own outputs, in \
                     `steps.{id}.items[i].outputs.{name}`"
                ),
                _ => match keys(parent) {
                    Some(keys) if !keys.is_empty() => {
                        format!("step `{id}` has no output `{name}` (it has {keys})")
                    }
                    _ => format!("step `{id}` has no output `{name}`: it has no outputs"),
                },
            }
        }
        _ => {
            let shown = parents.join(".");
            match keys(parent) {
                Some(keys) if !keys.is_empty() => {
                    format!("`{shown}` has no `{name}` (it has {keys})")
                }
                _ => format!("`{shown}` has no `{name}`"),
            }
        }
    }
}

/// A map's keys, for saying what it has instead (at most ten).
fn keys(map: &minijinja::Value) -> Option<String> {
    if map.kind() != minijinja::value::ValueKind::Map {
        return None;
    }
    let keys: Vec<String> = map.try_iter().ok()?.map(|k| format!("`{k}`")).collect();
    Some(if keys.len() > 10 {
        format!("{}, …", keys[..10].join(", "))
    } else {
        keys.join(", ")
    })
}
