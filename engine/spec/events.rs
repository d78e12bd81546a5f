//! Reading the located node tree straight from the YAML parser's events: the fast path of
//! [`super::node::parse`] for the plain YAML that runbooks are written in.
//!
//! serde-saphyr wraps every node in `Spanned` and buffers every mapping entry as events before
//! handing it on, which is most of the time `validate` spends on a long runbook. This reader
//! drives the same parser with the same options and limits, and builds the same tree, but only
//! for documents whose meaning cannot differ: no anchors, aliases, tags, merge keys or duplicate
//! keys, one document, and plain scalars that are plainly a string, a boolean, null or a decimal
//! integer. For anything else, and for every error, it returns `None` and serde-saphyr reads
//! the document, so what is accepted and every message stay exactly as they were.

use std::borrow::Cow;

use serde_saphyr::Budget;
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span as ParserSpan};

use super::node::{Node, NodeKind};
use super::source::Span;

/// Margin kept below every budget limit, so that the fast path never accepts a document that
/// serde-saphyr would refuse for being at its limit.
const MARGIN: usize = 16;

/// The tree of a document in the plain subset, or `None` to read it with serde-saphyr.
pub fn read(text: &str, budget: &Budget) -> Option<Node> {
    if text.len() >= budget.max_total_scalar_bytes.saturating_sub(MARGIN) {
        return None;
    }
    let mut reader = Reader {
        parser: Parser::new_from_str_with_options(text, parser_options(budget)),
        budget,
        events: 0,
        nodes: 0,
        depth: 0,
    };
    match reader.next()? {
        (Event::StreamStart, _) => {}
        _ => return None,
    }
    match reader.next()? {
        (Event::DocumentStart(_, None), _) => {}
        _ => return None,
    }
    let first = reader.next()?;
    let root = reader.node(first)?;
    match reader.next()? {
        (Event::DocumentEnd, _) => {}
        _ => return None,
    }
    match reader.next()? {
        (Event::StreamEnd, _) => Some(root),
        _ => None,
    }
}

/// The parser options serde-saphyr derives from the same budget (`Options::parser_options`).
fn parser_options(budget: &Budget) -> Options {
    let mut options = Options::default();
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    options.emit_comments = true;
    options.max_buffered_comment_events = budget.max_buffered_comment_events;
    options.strict_indentation = false;
    options
}

struct Reader<'t, 'b> {
    parser: Parser<'t, serde_saphyr::granit_parser::StrInput<'t>>,
    budget: &'b Budget,
    /// Parser events so far, comments included (serde-saphyr's budget counts them all).
    events: usize,
    /// Scalars, sequences and mappings so far.
    nodes: usize,
    /// Open sequences and mappings.
    depth: usize,
}

impl<'t> Reader<'t, '_> {
    /// The next event that is not a comment; `None` on an error or at a budget limit.
    fn next(&mut self) -> Option<(Event<'t>, ParserSpan)> {
        loop {
            let (event, span) = self.parser.next()?.ok()?;
            self.events += 1;
            if self.events >= self.budget.max_events.saturating_sub(MARGIN) {
                return None;
            }
            if !matches!(event, Event::Comment(..)) {
                return Some((event, span));
            }
        }
    }

    /// The node that starts with `first`.
    fn node(&mut self, first: (Event<'t>, ParserSpan)) -> Option<Node> {
        let (event, span) = first;
        self.nodes += 1;
        if self.nodes >= self.budget.max_nodes.saturating_sub(MARGIN) {
            return None;
        }
        let span = byte_span(&span)?;
        let kind = match event {
            Event::Scalar(value, style, 0, None) => scalar(value, style)?,
            Event::SequenceStart(_, 0, None) => {
                self.enter()?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        item => items.push(self.node(item)?),
                    }
                }
                self.depth -= 1;
                NodeKind::Seq(items)
            }
            Event::MappingStart(_, 0, None) => {
                self.enter()?;
                let mut entries: Vec<(Node, Node)> = Vec::new();
                loop {
                    let key = match self.next()? {
                        (Event::MappingEnd, _) => break,
                        key => self.node(key)?,
                    };
                    if !is_plain_key(&key, &entries) {
                        return None;
                    }
                    let next = self.next()?;
                    let value = self.node(next)?;
                    entries.push((key, value));
                }
                self.depth -= 1;
                NodeKind::Map(entries)
            }
            _ => return None,
        };
        Some(Node { span, kind })
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth + 2 < self.budget.max_depth).then_some(())
    }
}

/// The span serde-saphyr gives the node of an event (`location_from_span`), in bytes.
fn byte_span(span: &ParserSpan) -> Option<Span> {
    let start = span.start.byte_offset()?;
    let end = span.end.byte_offset()?;
    let len = end.saturating_sub(start);
    (u32::try_from(start).is_ok() && u32::try_from(len).is_ok()).then_some(Span::new(start, len))
}

/// A mapping key in the subset: a string or an integer, no merge key, not written before.
fn is_plain_key(key: &Node, earlier: &[(Node, Node)]) -> bool {
    let text = match &key.kind {
        NodeKind::Str(s) if s != "<<" => Cow::Borrowed(s.as_str()),
        NodeKind::Int(i) => Cow::Owned(i.to_string()),
        _ => return false,
    };
    // Keys are compared by text, so `1` and `"1"` count as the same: a superset of what
    // serde-saphyr calls a duplicate, which it reports.
    !earlier.iter().any(|(k, _)| match &k.kind {
        NodeKind::Str(s) => *s == text,
        NodeKind::Int(i) => i.to_string() == text,
        _ => false,
    })
}

/// What serde-saphyr's `deserialize_any` makes of an untagged scalar, where that is certain.
fn scalar(value: Cow<'_, str>, style: ScalarStyle) -> Option<NodeKind> {
    if style != ScalarStyle::Plain {
        return Some(NodeKind::Str(value.into_owned()));
    }
    let text = value.as_ref();
    if text.is_empty() || text == "~" || text.eq_ignore_ascii_case("null") {
        return Some(NodeKind::Null);
    }
    let trimmed = text.trim_matches([' ', '\t', '\r', '\n']);
    if trimmed.eq_ignore_ascii_case("true") {
        return Some(NodeKind::Bool(true));
    }
    if trimmed.eq_ignore_ascii_case("false") {
        return Some(NodeKind::Bool(false));
    }
    let first = trimmed.chars().next()?;
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        // Neither an integer nor a finite float starts with a letter, `/`, `$`, `~`…, and
        // `inf`/`nan` spelled out stay text in serde-saphyr.
        return Some(NodeKind::Str(value.into_owned()));
    }
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if unsigned.eq_ignore_ascii_case(".inf") || unsigned.eq_ignore_ascii_case(".nan") {
        return None;
    }
    if trimmed.len() <= 18
        && trimmed.bytes().all(|b| b.is_ascii_digit())
        && (trimmed == "0" || !trimmed.starts_with('0'))
    {
        return trimmed.parse().ok().map(NodeKind::Int);
    }
    // `10m`, `-z`, `./run.sh`: a character no number can contain makes it text. Anything that
    // might be signed, hexadecimal, octal, binary, a float or a time is left to serde-saphyr.
    let numeric = |c: char| c.is_ascii_hexdigit() || "xXoObB._+-:".contains(c);
    (!trimmed.chars().all(numeric)).then(|| NodeKind::Str(value.into_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;
    use crate::spec::SourceFile;
    use crate::spec::node::{budget, parse, parse_with_serde};

    /// Parses with the fast path where it applies and checks the result is exactly serde-saphyr's;
    /// returns whether the fast path applied.
    fn same_as_serde(name: &str, text: &str) -> bool {
        let file: Arc<SourceFile> = SourceFile::new(name, text);
        let fast = read(text, &budget(text)).is_some();
        let reference = parse_with_serde(&file, budget(text));
        match (parse(&file), reference) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{name}: trees differ"),
            (Err(ours), Err(theirs)) => {
                assert!(
                    !fast,
                    "{name}: the fast path accepted what serde-saphyr refuses"
                );
                assert_eq!(
                    (ours.message, ours.span),
                    (theirs.message, theirs.span),
                    "{name}"
                );
            }
            (ours, theirs) => panic!("{name}: {ours:?} vs {theirs:?}"),
        }
        fast
    }

    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_runbook_and_fixture_reads_as_serde_saphyr_reads_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        yaml_files(&root.join("runbooks"), &mut files);
        yaml_files(&root.join("tests"), &mut files);
        assert!(!files.is_empty());
        let mut fast = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).expect("a readable fixture");
            fast += usize::from(same_as_serde(&path.display().to_string(), &text));
        }
        // Runbooks are plain YAML: most must take the fast path, or it has stopped paying.
        assert!(fast * 2 > files.len(), "{fast} of {} files", files.len());
    }

    #[test]
    fn scalars_keep_the_types_serde_saphyr_gives_them() {
        let cases = [
            "a:\nb: ~\nc: null\nd: Null\ne: NULL\n",
            "a: true\nb: False\nc: TRUE\nd: yes\ne: on\nf: off\n",
            "a: 0\nb: 7\nc: 123456789012345678\nd: 007\ne: 1234567890123456789012\n",
            "a: -5\nb: +5\nc: .5\nd: .inf\ne: 1e5\nf: 0x1F\ng: 0o17\nh: 1_000\n",
            "a: 10m\nb: 5s\nc: 30d\nd: 1h30m\ne: 12:30\nf: 2026-11-20\ng: 1.5e3x\n",
            "a: inf\nb: nan\nc: Infinity\nd: ~foo\ne: /var/lib\nf: $HOME\ng: _x\nh: ~/.ssh/x\n",
            "a: -inf\nb: -.inf\nc: +.nan\nd: .NaN\ne: -z\nf: --quiet\ng: ./run.sh\nh: .hidden\n",
            "a: -1 2\nb: 1.\nc: .5e3\nd: 5e+3\ne: +0x1F\nf: 127.0.0.1\ng: -0\nh: 1E5\ni: -abc\n",
            "a: +5\nb: -5x\nc: 9223372036854775807\nd: 99999999999999999999\ne: 0.0\n",
            "a: 'x'\nb: \"y\\n\"\nc: |\n  lit\n  eral\nd: >\n  fol\n  ded\ne: ''\n",
            "a: plain\n  continued\nb: 'multi\n  line'\nkey with spaces: value: with colon\n",
            "a: é\nb: \"日本\"\nc: ünïcödé text\nd: [x, é, 1]\n",
            "on: db1\nyes: 1\n1: a\n2: b\n",
            "- a\n- \n- ~\n- [1, {b: c}, []]\n- {}\n",
            "just a scalar\n",
            "42\n",
            "# comment\na: 1 # trailing\n# end\n",
            "a:\n  - b\n   - c\n",
        ];
        for (i, text) in cases.iter().enumerate() {
            same_as_serde(&format!("case {i}"), text);
        }
    }

    #[test]
    fn anything_outside_the_plain_subset_is_left_to_serde_saphyr() {
        let cases = [
            "a: &x 1\nb: *x\n",
            "a: !!str 5\n",
            "base: &b {x: 1}\nother:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "1: a\n\"1\": b\n",
            "a: 1\n---\nb: 2\n",
            "%YAML 1.2\n---\na: 1\n",
            "? [a]\n: b\n",
            "a: {{ x }}\n",
            "a: b: c\n",
            "a: [1, 2\n",
            "a: \"unclosed\n",
        ];
        for (i, text) in cases.iter().enumerate() {
            let name = format!("case {i}");
            assert!(!same_as_serde(&name, text), "{name} took the fast path");
        }
    }

    #[test]
    fn an_explicit_document_start_takes_the_fast_path() {
        assert!(same_as_serde("explicit", "---\nname: x\nsteps: []\n"));
    }

    #[test]
    fn nesting_past_the_depth_limit_is_left_to_serde_saphyr() {
        let text = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        assert!(!same_as_serde("deep", &text));
    }
}
