//! A manual step's question at the terminal: approve or reject (an empty line asks again), then
//! the values it needs, each typed and checked against its `enum`; no answer by the step's
//! deadline is no decision. Lines are read from stdin as the terminal sends them (whole lines),
//! waiting for each with `poll` so that a deadline can pass while nobody types.

use std::io::Write;
use std::os::fd::AsFd as _;
use std::time::Duration;

use jiff::Timestamp;
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
    /// The input is closed (or cannot be read).
    Closed,
}

/// Asks a manual step's question on the terminal (stdin, stderr) and sends the answer.
pub fn ask_person(q: PersonQuestion) {
    let PersonQuestion {
        id,
        prompt,
        inputs,
        deadline,
        reply,
    } = q;
    let mut err = std::io::stderr().lock();
    let answer = converse(
        &format!("[{id}] {prompt}"),
        &inputs,
        &mut || read_stdin_line(deadline),
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
    let _ = write!(out, "{prompt}\nApprove? [y/n] ");
    let _ = out.flush();
    loop {
        match read() {
            Line::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => break,
                // An empty line decides nothing (a stray Enter is not a rejection).
                "" => {
                    let _ = write!(out, "answer y to approve or n to reject: ");
                    let _ = out.flush();
                }
                _ => return Answer::Rejected,
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

/// Reads one line from stdin, a byte at a time (nothing typed ahead is taken from the next
/// question), waiting for each until `deadline`.
fn read_stdin_line(deadline: Option<Timestamp>) -> Line {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut bytes = Vec::new();
    loop {
        let timeout = match deadline {
            Some(at) => {
                let left =
                    Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
                if left.is_zero() {
                    return Line::Late;
                }
                // Woken at least once a minute: the wait is checked against the clock.
                nix::poll::PollTimeout::try_from(left.min(Duration::from_mins(1)))
                    .unwrap_or(nix::poll::PollTimeout::MAX)
            }
            None => nix::poll::PollTimeout::NONE,
        };
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return Line::Closed,
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fd, &mut byte) {
            Ok(0) | Err(_) => {
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
    fn anything_but_yes_rejects_and_no_answer_in_time_is_no_decision() {
        let mut out = Vec::new();
        assert_eq!(
            converse("q", &[], &mut scripted(&["n"]), &mut out),
            Answer::Rejected
        );
        assert_eq!(
            converse("q", &[], &mut scripted(&["", "  ", "y"]), &mut out),
            Answer::Approved(Map::new()),
            "an empty line decides nothing: the question is asked again"
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
}
