//! The limits on what a runbook may hold, and the checks that keep templates within them.
//!
//! The template engine parses, compiles and evaluates by recursion, one level per operator of a
//! chain (`a and b and …`, `not not …`, `x | f | g …`), per bracket and per nested block, and
//! does not bound every kind. An expression of a few thousand operators would exhaust a thread's
//! stack and abort the process: the main thread's while `validate` checks it, a 2 MiB worker's
//! while a run renders it. So every template and expression is measured before the engine sees
//! it, by a linear scan that needs no recursion, and one past a limit is refused with a located
//! diagnostic: by `validate` (and so before any run starts), and again at each render.
//!
//! | limit | value | refused with |
//! |---|---|---|
//! | runbook file | [`MAX_DOCUMENT_BYTES`] (32 MiB) | `the file is larger than 32 MiB, …` |
//! | YAML nesting | 64 levels (the YAML parser's own limit) | `invalid YAML: budget breached: Depth …` |
//! | one template or expression | [`MAX_TEMPLATE_BYTES`] (60 KiB) | `template is larger than 60 KiB` |
//! | operators in one expression | [`MAX_OPERATORS`] (200) | `expression has N operators; …` |
//! | brackets nested in one expression | [`MAX_NESTING`] (32) | `brackets nest deeper than 32 levels` |
//! | blocks nested in one template | [`MAX_NESTING`] (32) | `blocks nest deeper than 32 levels` |
//! | work of one render | [`TEMPLATE_FUEL`] | `engine ran out of fuel` (a step failure) |
//!
//! An expression is what is between `{{` and `}}` or `{%` and `%}`, or a whole `when`, `until`,
//! `assert` or `for_each` value. Its operators are `and`, `or`, `not`, `in`, `is`, `if`,
//! `else`, comparisons, arithmetic, `~`, `|` (a filter), `.` and `[…]` (lookups) and `(…)`
//! (calls and grouping); commas and colons are not, so a long literal list is fine. Blocks are
//! `{% if %}`, `{% for %}`, `{% macro %}`, `{% call %}`, `{% filter %}`, `{% with %}`,
//! `{% set %}…{% endset %}`, `{% autoescape %}` and `{% block %}`; each `{% elif %}` nests one
//! level deeper than the branch before it. The scan over-approximates: text inside comments
//! and `{% raw %}` is measured as if it were code, and a string literal never is.
//!
//! Real runbooks stay far below these limits (the longest expression among the shipped ones has
//! a few operators); the limits sit well below what exhausts a 2 MiB stack in a debug build.

use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::spec::{SourceFile, Span};

/// The largest runbook file, in bytes (the generated 100k-step runbook of the benchmarks is 9 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

/// The largest template or expression, in bytes. The template engine numbers lines and columns
/// in 16 bits: a template longer than 65,535 characters (or lines) can overflow them.
pub const MAX_TEMPLATE_BYTES: usize = 60 << 10;

/// The most operators one expression may have.
pub const MAX_OPERATORS: usize = 200;

/// How deep brackets may nest in one expression, and blocks in one template.
pub const MAX_NESTING: usize = 32;

/// The instructions one render may execute, so that a loop over a loop over `range(100000)`
/// stops instead of running for hours: rendering fails with `engine ran out of fuel`. A template
/// that walks a list of a hundred thousand items uses well under a tenth of it.
pub const TEMPLATE_FUEL: u64 = 50_000_000;

/// A template or expression past one of the limits; offsets are bytes into its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    /// Longer than [`MAX_TEMPLATE_BYTES`].
    #[error("template is larger than {} KiB", MAX_TEMPLATE_BYTES >> 10)]
    Size {
        /// Its length in bytes.
        bytes: usize,
    },
    /// More than [`MAX_OPERATORS`] operators in one expression.
    #[error("expression has {count} operators; at most {MAX_OPERATORS} are allowed")]
    Operators {
        /// How many.
        count: usize,
        /// Where the expression starts.
        at: usize,
    },
    /// Brackets nested deeper than [`MAX_NESTING`].
    #[error("brackets nest deeper than {MAX_NESTING} levels")]
    Brackets {
        /// The bracket one level too deep.
        at: usize,
    },
    /// Blocks nested deeper than [`MAX_NESTING`].
    #[error("blocks nest deeper than {MAX_NESTING} levels")]
    Blocks {
        /// The tag one level too deep.
        at: usize,
        /// Its length, `{%` to `%}`.
        len: usize,
    },
}

impl Exceeded {
    /// Where in the template's text to point, and how much of it.
    pub fn range(&self) -> (usize, usize) {
        match *self {
            Self::Size { .. } => (0, 0),
            Self::Operators { at, .. } | Self::Brackets { at } => (at, 1),
            Self::Blocks { at, len } => (at, len),
        }
    }

    /// The diagnostic, at `span` (the file's place of [`Exceeded::range`]).
    pub fn diagnostic(&self, file: &Arc<SourceFile>, span: Span) -> Diagnostic {
        let (label, hint) = match self {
            Self::Size { bytes } => (
                format!("{} KiB", bytes >> 10),
                "keep a long script in a file beside the runbook and run that: `run: bash ./restore.sh`",
            ),
            Self::Operators { .. } => (
                "this expression".to_owned(),
                "a long `and`/`or`/`~` chain is shorter as a list and a test or filter (`x in [a, b, c]`, `[a, b, c] | join`), or split it across steps' `outputs`",
            ),
            Self::Brackets { .. } => (
                format!("level {}", MAX_NESTING + 1),
                "compute the inner part in an earlier step's `outputs` and read it from there",
            ),
            Self::Blocks { .. } => (
                format!("level {}", MAX_NESTING + 1),
                "compute inner parts in earlier steps' `outputs`; a long `elif` chain is shorter as a lookup: `{{ {'a': 1, 'b': 2}[key] }}`",
            ),
        };
        // Never wider than the range, even where the template's place in the file is known only
        // as its whole scalar.
        let span = Span::new(span.offset, span.len.min(self.range().1));
        Diagnostic::new(file, span, self.to_string())
            .label(label)
            .hint(hint)
    }
}

/// Checks a template or, with `expression`, a bare expression; done before every parse.
pub fn check(text: &str, expression: bool) -> Result<(), Exceeded> {
    if expression {
        check_expression(text)
    } else {
        check_template(text)
    }
}

/// Checks a template: its size, every expression in it and the nesting of its blocks.
pub fn check_template(text: &str) -> Result<(), Exceeded> {
    check_size(text)?;
    let bytes = text.as_bytes();
    // Open blocks, innermost last: the tag and how many levels it adds (1 + its `elif`s).
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut at = 0;
    while let Some(found) = find_opening(bytes, at) {
        let is_block = bytes[found + 1] == b'%';
        let closer = if is_block { b"%}" } else { b"}}" };
        let region = scan(text, found + 2, Some(closer), found)?;
        if is_block {
            track_block(&region, &mut open);
            if open.iter().map(|(_, levels)| levels).sum::<usize>() > MAX_NESTING {
                return Err(Exceeded::Blocks {
                    at: found,
                    len: region.end - found,
                });
            }
        }
        at = region.end;
    }
    Ok(())
}

/// Checks a bare expression (`when`, `until`, `assert`, `for_each`).
pub fn check_expression(text: &str) -> Result<(), Exceeded> {
    check_size(text)?;
    scan(text, 0, None, 0).map(|_| ())
}

fn check_size(text: &str) -> Result<(), Exceeded> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(Exceeded::Size { bytes: text.len() });
    }
    Ok(())
}

/// The next `{{` or `{%` at or after `from`.
fn find_opening(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(1))
        .find(|&i| bytes[i] == b'{' && matches!(bytes[i + 1], b'{' | b'%'))
}

/// What the scan of one expression found.
struct Region<'t> {
    /// Just past its closing delimiter (or the end of the text).
    end: usize,
    /// Its first word (a block's tag).
    first_word: Option<&'t str>,
    /// Whether it has an `=` of its own (`{% set x = … %}` opens no block).
    assigns: bool,
}

const WORD_OPERATORS: [&str; 7] = ["and", "or", "not", "in", "is", "if", "else"];
const BLOCK_TAGS: [&str; 9] = [
    "for",
    "if",
    "macro",
    "call",
    "filter",
    "with",
    "set",
    "autoescape",
    "block",
];

/// Scans one expression from `from` to `closer` (outside brackets and strings) or to the end,
/// counting operators and bracket depth; `start` is where it is reported.
fn scan<'t>(
    text: &'t str,
    from: usize,
    closer: Option<&[u8; 2]>,
    start: usize,
) -> Result<Region<'t>, Exceeded> {
    let bytes = text.as_bytes();
    let mut region = Region {
        end: bytes.len(),
        first_word: None,
        assigns: false,
    };
    let mut operators = 0;
    // Signed like the template lexer's: after a stray closing bracket, `}}` does not end it.
    let mut depth: isize = 0;
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if depth == 0 && closer.is_some_and(|c| bytes[i..].starts_with(c)) {
            region.end = i + 2;
            break;
        }
        let next = bytes.get(i + 1).copied();
        i += match b {
            b'\'' | b'"' => string_len(&bytes[i..]),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                let word = &text[i..i + len];
                region.first_word.get_or_insert(word);
                operators += usize::from(WORD_OPERATORS.contains(&word));
                len
            }
            b'0'..=b'9' => number_len(&bytes[i..]),
            b'(' | b'[' | b'{' => {
                depth += 1;
                operators += usize::from(b != b'{');
                if usize::try_from(depth).is_ok_and(|d| d > MAX_NESTING) {
                    return Err(Exceeded::Brackets { at: i });
                }
                1
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                1
            }
            b'*' | b'/' if next == Some(b) => {
                operators += 1;
                2
            }
            b'=' | b'!' | b'<' | b'>' if next == Some(b'=') => {
                operators += 1;
                2
            }
            b'=' => {
                region.assigns |= depth == 0;
                1
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'|' | b'.' | b'<' | b'>' => {
                operators += 1;
                1
            }
            _ => 1,
        };
    }
    if operators > MAX_OPERATORS {
        return Err(Exceeded::Operators {
            count: operators,
            at: start,
        });
    }
    Ok(region)
}

/// The length of a string literal (to its closing quote, or the end of the text).
fn string_len(bytes: &[u8]) -> usize {
    let quote = bytes[0];
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The length of a number: digits and `_`, a fraction, an exponent.
fn number_len(bytes: &[u8]) -> usize {
    let digits = |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'_')
            .count()
    };
    let mut len = digits(0);
    if bytes.get(len) == Some(&b'.') && bytes.get(len + 1).is_some_and(u8::is_ascii_digit) {
        len += 1 + digits(len + 1);
    }
    if matches!(bytes.get(len), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(len + 1), Some(b'+' | b'-')));
        if bytes.get(len + 1 + sign).is_some_and(u8::is_ascii_digit) {
            len += 1 + sign + digits(len + 1 + sign);
        }
    }
    len
}

/// Opens, deepens or closes a block for one `{% … %}` tag.
fn track_block<'t>(region: &Region<'t>, open: &mut Vec<(&'t str, usize)>) {
    let Some(tag) = region.first_word else {
        return;
    };
    if tag == "elif" {
        if let Some((_, levels)) = open.last_mut() {
            *levels += 1;
        }
    } else if let Some(closed) = tag.strip_prefix("end") {
        // Only the tag that closes the innermost block closes it: an unknown or mismatched end
        // tag (`endraw`) leaves the count as high as it was, never lower than the engine's.
        if open.last().is_some_and(|(t, _)| *t == closed) {
            open.pop();
        }
    } else if BLOCK_TAGS.contains(&tag) && !(tag == "set" && region.assigns) {
        open.push((tag, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, terms: usize) -> String {
        vec!["x"; terms].join(op)
    }

    #[test]
    fn ordinary_templates_are_within_every_limit() {
        for text in [
            "echo {{ params.name | quote }} {{ steps.fetch.outputs.id }}",
            "{% for p in params.ports %}{% if p > 1 and p != 8080 %}{{ p }}{% elif p %}-{% endif %}{% endfor %}",
            "{% set x = {'a': [1, 2, {'b': (3)}]} %}{{ x.a[2].b * 2 ** 3 // 1 }}",
            "{{ '{{ not a tag }}' ~ \"}}\" }} {# {{ comment }} #}",
            "{% raw %}{{ x }}{% endraw %}",
        ] {
            assert_eq!(check_template(text), Ok(()), "{text}");
        }
        assert_eq!(
            check_expression("result.status == 200 and not steps.a.outputs.ok"),
            Ok(())
        );
    }

    #[test]
    fn operators_are_counted_up_to_the_limit() {
        let at_limit = chain(" and ", MAX_OPERATORS + 1);
        assert_eq!(check_expression(&at_limit), Ok(()));
        let past = chain(" and ", MAX_OPERATORS + 2);
        assert_eq!(
            check_expression(&past),
            Err(Exceeded::Operators {
                count: MAX_OPERATORS + 1,
                at: 0
            })
        );
        for op in [" ~ ", " or ", " | f", ".", " + ", " ** ", " == ", " < "] {
            let text = format!("ok {{{{ x }}}} {{{{ {} }}}}", chain(op, 5000));
            assert!(
                matches!(
                    check_template(&text),
                    Err(Exceeded::Operators { at: 11, .. })
                ),
                "{op}"
            );
        }
        for prefix in ["not ", "- "] {
            let text = format!("{}x", prefix.repeat(5000));
            assert!(matches!(
                check_expression(&text),
                Err(Exceeded::Operators { count: 5000, .. })
            ));
        }
    }

    #[test]
    fn a_long_literal_list_has_no_operators() {
        let list = format!("[{}]", vec!["'item'"; 5_000].join(", "));
        assert_eq!(check_expression(&list), Ok(()));
    }

    #[test]
    fn strings_are_not_code() {
        let text = format!("{{{{ '{}' }}}}", "not ".repeat(1000));
        assert_eq!(check_template(&text), Ok(()));
        assert_eq!(check_expression(r"'it\'s' ~ x"), Ok(()));
    }

    #[test]
    fn brackets_nest_up_to_the_limit() {
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(check_expression(&nested(MAX_NESTING)), Ok(()));
        assert_eq!(
            check_expression(&nested(MAX_NESTING + 1)),
            Err(Exceeded::Brackets { at: MAX_NESTING })
        );
        assert_eq!(
            check_template(&format!("{{{{ {} }}}}", "[".repeat(100))),
            Err(Exceeded::Brackets {
                at: 3 + MAX_NESTING
            })
        );
    }

    #[test]
    fn blocks_nest_up_to_the_limit_with_elif_one_level_deeper() {
        let nested = |n: usize| format!("{}x{}", "{% if a %}".repeat(n), "{% endif %}".repeat(n));
        assert_eq!(check_template(&nested(MAX_NESTING)), Ok(()));
        assert_eq!(
            check_template(&nested(MAX_NESTING + 1)),
            Err(Exceeded::Blocks {
                at: 10 * MAX_NESTING,
                len: 10
            })
        );
        let elifs = |n: usize| format!("{{% if a %}}{}{{% endif %}}", "{% elif b %}".repeat(n));
        assert_eq!(check_template(&elifs(MAX_NESTING - 1)), Ok(()));
        assert!(matches!(
            check_template(&elifs(3_000)),
            Err(Exceeded::Blocks { .. })
        ));
        // Closed blocks and assignments do not add up.
        let flat = "{% if a %}{% endif %}{% set x = 1 %}{% for i in l %}{% endfor %}".repeat(100);
        assert_eq!(check_template(&flat), Ok(()));
    }

    /// Templates at every limit at once, each kind of chain the engine recurses on.
    fn worst_cases() -> Vec<String> {
        let brackets = |inner: &str| {
            format!(
                "{}{inner}{}",
                "(".repeat(MAX_NESTING - 1),
                ")".repeat(MAX_NESTING - 1)
            )
        };
        let unary = ["not ", "- "];
        // Each piece adds one operator to a chain that starts with `1`.
        let binary = [
            " and 1",
            " or 1",
            " ~ 1",
            " + 1",
            " ** 1",
            " == 1",
            " | string",
            ".x",
            "[0]",
        ];
        let mut expressions: Vec<String> = unary
            .iter()
            .map(|op| brackets(&format!("{}1", op.repeat(MAX_OPERATORS - MAX_NESTING))))
            .collect();
        expressions.extend(
            binary
                .iter()
                .map(|op| brackets(&format!("1{}", op.repeat(MAX_OPERATORS - MAX_NESTING + 1)))),
        );
        expressions.push(format!("1{}", " if 1 else 1".repeat(MAX_OPERATORS / 2)));
        let mut templates = Vec::new();
        for expression in &expressions {
            assert_eq!(check_expression(expression), Ok(()), "{expression}");
            let blocks = MAX_NESTING - 1;
            let template = format!(
                "{}{{{{ {expression} }}}}{}",
                "{% if true %}".repeat(blocks),
                "{% endif %}".repeat(blocks)
            );
            assert_eq!(check_template(&template), Ok(()), "{template}");
            templates.push(template);
        }
        let elifs = format!(
            "{{% if false %}}{}{{% else %}}x{{% endif %}}",
            "{% elif false %}".repeat(MAX_NESTING - 1)
        );
        assert_eq!(check_template(&elifs), Ok(()));
        templates.push(elifs);
        templates
    }

    #[test]
    fn templates_at_every_limit_are_checked_and_rendered_on_a_small_stack() {
        // A fraction of the 2 MiB a tokio worker has, so that the limits keep a wide margin.
        let stack = 512 << 10;
        let worker = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(|| {
                let env = crate::template::environment();
                let ctx = crate::template::to_value(&serde_json::json!({}));
                for template in worst_cases() {
                    let parsed = env.template_from_str(&template).expect("a valid template");
                    let _ = parsed.undeclared_variables(true);
                    // Rendering may fail (`1 ~ …` is fine, `1.x` is undefined); it must return.
                    let _ = crate::template::render_text(&template, &ctx);
                }
            })
            .expect("a thread can be started");
        assert!(worker.join().is_ok(), "rendering panicked");
    }

    #[test]
    fn a_huge_template_is_refused_by_size() {
        let text = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert_eq!(
            check_template(&text),
            Err(Exceeded::Size {
                bytes: MAX_TEMPLATE_BYTES + 1
            })
        );
    }
}
