//! The terminal progress bars are drawn on, which may go away mid-run (a dropped SSH session
//! closes it: every write fails with EIO). indicatif treats a failed write while it clears its
//! bars as a bug and panics, which aborts the engine and leaves its steps running; so the bars
//! are drawn through a [`Screen`] that never reports a failure: it notes that the terminal is
//! gone, and the live view stops showing anything.

use std::io;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use console::Term;
use indicatif::{ProgressDrawTarget, TermLike};

/// What every write returns: its failure was noted.
const NOTED: io::Result<()> = Ok(());

/// Stderr as a draw target whose writes cannot fail.
#[derive(Debug, Clone)]
pub struct Screen {
    term: Term,
    gone: Arc<AtomicBool>,
}

impl Screen {
    /// Stderr, when it is a terminal.
    pub fn stderr() -> Option<Self> {
        io::stderr().is_terminal().then(|| Self {
            term: Term::buffered_stderr(),
            gone: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether a write to it failed: it is gone for good.
    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// A draw target for progress bars.
    pub fn target(&self) -> ProgressDrawTarget {
        ProgressDrawTarget::term_like(Box::new(self.clone()))
    }

    /// Nothing more is written once a write failed; a failure is noted, never returned.
    fn write(&self, op: impl FnOnce(&Term) -> io::Result<()>) -> io::Result<()> {
        if !self.gone() && op(&self.term).is_err() {
            self.gone.store(true, Ordering::Relaxed);
        }
        NOTED
    }
}

impl TermLike for Screen {
    fn width(&self) -> u16 {
        self.term.size().1
    }

    fn height(&self) -> u16 {
        self.term.size().0
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.write(|t| t.move_cursor_up(n))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.write(|t| t.move_cursor_down(n))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.write(|t| t.move_cursor_right(n))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.write(|t| t.move_cursor_left(n))
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(|t| t.write_line(s))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(|t| t.write_str(s))
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write(Term::clear_line)
    }

    fn flush(&self) -> io::Result<()> {
        self.write(Term::flush)
    }
}
