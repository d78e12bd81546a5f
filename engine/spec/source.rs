//! Source files and byte spans: what every diagnostic points into.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A runbook file as read from disk, kept whole so diagnostics can quote it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user named it (shown in diagnostics).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// The byte offset of each line's start after the first, found on first use.
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// Wraps a file's text for diagnostics.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
            line_starts: OnceLock::new(),
        })
    }

    /// The path as shown to the user.
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }

    /// The 1-based line and column (in characters) of a byte offset. An offset inside a
    /// character counts as that character's start.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.text.floor_char_boundary(offset);
        let starts = self.line_starts();
        let breaks = starts.partition_point(|&start| start <= offset);
        let line_start = if breaks == 0 { 0 } else { starts[breaks - 1] };
        let col = self.text[line_start..offset].chars().count() + 1;
        (breaks + 1, col)
    }

    /// The byte offset of a 1-based line's first character.
    pub fn line_offset(&self, line: usize) -> usize {
        if line <= 1 {
            return 0;
        }
        self.line_starts()
            .get(line - 2)
            .copied()
            .unwrap_or(self.text.len())
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts
            .get_or_init(|| line_breaks(&self.text).collect())
    }

    /// The byte offset of a 1-based line and column counted in characters, as parsers report
    /// them; a column past the end of its line is the line's end.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let start = self.line_offset(line);
        let rest = &self.text[start..];
        let line_len = rest.find(['\n', '\r']).unwrap_or(rest.len());
        rest[..line_len]
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(start + line_len, |(i, _)| start + i)
    }

    /// The span widened to whole characters, so that it can be sliced and shown.
    pub fn whole_chars(&self, span: Span) -> Span {
        let start = self.text.floor_char_boundary(span.offset);
        let end = self.text.ceil_char_boundary(span.end().max(start));
        Span::new(start, end - start)
    }
}

/// The byte offset just past every line break: `\n`, `\r\n`, and a `\r` on its own, which YAML
/// also takes for one.
fn line_breaks(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices(['\n', '\r']).filter_map(|(i, b)| {
        let crlf = b == "\r" && text.as_bytes().get(i + 1) == Some(&b'\n');
        (!crlf).then_some(i + 1)
    })
}

/// Shows a path without a leading `./`.
pub fn display_path(path: &Path) -> String {
    let shown = path.display().to_string();
    shown
        .strip_prefix("./")
        .map_or(shown.clone(), str::to_owned)
}

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes (0 for a point).
    pub len: usize,
}

impl Span {
    /// A span from an offset and a length.
    pub const fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }

    /// The byte just past the span.
    pub const fn end(self) -> usize {
        self.offset + self.len
    }
}

/// A span in a particular file: enough to render a diagnostic anywhere in the pipeline.
#[derive(Debug, Clone)]
pub struct Located {
    /// The file the span points into.
    pub file: Arc<SourceFile>,
    /// Where in the file.
    pub span: Span,
}

impl Located {
    /// Pairs a file and a span.
    pub fn new(file: &Arc<SourceFile>, span: Span) -> Self {
        Self {
            file: Arc::clone(file),
            span,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let file = SourceFile::new("r.yaml", "a: x\nrun: 1–2é: y\n");
        let colon = file.text.rfind(':').expect("a colon");
        assert_eq!(file.line_col(colon), (2, 10));
        assert_eq!(file.offset_of(2, 10), colon);
        // Past the end of its line: the line's end, never the next line.
        assert_eq!(file.offset_of(2, 99), file.text.len() - 1);
        assert_eq!(file.offset_of(9, 1), file.text.len());
    }

    #[test]
    fn an_offset_inside_a_character_is_that_character() {
        let file = SourceFile::new("r.yaml", "x: –\n");
        assert_eq!(file.line_col(4), (1, 4));
        assert_eq!(file.whole_chars(Span::new(4, 1)), Span::new(3, 3));
        assert_eq!(file.whole_chars(Span::new(99, 1)), Span::new(7, 0));
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_and_crlf_is_one_break() {
        let file = SourceFile::new("r.yaml", "a\rb\r\nc\nd");
        assert_eq!(file.line_offset(2), 2);
        assert_eq!(file.line_offset(3), 5);
        assert_eq!(file.line_offset(4), 7);
        assert_eq!(file.line_col(8), (4, 2));
        assert_eq!(file.line_col(3), (2, 2));
    }
}
