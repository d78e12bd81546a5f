//! The YAML document as a tree of located nodes: the one place serde-saphyr is called (and
//! [`super::events`], its fast path, the one place its parser is driven directly).
//!
//! Deserializing straight into the raw runbook structs would stop at the first unknown key or
//! wrong type. Reading a located tree first lets `raw` report every such mistake in one pass.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::source::{SourceFile, Span};

/// One YAML node with the span of its first character (and, for scalars, its text).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node is in its file.
    pub span: Span,
    /// What the node holds.
    pub kind: NodeKind,
}

/// The shapes a YAML node can take.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (plain, quoted or block scalar).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Node, Node)>),
}

impl NodeKind {
    /// The name of the shape, as used in "expected a …, found a …" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Int(_) => "integer",
            Self::Float(_) => "number",
            Self::Str(_) => "string",
            Self::Seq(_) => "list",
            Self::Map(_) => "mapping",
        }
    }
}

impl Node {
    /// Converts the node to a JSON value (for defaults, literal lists and request bodies).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Null => serde_json::Value::Null,
            NodeKind::Bool(b) => serde_json::Value::Bool(*b),
            NodeKind::Int(i) => serde_json::Value::from(*i),
            NodeKind::Float(f) => serde_json::Value::from(*f),
            NodeKind::Str(s) => serde_json::Value::String(s.clone()),
            NodeKind::Seq(items) => items.iter().map(Node::to_json).collect(),
            NodeKind::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.scalar_text(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// A scalar's text as written (used for mapping keys).
    pub fn scalar_text(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => f.to_string(),
            NodeKind::Null => "null".to_owned(),
            NodeKind::Seq(_) | NodeKind::Map(_) => String::new(),
        }
    }
}

/// A YAML syntax error, located.
#[derive(Debug)]
pub struct SyntaxError {
    /// What the parser said.
    pub message: String,
    /// Where, when the parser knew.
    pub span: Option<Span>,
    /// How to fix it, for the mistakes runbook authors make most.
    pub hint: Option<String>,
}

/// Parses a whole document into a located tree.
pub fn parse(file: &Arc<SourceFile>) -> Result<Node, SyntaxError> {
    if file.text.trim().is_empty() {
        return Ok(Node {
            span: Span::default(),
            kind: NodeKind::Null,
        });
    }
    let budget = budget(&file.text);
    if let Some(mut root) = super::events::read(&file.text, &budget) {
        keys_as_written(&mut root, &file.text);
        return Ok(root);
    }
    parse_with_serde(file, budget)
}

/// serde-saphyr's limits for a file. They guard against alias amplification; without aliases a
/// node or an event takes at least one byte of text, so those two caps grow with the file and a
/// long runbook (100k steps) is read whole.
pub(super) fn budget(text: &str) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len());
    budget
}

/// Parses a document with serde-saphyr: every document [`super::events::read`] leaves alone,
/// and the reference its fast path is tested against.
pub(super) fn parse_with_serde(
    file: &Arc<SourceFile>,
    budget: serde_saphyr::Budget,
) -> Result<Node, SyntaxError> {
    // YAML 1.2 booleans only: `yes`/`no`/`on`/`off` stay strings, so `destructive: yes` is
    // reported instead of silently meaning `true` (editors and the JSON Schema read it as text).
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: Some(budget),
    };
    let mut root =
        serde_saphyr::from_str_with_options::<Node>(&file.text, options).map_err(|err| {
            let span = err.location().map(|loc| {
                // The parser counts columns in characters, not bytes.
                let line = usize::try_from(loc.line()).unwrap_or(usize::MAX);
                let col = usize::try_from(loc.column()).unwrap_or(usize::MAX);
                file.whole_chars(Span::new(file.offset_of(line, col), 1))
            });
            let message = first_line(&err.to_string());
            let (span, hint) = explain(file, span, &message);
            SyntaxError {
                message,
                span,
                hint,
            }
        })?;
    keys_as_written(&mut root, &file.text);
    Ok(root)
}

/// Mapping keys are names: `on:` is the key "on", never the YAML 1.1 boolean it resembles.
fn keys_as_written(node: &mut Node, text: &str) {
    match &mut node.kind {
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                if !matches!(
                    key.kind,
                    NodeKind::Str(_) | NodeKind::Seq(_) | NodeKind::Map(_)
                ) {
                    let written = text
                        .get(key.span.offset..key.span.end())
                        .unwrap_or_default();
                    if !written.is_empty() {
                        key.kind = NodeKind::Str(written.to_owned());
                    }
                }
                keys_as_written(value, text);
            }
        }
        NodeKind::Seq(items) => items.iter_mut().for_each(|i| keys_as_written(i, text)),
        _ => {}
    }
}

/// The parser's message without what the diagnostic already shows (`error: line 3 column 7: `)
/// or what only a Rust caller could act on.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let line = line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(at, _)| at.contains(" column "))
        .map_or(line, |(_, rest)| rest);
    let line = line
        .split_once(", set DuplicateKeyPolicy")
        .map_or(line, |(head, _)| head);
    let line = line
        .rsplit_once(" at line ")
        .filter(|(_, at)| at.contains(", column "))
        .map_or(line, |(head, _)| head);
    line.trim_end_matches(['.', ' ']).to_owned()
}

/// A hint for a syntax error, and a better place to point at when the cause is clear: a value
/// starting with `{{` that YAML read as a flow mapping is pointed at where it starts.
fn explain(file: &SourceFile, span: Option<Span>, message: &str) -> (Option<Span>, Option<String>) {
    let Some(at) = span else {
        return (None, None);
    };
    let line_start = file.text[..at.offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = file.text[line_start..]
        .find('\n')
        .map_or(file.text.len(), |i| line_start + i);
    let line = &file.text[line_start..line_end];
    if let Some(value) = line.find(": {{").or_else(|| line.find("- {{")) {
        let start = line_start + value + 2;
        let span = Span::new(start, line_end - start);
        let hint = "a value that starts with `{{` must be quoted, or YAML reads it as a mapping: \"{{ … }}\"";
        return (Some(span), Some(hint.to_owned()));
    }
    let hint = if message.starts_with("mapping values are not allowed") {
        Some("a value that contains `: ` must be quoted: 'echo \"a: b\"'")
    } else if message.starts_with("duplicate mapping key") {
        Some("a key may appear once in a mapping; remove or rename one of them")
    } else if message.starts_with("budget breached: Depth") {
        Some("mappings and lists may nest at most 64 levels deep")
    } else if message.contains("did not find expected") {
        Some("check this line's indentation: the keys of one mapping start in the same column")
    } else {
        None
    };
    (span, hint.map(str::to_owned))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Inner>::deserialize(deserializer)?;
        let at = spanned.referenced.span();
        let offset = at
            .byte_offset()
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or(0);
        let len = at
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0);
        Ok(Self {
            span: Span::new(offset, len),
            kind: spanned.value.0,
        })
    }
}

/// The node kind without a span; only `Spanned<Inner>` is ever deserialized.
struct Inner(NodeKind);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(InnerVisitor)
    }
}

struct InnerVisitor;

impl<'de> Visitor<'de> for InnerVisitor {
    type Value = Inner;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Inner, D::Error> {
        Inner::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Inner, E> {
        i64::try_from(v).map_or_else(
            |_| Err(E::custom(format!("integer {v} is too large"))),
            |i| Ok(Inner(NodeKind::Int(i))),
        )
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Str(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Inner, E> {
        Ok(Inner(NodeKind::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inner, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Inner(NodeKind::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Inner, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Inner(NodeKind::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        parse(&SourceFile::new("t.yaml", text)).expect("valid yaml")
    }

    #[test]
    fn keys_and_values_carry_their_offsets() {
        let text = "name: demo\nsteps:\n  - id: one\n    run: echo hi\n";
        let NodeKind::Map(entries) = tree(text).kind else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[0].0.span.offset, 0);
        assert_eq!(entries[0].1.span.offset, text.find("demo").unwrap());
        let NodeKind::Seq(steps) = &entries[1].1.kind else {
            panic!("expected a list")
        };
        let NodeKind::Map(step) = &steps[0].kind else {
            panic!("expected a mapping")
        };
        assert_eq!(step[1].1.span.offset, text.find("echo").unwrap());
        assert_eq!(step[1].1.kind, NodeKind::Str("echo hi".into()));
    }

    #[test]
    fn keys_that_look_like_booleans_stay_names() {
        let NodeKind::Map(entries) = tree(
            "on: db1
yes: 1
",
        )
        .kind
        else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[0].0.kind, NodeKind::Str("on".into()));
        assert_eq!(entries[1].0.kind, NodeKind::Str("yes".into()));
    }

    #[test]
    fn scalars_are_typed() {
        let NodeKind::Map(entries) = tree("a: 5\nb: true\nc: 5m\nd: ~\n").kind else {
            panic!("expected a mapping")
        };
        let kinds: Vec<_> = entries.iter().map(|(_, v)| v.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                NodeKind::Int(5),
                NodeKind::Bool(true),
                NodeKind::Str("5m".into()),
                NodeKind::Null
            ]
        );
    }
}
