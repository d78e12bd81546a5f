//! What the terminal allows: colors (`NO_COLOR` and `TERM` are read here and nowhere else),
//! questions to a person, progress bars.

use std::io::IsTerminal as _;

use crate::drive::Presentation;
use crate::report::live::{Mode, Verbosity};

/// An output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Whether `stream` gets colors: a terminal that is not `TERM=dumb`, and `NO_COLOR` unset or
/// empty.
pub fn colors(stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    terminal && !dumb() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `TERM=dumb`: a terminal that can neither color nor redraw a line.
fn dumb() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// Whether a person can be asked (stdin and stderr are a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// How a run is shown: the rehearsal as JSON, progress bars on a terminal that can redraw
/// (unless `--no-progress`), plain lines otherwise.
pub fn presentation(json: bool, no_progress: bool, verbosity: Verbosity) -> Presentation {
    let mode = if json {
        Mode::Json
    } else if std::io::stdout().is_terminal() && !dumb() && !no_progress {
        Mode::Progress
    } else {
        Mode::Plain
    };
    Presentation {
        mode,
        color: colors(Stream::Stdout),
        interactive: interactive(),
        verbosity,
    }
}
