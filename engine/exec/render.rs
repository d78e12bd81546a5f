//! Rendering a step's templates against the run's context, with errors that name the field.

use serde_json::Value;

use super::step::Failure;
use super::step::assert::error_text;
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
            .map_err(|e| Failure::new(format!("in `{field}`: {}", error_text(&e))))
    }

    /// A template rendered to a typed value (a single `{{ expr }}` keeps its type).
    pub fn typed(&self, t: &Template, field: &str) -> Result<Value, Failure> {
        template::render(&t.text, &self.value)
            .map_err(|e| Failure::new(format!("in `{field}`: {}", error_text(&e))))
    }

    /// An expression evaluated to a value.
    pub fn eval(&self, expr: &spec::Expr, field: &str) -> Result<minijinja::Value, Failure> {
        template::eval(&expr.text, &self.value)
            .map_err(|e| Failure::new(format!("in `{field}: {}`: {}", expr.text, error_text(&e))))
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
