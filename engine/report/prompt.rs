//! Questions to the person at the terminal, for every prompt of the engine (a manual step, a
//! destructive step, a resume's in-flight steps). An answer is a whole line typed after the
//! question was shown: what was typed before it is discarded, so a key meant for one question
//! never answers the next, and nothing is ever taken by default (an empty or unclear line asks
//! again). A manual step's question also ends at its deadline, and every question ends when the
//! run is being stopped.

use std::io::Write;
use std::os::fd::AsFd as _;
use std::time::Duration;

use jiff::Timestamp;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{FlushArg, tcflush};
use serde_json::Map;

use crate::exec::event::{Answer, AskedInput, PersonQuestion};
use crate::spec::ParamType;

/// What reading one line gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its end.
    Text(String),
    /// The deadline passed first.
    Late,
    /// The input is closed (or cannot be read), or the run is being stopped.
    Closed,
}

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
    discard_typed_ahead();
    loop {
        let Line::Text(line) = read_line(None, stopped) else {
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

/// Asks a manual step's question on the terminal (stdin, stderr) and sends the answer; no
/// answer by its deadline, or a run being stopped, is no decision.
pub fn ask_person(q: PersonQuestion, stopped: &dyn Fn() -> bool) {
    let PersonQuestion {
        id,
        prompt,
        inputs,
        deadline,
        reply,
    } = q;
    let mut err = std::io::stderr().lock();
    let mut first = true;
    let answer = converse(
        &format!("[{id}] {prompt}"),
        &inputs,
        &mut || {
            if std::mem::take(&mut first) {
                discard_typed_ahead();
            }
            read_line(deadline, stopped)
        },
        &mut err,
    );
    let _ = reply.send(answer);
}

/// The conversation: the question, then each input until it reads a value it takes. `read`
/// gives the next line.
pub fn converse(
    prompt: &str,
    inputs: &[AskedInput],
    read: &mut dyn FnMut() -> Line,
    out: &mut dyn Write,
) -> Answer {
    let consent = Consent::YesNo;
    let _ = write!(out, "{prompt}\nApprove? {} ", consent.hint());
    let _ = out.flush();
    loop {
        match read() {
            Line::Text(text) => match consent.judge(&text) {
                Some(true) => break,
                Some(false) => return Answer::Rejected,
                // An empty or unclear line decides nothing (a stray Enter is not a rejection).
                None => {
                    let _ = write!(out, "{} {} ", consent.again(&text), consent.hint());
                    let _ = out.flush();
                }
            },
            Line::Late => {
                let _ = writeln!(out, "\nno answer in time");
                return Answer::Unanswered;
            }
            Line::Closed => return Answer::Unanswered,
        }
    }
    let mut values = Map::new();
    for input in inputs {
        loop {
            let _ = write!(out, "{}: ", describe(input));
            let _ = out.flush();
            let text = match read() {
                Line::Text(text) => text,
                Line::Late => {
                    let _ = writeln!(out, "\nno answer in time");
                    return Answer::Unanswered;
                }
                Line::Closed => return Answer::Unanswered,
            };
            match value_of(input, text.trim()) {
                Ok(value) => {
                    values.insert(input.name.clone(), value);
                    break;
                }
                Err(why) => {
                    let _ = writeln!(out, "  {why}");
                }
            }
        }
    }
    Answer::Approved(values)
}

/// How an input is asked for: its name, type, values and description.
fn describe(input: &AskedInput) -> String {
    let mut text = format!("  {} ({}", input.name, input.ty.name());
    if !input.allowed.is_empty() {
        let values: Vec<String> = input.allowed.iter().map(crate::spec::shown_value).collect();
        text.push_str(": ");
        text.push_str(&values.join(" | "));
    }
    text.push(')');
    if let Some(d) = &input.description {
        text.push(' ');
        text.push_str(d);
    }
    text
}

/// An input's value from what was typed, or why it is not one.
fn value_of(input: &AskedInput, text: &str) -> Result<serde_json::Value, String> {
    if text.is_empty() && input.ty == ParamType::String {
        return Err("a value is needed".to_owned());
    }
    let value = crate::plan::params::parse_text(&input.name, input.ty, text)
        .map_err(|e| e.to_string().replacen("param `", "`", 1))?;
    match crate::spec::refused_choice(&input.allowed, &value) {
        Some(why) => Err(why),
        None => Ok(value),
    }
}

/// Only what is typed from now on answers the question just shown.
fn discard_typed_ahead() {
    let _ = tcflush(std::io::stdin(), FlushArg::TCIFLUSH);
}

/// One line from stdin (without its newline), waiting for it until `deadline` and looking
/// every [`STOP_CHECK`] whether `stopped` says so. Read a byte at a time straight from the
/// descriptor: a buffer in front of it could keep what was typed for a later question.
fn read_line(deadline: Option<Timestamp>, stopped: &dyn Fn() -> bool) -> Line {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut bytes = Vec::new();
    loop {
        if stopped() {
            return Line::Closed;
        }
        let mut wait = STOP_CHECK;
        if let Some(at) = deadline {
            let left = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
            if left.is_zero() {
                return Line::Late;
            }
            wait = wait.min(left);
        }
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return Line::Closed,
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fd, &mut byte) {
            Ok(0) => {
                return if bytes.is_empty() {
                    Line::Closed
                } else {
                    Line::Text(String::from_utf8_lossy(&bytes).into_owned())
                };
            }
            Ok(_) if byte[0] == b'\n' => {
                return Line::Text(String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(_) => bytes.push(byte[0]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => return Line::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripted(lines: &[&str]) -> impl FnMut() -> Line {
        let mut lines: Vec<Line> = lines
            .iter()
            .rev()
            .map(|l| Line::Text((*l).to_owned()))
            .collect();
        move || lines.pop().unwrap_or(Line::Late)
    }

    fn replicas() -> AskedInput {
        AskedInput {
            name: "replicas".to_owned(),
            ty: ParamType::Int,
            description: Some("how many to keep".to_owned()),
            allowed: vec![1.into(), 3.into()],
        }
    }

    #[test]
    fn an_approval_asks_each_input_until_it_reads_a_value_the_input_takes() {
        let mut out = Vec::new();
        let answer = converse(
            "[gate] Check it",
            &[replicas()],
            &mut scripted(&["y", "two", "2", "3"]),
            &mut out,
        );
        let mut expected = Map::new();
        expected.insert("replicas".to_owned(), 3.into());
        assert_eq!(answer, Answer::Approved(expected));
        let shown = String::from_utf8(out).expect("text");
        assert!(
            shown.contains("replicas (int: 1 | 3) how many to keep: "),
            "{shown}"
        );
        assert!(shown.contains("`two` is not a whole number"), "{shown}");
        assert!(shown.contains("`2` is not one of 1, 3"), "{shown}");
    }

    #[test]
    fn only_yes_approves_only_no_rejects_and_no_answer_in_time_is_no_decision() {
        let mut out = Vec::new();
        assert_eq!(
            converse("q", &[], &mut scripted(&["n"]), &mut out),
            Answer::Rejected
        );
        assert_eq!(
            converse("q", &[], &mut scripted(&["", "  ", "yep", "y"]), &mut out),
            Answer::Approved(Map::new()),
            "an empty or unclear line decides nothing: the question is asked again"
        );
        assert_eq!(
            converse("q", &[], &mut scripted(&["", "no"]), &mut out),
            Answer::Rejected
        );
        assert_eq!(
            converse("q", &[replicas()], &mut scripted(&["yes"]), &mut out),
            Answer::Unanswered,
            "the deadline passed while the input was asked for"
        );
        assert_eq!(
            converse("q", &[], &mut || Line::Closed, &mut out),
            Answer::Unanswered
        );
    }

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
