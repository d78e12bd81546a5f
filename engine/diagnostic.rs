//! Located diagnostics: every mistake in a runbook is reported as `FILE:LINE:COL: error: …`
//! with a source snippet (rendered by miette) and, where one helps, a hint.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::spec::source::{Located, SourceFile, Span};

/// One located mistake.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
    /// Where it is.
    pub at: Located,
    /// A short note under the snippet's underline.
    pub label: Option<String>,
    /// How to fix it ("did you mean `restore`?").
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a span of a file (widened to whole characters when it cuts one).
    pub fn new(file: &Arc<SourceFile>, span: Span, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: Located::new(file, file.whole_chars(span)),
            label: None,
            hint: None,
        }
    }

    /// Adds the underline's note.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    #[must_use]
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// `FILE:LINE:COL`.
    pub fn location(&self) -> String {
        let (line, col) = self.at.file.line_col(self.at.span.offset);
        format!("{}:{line}:{col}", self.at.file.display_path())
    }

    /// The full text: header line, snippet and hint.
    pub fn render(&self, color: bool) -> String {
        let mut out = format!("{}: error: {}\n", self.location(), self.message);
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .with_width(100)
            .without_cause_chain();
        let mut snippet = String::new();
        if handler
            .render_report(&mut snippet, &Snippet(self, Excerpt::new(self)))
            .is_ok()
        {
            // The handler opens with its own copy of the message: the header above says it.
            let body: Vec<&str> = snippet.lines().skip_while(|l| !l.contains('╭')).collect();
            for line in body {
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.location(), self.message)
    }
}

/// The miette view of a diagnostic, used only to draw the snippet.
struct Snippet<'a>(&'a Diagnostic, Excerpt);

impl fmt::Debug for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Snippet<'_> {}

impl miette::Diagnostic for Snippet<'_> {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.1)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.0.label.clone(),
            self.1.label,
        ))))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .hint
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
}

/// The widest line a snippet shows whole; a longer one is cut to a window around the span
/// (a line of a hundred thousand characters would otherwise be printed whole, and one past
/// 65,535 characters cannot be underlined at all).
const MAX_SHOWN_CHARS: usize = 160;

/// Characters shown before the span when its line is cut.
const SHOWN_BEFORE: usize = 40;

/// What a snippet shows: the diagnostic's lines with a line of context on each side, each cut
/// to a window if it is long, and the label's span within that text. The header's `LINE:COL`
/// is the diagnostic's own (columns in characters).
struct Excerpt {
    name: String,
    text: String,
    /// The 0-based line number of the text's first line.
    first_line: usize,
    line_count: usize,
    /// The label, in the excerpt's text.
    label: SourceSpan,
    /// The label's 0-based line and column (in characters) in the file.
    at: (usize, usize),
}

/// One line of the excerpt: where its shown part is in the file and in the excerpt.
struct Shown {
    /// Byte range of the shown part in the file.
    from: usize,
    to: usize,
    /// Byte offset of the shown part in the excerpt (after any `…`).
    start: usize,
    /// Whether part of the line is left out.
    cut: bool,
}

impl Shown {
    /// A file offset on this line, in the excerpt (clamped to the shown part).
    fn map(&self, offset: usize) -> usize {
        self.start + offset.clamp(self.from, self.to) - self.from
    }
}

impl Excerpt {
    fn new(d: &Diagnostic) -> Self {
        let file = &d.at.file;
        let text = &file.text;
        let span = file.whole_chars(d.at.span);
        let (line, col) = file.line_col(span.offset);
        let (end_line, _) = file.line_col(span.end());
        let (last_line, _) = file.line_col(text.len());
        let first = line.saturating_sub(1).max(1);
        let last = (end_line + 1).min(last_line);
        let mut out = String::new();
        let mut shown = Vec::new();
        for number in first..=last {
            let start = file.line_offset(number);
            let end = text[start..]
                .find(['\n', '\r'])
                .map_or(text.len(), |i| start + i);
            let whole = &text[start..end];
            if number > first {
                out.push('\n');
            }
            if whole.chars().count() <= MAX_SHOWN_CHARS {
                shown.push(Shown {
                    from: start,
                    to: end,
                    start: out.len(),
                    cut: false,
                });
                out.push_str(whole);
                continue;
            }
            let skip = if number == line {
                (col - 1).saturating_sub(SHOWN_BEFORE)
            } else {
                0
            };
            let from = whole
                .char_indices()
                .nth(skip)
                .map_or(end, |(i, _)| start + i);
            let to = text[from..end]
                .char_indices()
                .nth(MAX_SHOWN_CHARS)
                .map_or(end, |(i, _)| from + i);
            if skip > 0 {
                out.push('…');
            }
            shown.push(Shown {
                from,
                to,
                start: out.len(),
                cut: true,
            });
            out.push_str(&text[from..to]);
            if to < end {
                out.push('…');
            }
        }
        let on = |n: usize| &shown[n - first];
        let label_start = on(line).map(span.offset);
        // Across lines of which one is cut, the label stays on its first line.
        let label_end = if end_line == line || shown.iter().any(|s| s.cut) {
            on(line).map(span.end())
        } else {
            on(end_line).map(span.end())
        };
        let mut label_len = label_end - label_start;
        if label_len == 0 {
            // A point is drawn under the character there.
            label_len = out[label_start..].chars().next().map_or(0, char::len_utf8);
        }
        Self {
            name: file.display_path(),
            line_count: last + 1 - first,
            text: out,
            first_line: first - 1,
            label: SourceSpan::new(label_start.into(), label_len),
            at: (line - 1, col - 1),
        }
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if context_lines_before == 0 && context_lines_after == 0 {
            // Asked for the label alone: only its place, for the header.
            let start = span.offset().min(self.text.len());
            let end = (start + span.len()).min(self.text.len());
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                &self.text.as_bytes()[start..end],
                *span,
                self.at.0,
                self.at.1,
                1,
            )));
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            SourceSpan::new(0.into(), self.text.len()),
            self.first_line,
            0,
            self.line_count,
        )))
    }
}

/// The most diagnostics of one call shown in full: a file that a tool or a paste has filled
/// with thousands of the same mistake gets the first ones and a count, not pages of snippets.
pub const MAX_SHOWN: usize = 100;

/// Several diagnostics, rendered one after the other, at most [`MAX_SHOWN`] of them, then a
/// count of the others.
pub fn render_all(diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics.iter().take(MAX_SHOWN) {
        out.push_str(&d.render(color));
        out.push('\n');
    }
    if let Some(hidden) = diagnostics.len().checked_sub(MAX_SHOWN).filter(|&n| n > 0) {
        let _ = writeln!(
            out,
            "note: {hidden} more mistake{} not shown (the first {MAX_SHOWN} are)\n",
            if hidden == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let line = format!("x: {}: y", "word ".repeat(20_000));
        let file = SourceFile::new("r.yaml", format!("a: 1\n{line}\nb: 2\n"));
        let colon = file.text.rfind(": y").expect("the colon");
        let rendered = Diagnostic::new(&file, Span::new(colon, 1), "here").render(false);
        assert!(
            rendered.starts_with("r.yaml:2:100004: error: here\n"),
            "{rendered}"
        );
        assert!(rendered.contains("[r.yaml:2:100004]"), "{rendered}");
        assert!(rendered.contains("2 │ …word word"), "{rendered}");
        assert!(
            rendered.lines().all(|l| l.chars().count() < 200),
            "{rendered}"
        );
        assert!(rendered.contains("3 │ b: 2"), "{rendered}");
    }

    #[test]
    fn past_the_first_hundred_mistakes_only_a_count_is_shown() {
        let file = SourceFile::new("r.yaml", "a: 1\n");
        let all: Vec<Diagnostic> = (0..MAX_SHOWN + 5)
            .map(|i| Diagnostic::new(&file, Span::new(0, 1), format!("mistake {i}")))
            .collect();
        let rendered = render_all(&all, false);
        assert_eq!(rendered.matches(": error: mistake").count(), MAX_SHOWN);
        assert!(rendered.ends_with("note: 5 more mistakes not shown (the first 100 are)\n\n"));
        assert!(!render_all(&all[..MAX_SHOWN], false).contains("note:"));
    }

    #[test]
    fn the_header_counts_columns_in_characters() {
        let file = SourceFile::new("r.yaml", "run: echo 1–2: x\n");
        let colon = file.text.rfind(':').expect("a colon");
        let rendered = Diagnostic::new(&file, Span::new(colon, 1), "here").render(false);
        assert!(rendered.contains("[r.yaml:1:14]"), "{rendered}");
    }
}
