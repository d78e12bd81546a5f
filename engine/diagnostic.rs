//! Located diagnostics: every mistake in a runbook is reported as `FILE:LINE:COL: error: …`
//! with a source snippet (rendered by miette) and, where one helps, a hint.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

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
            .render_report(&mut snippet, &Snippet(self, named_source(&self.at.file)))
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
struct Snippet<'a>(&'a Diagnostic, NamedSource<String>);

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
        let span = self.0.at.file.whole_chars(self.0.at.span);
        let text = &self.0.at.file.text;
        let len = if span.len == 0 {
            text[span.offset.min(text.len())..]
                .chars()
                .next()
                .map_or(0, char::len_utf8)
        } else {
            span.len
        };
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.0.label.clone(),
            SourceSpan::new(span.offset.into(), len),
        ))))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .hint
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
}

/// Names the file in miette's snippet frame.
fn named_source(file: &SourceFile) -> NamedSource<String> {
    NamedSource::new(file.display_path(), file.text.clone())
}

/// Several diagnostics, rendered one after the other with a closing count.
pub fn render_all(diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(color));
        out.push('\n');
    }
    out
}
