//! Reading typed values out of located YAML nodes, collecting every mistake on the way.

use std::sync::Arc;

use super::node::{Node, NodeKind};
use super::source::{SourceFile, Span};
use super::suggest::did_you_mean;
use crate::diagnostic::Diagnostic;

/// A value with the span of the YAML node it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs a value with its span.
    pub const fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

/// Decodes nodes of one file and keeps every diagnostic it finds.
pub struct Decoder {
    /// The file being decoded.
    pub file: Arc<SourceFile>,
    /// Everything found wrong so far.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether a step was too broken to keep (later checks would then see false gaps).
    pub dropped_steps: bool,
}

impl Decoder {
    /// A decoder for one file.
    pub fn new(file: &Arc<SourceFile>) -> Self {
        Self {
            file: Arc::clone(file),
            diagnostics: Vec::new(),
            dropped_steps: false,
        }
    }

    /// Records a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Starts a diagnostic at a span of this file.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, span, message)
    }

    fn wrong_type(&mut self, node: &Node, field: &str, expected: &str) {
        // `field` is a key (`url`) or a description of a value (`a step`, `the runbook`).
        let what = if field.contains(' ') {
            field.to_owned()
        } else {
            format!("`{field}`")
        };
        let mut d = self
            .error(
                node.span,
                format!(
                    "{what} must be {expected}, found a {}",
                    node.kind.describe()
                ),
            )
            .label(format!("expected {expected}"));
        let rest = &self.file.text[node.span.offset..];
        if matches!(node.kind, NodeKind::Map(_)) && rest.starts_with("{{") {
            // Underline the whole unquoted `{{ … }}`, not only its first brace.
            if let Some(end) = rest.lines().next().and_then(|l| l.rfind("}}")) {
                d.at.span = Span::new(node.span.offset, end + 2);
            }
            d = d.hint("a value that starts with `{{` must be quoted, or YAML reads it as a mapping: \"{{ … }}\"");
        }
        self.push(d);
    }

    /// Opens a mapping node for field-by-field reading.
    pub fn fields<'n>(&mut self, node: &'n Node, field: &str) -> Option<Fields<'n>> {
        if let NodeKind::Map(entries) = &node.kind {
            Some(Fields::new(entries, node.span))
        } else {
            self.wrong_type(node, field, "a mapping");
            None
        }
    }

    /// Iterates a mapping's entries with string keys (for user-named maps: params, env…).
    pub fn entries<'n>(&mut self, node: &'n Node, field: &str) -> Vec<(Spanned<String>, &'n Node)> {
        let NodeKind::Map(entries) = &node.kind else {
            if node.kind != NodeKind::Null {
                self.wrong_type(node, field, "a mapping");
            }
            return Vec::new();
        };
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (key, value) in entries {
            let name = key.scalar_text();
            if seen.contains(&name) {
                let d = self
                    .error(key.span, format!("`{name}` is defined twice in `{field}`"))
                    .label("second definition");
                self.push(d);
                continue;
            }
            seen.push(name.clone());
            out.push((Spanned::new(name, key.span), value));
        }
        out
    }

    /// A sequence's items.
    pub fn items<'n>(&mut self, node: &'n Node, field: &str) -> &'n [Node] {
        match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => &[],
            _ => {
                self.wrong_type(node, field, "a list");
                &[]
            }
        }
    }

    /// A scalar as text (numbers and booleans are accepted and written back as text).
    pub fn string(&mut self, node: &Node, field: &str) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Str(s) => Some(Spanned::new(s.clone(), node.span)),
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                Some(Spanned::new(node.scalar_text(), node.span))
            }
            _ => {
                self.wrong_type(node, field, "a string");
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one when `one_ok`.
    pub fn strings(
        &mut self,
        node: &Node,
        field: &str,
        one_ok: bool,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        match &node.kind {
            NodeKind::Seq(items) => {
                let values = items
                    .iter()
                    .filter_map(|item| self.string(item, field))
                    .collect();
                Some(Spanned::new(values, node.span))
            }
            NodeKind::Str(_) if one_ok => {
                let one = self.string(node, field)?;
                Some(Spanned::new(vec![one], node.span))
            }
            _ => {
                self.wrong_type(
                    node,
                    field,
                    if one_ok {
                        "a string or a list of strings"
                    } else {
                        "a list of strings"
                    },
                );
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<Spanned<bool>> {
        if let NodeKind::Bool(b) = node.kind {
            Some(Spanned::new(b, node.span))
        } else {
            let mut d = self
                .error(
                    node.span,
                    format!(
                        "`{field}` must be true or false, found a {}",
                        node.kind.describe()
                    ),
                )
                .label("expected a boolean");
            if let NodeKind::Str(s) = &node.kind
                && matches!(
                    s.to_ascii_lowercase().as_str(),
                    "yes" | "no" | "on" | "off" | "\"true\"" | "'true'"
                )
            {
                d = d.hint("write `true` or `false` (YAML 1.2 reads yes/no/on/off as strings)");
            }
            self.push(d);
            None
        }
    }

    /// A whole number.
    pub fn integer(&mut self, node: &Node, field: &str) -> Option<Spanned<i64>> {
        if let NodeKind::Int(i) = node.kind {
            Some(Spanned::new(i, node.span))
        } else {
            self.wrong_type(node, field, "a whole number");
            None
        }
    }

    /// A number (whole or not).
    pub fn number(&mut self, node: &Node, field: &str) -> Option<Spanned<f64>> {
        match node.kind {
            #[expect(
                clippy::cast_precision_loss,
                reason = "factors written in a runbook are small"
            )]
            NodeKind::Int(i) => Some(Spanned::new(i as f64, node.span)),
            NodeKind::Float(f) => Some(Spanned::new(f, node.span)),
            _ => {
                self.wrong_type(node, field, "a number");
                None
            }
        }
    }
}

/// A mapping being read field by field; whatever is not taken is reported as unknown.
pub struct Fields<'n> {
    entries: &'n [(Node, Node)],
    taken: Vec<bool>,
    /// The span of the mapping itself.
    pub span: Span,
}

impl<'n> Fields<'n> {
    fn new(entries: &'n [(Node, Node)], span: Span) -> Self {
        Self {
            entries,
            taken: vec![false; entries.len()],
            span,
        }
    }

    /// Takes a field's value, if present.
    pub fn take(&mut self, key: &str) -> Option<&'n Node> {
        let mut found = None;
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if matches!(&k.kind, NodeKind::Str(s) if s == key) && found.is_none() {
                self.taken[i] = true;
                found = Some(v);
            }
        }
        found
    }

    /// The span of a field's key, if present.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, NodeKind::Str(s) if s == key))
            .map(|(k, _)| k.span)
    }

    /// Whether the mapping has a field (taken or not).
    pub fn has(&self, key: &str) -> bool {
        self.key_span(key).is_some()
    }

    /// Reports unknown and repeated keys. `known` lists every key valid here, for hints.
    pub fn finish(self, decoder: &mut Decoder, context: &str, known: &[&str]) {
        let mut seen: Vec<String> = Vec::new();
        for (i, (key, _)) in self.entries.iter().enumerate() {
            let name = key.scalar_text();
            if seen.contains(&name) {
                let d = decoder
                    .error(key.span, format!("`{name}` is given twice in {context}"))
                    .label("repeated key");
                decoder.push(d);
                continue;
            }
            seen.push(name.clone());
            if !self.taken[i] {
                let d = decoder
                    .error(key.span, format!("unknown key `{name}` in {context}"))
                    .label("not a field here")
                    .maybe_hint(
                        did_you_mean(&name, known.iter().copied())
                            .or_else(|| Some(format!("valid keys: {}", known.join(", ")))),
                    );
                decoder.push(d);
            }
        }
    }
}
