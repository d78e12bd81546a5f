//! Decoding the value shapes shared by many fields: templates, expressions, durations, bodies.

use std::time::Duration;

use super::decode::{Decoder, Spanned};
use super::duration;
use super::model::{Expr, Template, Value};
use super::node::{Node, NodeKind};

impl Decoder {
    /// A templated string.
    pub fn template(&mut self, node: &Node, field: &str) -> Option<Template> {
        self.string(node, field).map(|s| Template {
            text: s.value,
            span: s.span,
        })
    }

    /// A bare expression; `{{ … }}` around it is accepted and stripped.
    pub fn expr(&mut self, node: &Node, field: &str) -> Option<Expr> {
        let s = self.string(node, field)?;
        Some(Expr {
            text: strip_braces(&s.value).to_owned(),
            span: s.span,
        })
    }

    /// A duration such as `30s` or `1h30m`.
    pub fn duration(&mut self, node: &Node, field: &str) -> Option<Spanned<Duration>> {
        if let NodeKind::Int(n) = node.kind {
            let d = self
                .error(
                    node.span,
                    format!("`{field}` needs a unit: `{n}` is not a duration"),
                )
                .label("no unit")
                .hint(format!("write `{n}s`, `{n}m` or `{n}h`"));
            self.push(d);
            return None;
        }
        let text = self.string(node, field)?;
        match duration::parse(&text.value) {
            Ok(d) => Some(Spanned::new(d, text.span)),
            Err(err) => {
                let d = self
                    .error(text.span, format!("invalid duration in `{field}`: {err}"))
                    .label("not a duration")
                    .hint("durations are a number and a unit (ms, s, m, h, d), e.g. `30s`, `5m`, `1h30m`");
                self.push(d);
                None
            }
        }
    }

    /// A positive whole number that fits in `usize`.
    pub fn count(&mut self, node: &Node, field: &str) -> Option<Spanned<usize>> {
        let n = self.integer(node, field)?;
        match usize::try_from(n.value) {
            Ok(v) if v > 0 => Some(Spanned::new(v, n.span)),
            _ => {
                let d = self
                    .error(
                        n.span,
                        format!("`{field}` must be at least 1, found {}", n.value),
                    )
                    .label("not a positive number");
                self.push(d);
                None
            }
        }
    }
}

/// A YAML value whose strings are templates.
pub fn template_value(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Int(i) => Value::Int(*i),
        NodeKind::Float(f) => Value::Float(*f),
        NodeKind::Str(s) => Value::Str(Template {
            text: s.clone(),
            span: node.span,
        }),
        NodeKind::Seq(items) => Value::List(items.iter().map(template_value).collect()),
        NodeKind::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_text(), template_value(v)))
                .collect(),
        ),
    }
}

/// `{{ x }}` → `x`; anything else unchanged.
pub fn strip_braces(text: &str) -> &str {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        return inner.trim();
    }
    t
}
