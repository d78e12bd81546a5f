//! Questions to the person at the terminal, for every prompt of the engine (a manual step, a
//! destructive step, a resume's in-flight steps). An answer is a whole line typed after the
//! question was shown: what was typed before it is discarded, so a key meant for one question
//! never answers the next, and nothing is ever taken by default (an empty or unclear line asks
//! again).

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{FlushArg, tcflush};

/// What an answer must be to go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// `yes` or `y`; `no` or `n` refuses.
    YesNo,
    /// The word typed out (a destructive step's id), or `yes`; `no` or `n` refuses. A single
    /// `y` is not enough.
    Typed(String),
}

impl Consent {
    /// What the prompt asks the person to type.
    fn hint(&self) -> String {
        match self {
            Self::YesNo => "[yes/no]".to_owned(),
            Self::Typed(word) => format!("Type `{word}` (or yes) to confirm, no to refuse:"),
        }
    }

    /// What a line typed means: go ahead, refuse, or (`None`) ask again.
    pub fn judge(&self, line: &str) -> Option<bool> {
        let answer = line.trim();
        let lower = answer.to_ascii_lowercase();
        if lower == "no" || lower == "n" {
            return Some(false);
        }
        match self {
            Self::YesNo => (lower == "yes" || lower == "y").then_some(true),
            Self::Typed(word) => (answer == word || lower == "yes").then_some(true),
        }
    }

    /// Why a line was not taken as an answer.
    fn again(&self, line: &str) -> String {
        let answer = line.trim();
        match self {
            Self::YesNo => "please answer yes or no".to_owned(),
            Self::Typed(word) if answer.is_empty() => {
                format!("nothing typed: type `{word}` (or yes) to confirm, no to refuse")
            }
            Self::Typed(word) => {
                format!(
                    "`{answer}` does not confirm: type `{word}` (or yes) to confirm, no to refuse"
                )
            }
        }
    }
}

/// How often a question waiting for its answer looks whether the run is being stopped.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Asks `question` on stderr and reads the answer from stdin, line by line, until one is clear;
/// `false` when the person refuses, stdin ends, or `stopped` says the run is being stopped.
pub fn ask(question: &str, consent: &Consent, stopped: &dyn Fn() -> bool) -> bool {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} {} ", consent.hint());
    let _ = stderr.flush();
    // Only what is typed from now on answers this question.
    let _ = tcflush(std::io::stdin(), FlushArg::TCIFLUSH);
    loop {
        let Some(line) = read_line(stopped) else {
            let _ = writeln!(stderr);
            return false;
        };
        if let Some(answer) = consent.judge(&line) {
            return answer;
        }
        let _ = write!(stderr, "{} {} ", consent.again(&line), consent.hint());
        let _ = stderr.flush();
    }
}

/// One line from stdin (without its newline); `None` at its end, on a read error, or once
/// `stopped` says so. Read straight from the descriptor: a buffer in front of it could keep
/// what was typed for a later question.
fn read_line(stopped: &dyn Fn() -> bool) -> Option<String> {
    let stdin = std::io::stdin();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stopped() {
            return None;
        }
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(STOP_CHECK).unwrap_or(PollTimeout::NONE);
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return None,
        }
        match nix::unistd::read(stdin.as_fd(), &mut byte) {
            Ok(0) => return (!line.is_empty()).then(|| text(&line)),
            Ok(_) if byte[0] == b'\n' => return Some(text(&line)),
            Ok(_) => line.push(byte[0]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => return None,
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yes_no_question_takes_only_a_clear_answer() {
        let consent = Consent::YesNo;
        for yes in ["y", "Y", "yes", " YES "] {
            assert_eq!(consent.judge(yes), Some(true), "{yes}");
        }
        for no in ["n", "no", "No"] {
            assert_eq!(consent.judge(no), Some(false), "{no}");
        }
        for unclear in ["", "   ", "yep", "q", "\u{1b}[A"] {
            assert_eq!(consent.judge(unclear), None, "{unclear:?} asks again");
        }
    }

    #[test]
    fn a_destructive_step_is_confirmed_only_by_typing_its_id_or_yes() {
        let consent = Consent::Typed("wipe".to_owned());
        assert_eq!(consent.judge("wipe"), Some(true));
        assert_eq!(consent.judge(" yes"), Some(true));
        assert_eq!(consent.judge("no"), Some(false));
        for unclear in ["y", "", "Wipe", "wip", "ok"] {
            assert_eq!(consent.judge(unclear), None, "{unclear:?} asks again");
        }
        assert!(consent.again("y").contains("`y` does not confirm"));
        assert!(consent.hint().contains("`wipe`"));
    }
}
