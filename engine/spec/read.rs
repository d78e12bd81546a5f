//! A runbook file's bytes → its text: read within the size limit, decoded as UTF-8, and when
//! that is not possible, a diagnostic that says where the first bad byte is and which encoding
//! the file seems to be in.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use super::source::{SourceFile, Span};
use crate::diagnostic::Diagnostic;
use crate::limits::MAX_DOCUMENT_BYTES;

/// Reads a file's bytes, at most one byte more than [`MAX_DOCUMENT_BYTES`]: enough to tell that
/// it is too large without reading all of it (`/dev/zero` is not read forever).
pub fn bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text of a runbook file, or the one mistake that keeps it from being read as text.
pub fn text(path: &Path, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Diagnostic> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(path, &bytes));
    }
    if let Some(encoding) = wide_encoding(&bytes) {
        return Err(not_utf8(path, &bytes, encoding));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(path, text)),
        Err(err) => Err(invalid_utf8(path, err.as_bytes(), &err.utf8_error())),
    }
}

fn too_large(path: &Path, bytes: &[u8]) -> Diagnostic {
    // Only the start is shown: the snippet needs a line, not the whole file.
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let first_line = shown.lines().next().unwrap_or_default().to_owned();
    let file = SourceFile::new(path, first_line);
    Diagnostic::new(
        &file,
        Span::default(),
        format!(
            "the file is larger than {} MiB, the most a runbook may be",
            MAX_DOCUMENT_BYTES >> 20
        ),
    )
    .label("this file")
    .hint("split it into runbooks that run one another with `call:`")
}

/// A UTF-16 or UTF-32 encoding, named as `iconv` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

impl Wide {
    fn name(self) -> &'static str {
        match self {
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::Utf32Le => "UTF-32LE",
            Self::Utf32Be => "UTF-32BE",
        }
    }

    fn unit(self) -> usize {
        match self {
            Self::Utf16Le | Self::Utf16Be => 2,
            Self::Utf32Le | Self::Utf32Be => 4,
        }
    }

    /// The text as far as it decodes, for the snippet.
    fn decode(self, bytes: &[u8]) -> String {
        let chunks = bytes.chunks_exact(self.unit());
        match self {
            Self::Utf16Le | Self::Utf16Be => {
                let units = chunks.map(|c| {
                    let pair = [c[0], c[1]];
                    if self == Self::Utf16Le {
                        u16::from_le_bytes(pair)
                    } else {
                        u16::from_be_bytes(pair)
                    }
                });
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect()
            }
            Self::Utf32Le | Self::Utf32Be => chunks
                .map(|c| {
                    let quad = [c[0], c[1], c[2], c[3]];
                    let code = if self == Self::Utf32Le {
                        u32::from_le_bytes(quad)
                    } else {
                        u32::from_be_bytes(quad)
                    };
                    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        }
    }
}

/// Whether the file is UTF-16 or UTF-32, by its byte order mark or, without one, by the zero
/// bytes that ASCII characters get in those encodings.
fn wide_encoding(bytes: &[u8]) -> Option<Wide> {
    let by_mark = match bytes {
        [0xFF, 0xFE, 0, 0, ..] => Some(Wide::Utf32Le),
        [0, 0, 0xFE, 0xFF, ..] => Some(Wide::Utf32Be),
        [0xFF, 0xFE, ..] => Some(Wide::Utf16Le),
        [0xFE, 0xFF, ..] => Some(Wide::Utf16Be),
        _ => None,
    };
    by_mark.or_else(|| {
        let start = &bytes[..bytes.len().min(256) / 4 * 4];
        if start.len() < 4 {
            return None;
        }
        // Most units of the start have zeros in the same places: ASCII text, widened.
        let mostly = |pattern: &dyn Fn(&[u8]) -> bool, unit: usize| {
            let units = start.chunks_exact(unit);
            let count = units.len();
            units.filter(|u| pattern(u)).count() * 4 >= count * 3
        };
        let ascii = |b: u8| b != 0 && b.is_ascii();
        if mostly(&|u| u[1..] == [0, 0, 0] && ascii(u[0]), 4) {
            Some(Wide::Utf32Le)
        } else if mostly(&|u| u[..3] == [0, 0, 0] && ascii(u[3]), 4) {
            Some(Wide::Utf32Be)
        } else if mostly(&|u| u[1] == 0 && ascii(u[0]), 2) {
            Some(Wide::Utf16Le)
        } else if mostly(&|u| u[0] == 0 && ascii(u[1]), 2) {
            Some(Wide::Utf16Be)
        } else {
            None
        }
    })
}

fn not_utf8(path: &Path, bytes: &[u8], encoding: Wide) -> Diagnostic {
    let text = encoding.decode(bytes);
    let marked = text.starts_with('\u{feff}');
    let file = SourceFile::new(path, text.trim_start_matches('\u{feff}'));
    let name = encoding.name();
    Diagnostic::new(
        &file,
        Span::default(),
        format!("the file is {name} text; runbooks are UTF-8"),
    )
    .label(if marked {
        format!("starts with a {name} byte order mark")
    } else {
        format!("every character takes {} bytes", encoding.unit())
    })
    .hint(format!(
        "save it as UTF-8, or convert it: `iconv -f {} -t UTF-8`",
        // With a byte order mark, iconv reads the byte order from it and drops it.
        if marked { &name[..6] } else { name }
    ))
}

fn invalid_utf8(path: &Path, bytes: &[u8], err: &std::str::Utf8Error) -> Diagnostic {
    let at = err.valid_up_to();
    // The text up to the bad byte is kept as it is, so the offset is the same in the lossy copy.
    let file = SourceFile::new(path, String::from_utf8_lossy(bytes).into_owned());
    let span = Span::new(at, char::REPLACEMENT_CHARACTER.len_utf8());
    let message = match err.error_len() {
        Some(_) => format!(
            "the file is not UTF-8 text: byte 0x{:02X} cannot appear here",
            bytes[at]
        ),
        None => "the file is not UTF-8 text: it ends inside a character".to_owned(),
    };
    Diagnostic::new(&file, span, message)
        .label("not UTF-8")
        .hint("runbooks are UTF-8; a Latin-1 file converts with `iconv -f WINDOWS-1252 -t UTF-8`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &[u8]) -> Diagnostic {
        text(Path::new("r.yaml"), bytes.to_vec()).expect_err("the bytes are refused")
    }

    fn utf16le(text: &str, mark: bool) -> Vec<u8> {
        let mut out = if mark { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[test]
    fn utf8_with_or_without_a_byte_order_mark_is_text() {
        for bytes in [
            &b"name: x\n"[..],
            b"\xEF\xBB\xBFname: x\n",
            "a: \u{2028}–é\n".as_bytes(),
        ] {
            assert!(text(Path::new("r.yaml"), bytes.to_vec()).is_ok());
        }
    }

    #[test]
    fn the_first_bad_byte_is_located_by_line_and_character() {
        let d = refusal(b"name: x\nsteps:\n  - run: caf\xE9 \xE9\n");
        assert_eq!(d.location(), "r.yaml:3:13");
        assert!(d.message.contains("0xE9"), "{}", d.message);
        assert!(d.hint.is_some_and(|h| h.contains("iconv")));
    }

    #[test]
    fn a_character_cut_at_the_end_is_reported_there() {
        let d = refusal("a: é".as_bytes().split_last().expect("bytes").1);
        assert_eq!(d.location(), "r.yaml:1:4");
        assert!(d.message.contains("ends inside a character"));
    }

    #[test]
    fn utf16_is_named_with_or_without_a_byte_order_mark() {
        let d = refusal(&utf16le("name: x\nsteps: []\n", true));
        assert_eq!(d.location(), "r.yaml:1:1");
        assert_eq!(d.message, "the file is UTF-16LE text; runbooks are UTF-8");
        assert!(d.label.is_some_and(|l| l.contains("byte order mark")));
        let d = refusal(&utf16le("name: x\nsteps: []\n", false));
        assert_eq!(d.message, "the file is UTF-16LE text; runbooks are UTF-8");
        let mut be = vec![0xFE, 0xFF];
        be.extend("name: x\n".encode_utf16().flat_map(u16::to_be_bytes));
        assert!(refusal(&be).message.contains("UTF-16BE"));
        let mut utf32 = vec![0xFF, 0xFE, 0, 0];
        utf32.extend("name: x\n".chars().flat_map(|c| u32::from(c).to_le_bytes()));
        assert!(refusal(&utf32).message.contains("UTF-32LE"));
    }

    #[test]
    fn a_file_past_the_size_limit_is_refused_at_its_start() {
        let mut bytes = b"name: big\n".to_vec();
        bytes.resize(MAX_DOCUMENT_BYTES + 1, b'#');
        let d = refusal(&bytes);
        assert_eq!(d.location(), "r.yaml:1:1");
        assert!(d.message.contains("MiB"), "{}", d.message);
        assert_eq!(d.at.file.text, "name: big");
    }
}
