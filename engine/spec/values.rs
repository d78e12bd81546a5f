//! Decoding the value shapes shared by many fields: templates, expressions, durations, bodies.

use std::time::Duration;

use super::decode::{Decoder, Spanned};
use super::duration;
use super::model::{Batch, Count, Expr, Setting, Template, Value};
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

    /// A duration, or a template over params that renders to one.
    pub fn duration_setting(&mut self, node: &Node, field: &str) -> Option<Setting<Duration>> {
        if let Some(t) = self.setting_template(node, field) {
            return Some(Setting::Template(t));
        }
        self.duration(node, field).map(|d| Setting::Fixed(d.value))
    }

    /// A count of items (`3`), a percentage of them (`"25%"`), or a template over params that
    /// renders to either. `zero_ok`: 0 is allowed (a failure budget).
    pub fn count_setting(
        &mut self,
        node: &Node,
        field: &str,
        zero_ok: bool,
    ) -> Option<Setting<Count>> {
        if let Some(t) = self.setting_template(node, field) {
            return Some(Setting::Template(t));
        }
        self.items_count(node, field, zero_ok).map(Setting::Fixed)
    }

    /// Batch sizes: one count or percentage, or a list of them (the last repeats), or a
    /// template over params.
    pub fn batch_setting(&mut self, node: &Node, field: &str) -> Option<Batch> {
        if let Some(t) = self.setting_template(node, field) {
            return Some(Batch::Template(t));
        }
        if let NodeKind::Seq(items) = &node.kind {
            if items.is_empty() {
                let d = self
                    .error(node.span, format!("`{field}` is an empty list"))
                    .label("no batch sizes")
                    .hint("e.g. `batch: [1, \"10%\", \"50%\"]`: a canary, then larger batches");
                self.push(d);
                return None;
            }
            let sizes: Vec<Setting<Count>> = items
                .iter()
                .filter_map(|i| self.count_setting(i, field, false))
                .collect();
            return (sizes.len() == items.len()).then_some(Batch::Sizes(sizes));
        }
        self.items_count(node, field, false)
            .map(|c| Batch::Sizes(vec![Setting::Fixed(c)]))
    }

    /// A whole number of at least 1 (attempts), or a template over params.
    pub fn number_setting(&mut self, node: &Node, field: &str) -> Option<Setting<u32>> {
        if let Some(t) = self.setting_template(node, field) {
            return Some(Setting::Template(t));
        }
        self.count(node, field)
            .map(|c| Setting::Fixed(u32::try_from(c.value).unwrap_or(u32::MAX)))
    }

    /// A string holding `{{`: a setting given as a template.
    fn setting_template(&mut self, node: &Node, field: &str) -> Option<Template> {
        match &node.kind {
            NodeKind::Str(s) if s.contains("{{") => self.template(node, field),
            _ => None,
        }
    }

    /// `3` or `"25%"`.
    fn items_count(&mut self, node: &Node, field: &str, zero_ok: bool) -> Option<Count> {
        if let NodeKind::Str(s) = &node.kind
            && let Some(number) = s.trim().strip_suffix('%')
        {
            return match number.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Some(Count::Percent(p)),
                Ok(0) if zero_ok => Some(Count::Items(0)),
                _ => {
                    let d = self
                        .error(node.span, format!("`{field}: {s}` is not a percentage of the items"))
                        .label("1% to 100%")
                        .hint("a percentage of the fan-out's items, from 1% to 100%, or a number of items");
                    self.push(d);
                    None
                }
            };
        }
        if zero_ok && node.kind == NodeKind::Int(0) {
            return Some(Count::Items(0));
        }
        if let NodeKind::Str(s) = &node.kind {
            let d = self
                .error(
                    node.span,
                    format!("`{field}` must be a number of items or a percentage, found `{s}`"),
                )
                .label("expected a number or \"P%\"")
                .hint("e.g. `2`, or `\"25%\"` of the items");
            self.push(d);
            return None;
        }
        self.count(node, field).map(|c| Count::Items(c.value))
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
