//! A step's child process, supervised: its output streamed as [`Event::Output`] lines and kept
//! for `result`, its end awaited, and the process stopped at its timeout or on cancellation.
//! `run:` on this machine (`step::command`) and on a host (`remote`) both go through
//! [`supervise`]; they differ only in what a [`Supervision`] does: how a command is stopped,
//! and how its end and exit code are known.

use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use super::event::{Event, Stream};
use super::runtime::Runtime;
use super::step::Failure;
use crate::plan::NodeId;

/// How long output is still read after a command ended, when something it started in the
/// background keeps its pipes open.
const DRAIN: Duration = Duration::from_millis(300);

/// Why a command was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Its timeout passed.
    TimedOut,
    /// The run was cancelled.
    Interrupted,
}

/// What differs between a command on this machine and one on a host.
pub(crate) trait Supervision {
    /// Sees each output line first: `Some` to show and keep it, `None` for a line of the
    /// supervision's own (a remote wrapper's report).
    fn line(&mut self, stream: Stream, line: String) -> Option<String>;

    /// Whether the command has ended although its process has not (a remote wrapper reported
    /// the command's exit while something it started keeps the connection's channel open).
    fn ended(&self) -> bool;

    /// Whether [`Supervision::stop`] can act now (a remote command's process group is known).
    fn can_stop(&self) -> bool;

    /// Stops the command: SIGTERM to its process group, SIGKILL after `rt.options.kill_grace`
    /// (at once after `rt.hurry`).
    async fn stop(&mut self, rt: &Runtime, child: &mut Child);

    /// The command's exit code (`None`: killed by a signal), or why there is none. `status` is
    /// the process's, when it exited.
    fn exit_code(&self, status: Option<ExitStatus>, stderr: &str) -> Result<Option<i32>, String>;

    /// What a stop ended, for the failure's reason: "its process group".
    fn group(&self) -> String;
}

/// Reads a started command to its end (or its timeout, counted from `started`, or
/// cancellation); returns `result`
/// `{stdout, stderr, exit_code, json, truncated}`, or a failure (with `result` when the command
/// exited non-zero).
pub(crate) async fn supervise<S: Supervision>(
    rt: &Runtime,
    id: &NodeId,
    child: &mut Child,
    timeout: Option<Duration>,
    started: tokio::time::Instant,
    supervision: &mut S,
) -> Result<Value, Failure> {
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_output(
        child.stdout.take(),
        child.stderr.take(),
        lines_tx,
    ));

    let limit = rt.options.capture_limit;
    let mut captured = Captured::default();
    let deadline = timeout.map(|t| started + t);
    let sleep_until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut stop: Option<Stop> = None;
    // A stop asked for before it can be carried out (a remote command whose process group is
    // not known yet) waits for that at most this long, then only the local process is killed.
    let give_up = tokio::time::sleep(Duration::MAX);
    tokio::pin!(give_up);
    let mut stopped = false;
    let status = loop {
        if supervision.ended() {
            break None;
        }
        if stop.is_some() && !stopped && supervision.can_stop() {
            supervision.stop(rt, child).await;
            stopped = true;
        }
        tokio::select! {
            status = child.wait() => break Some(status.map_err(|e| Failure::new(format!("failed to wait for the command: {e}")))?),
            Some((stream, line)) = lines_rx.recv() => {
                if let Some(line) = supervision.line(stream, line) {
                    captured.push(rt, id, stream, &line, limit);
                }
            }
            () = &mut sleep_until, if stop.is_none() => {
                stop = Some(Stop::TimedOut);
                give_up.as_mut().reset(tokio::time::Instant::now() + rt.options.kill_grace);
            }
            () = rt.cancel.cancelled(), if stop.is_none() => {
                stop = Some(Stop::Interrupted);
                give_up.as_mut().reset(tokio::time::Instant::now() + rt.options.kill_grace);
            }
            () = &mut give_up, if stop.is_some() && !stopped => {
                let _ = child.start_kill();
                stopped = true;
            }
            () = rt.hurry.cancelled(), if stop.is_some() && !stopped => {
                let _ = child.start_kill();
                stopped = true;
            }
        }
    };
    // A background process the command started may keep its pipes open: read what is there,
    // then stop waiting for the rest.
    let drain = async {
        while let Some((stream, line)) = lines_rx.recv().await {
            if let Some(line) = supervision.line(stream, line) {
                captured.push(rt, id, stream, &line, limit);
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
    reader.abort();
    if status.is_none() {
        // Only the local end (a connection's channel) is left: the command itself has ended.
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    if let Some(reason) = stop {
        return Err(Failure::new(match reason {
            Stop::TimedOut => {
                let limit_text = timeout
                    .map(|t| format!(" after {}", crate::spec::duration::Human(t)))
                    .unwrap_or_default();
                format!("timed out{limit_text}; {} was killed", supervision.group())
            }
            Stop::Interrupted => format!("interrupted; {} was stopped", supervision.group()),
        }));
    }
    let exit_code = supervision
        .exit_code(status, &captured.stderr)
        .map_err(Failure::new)?;
    result_of(exit_code, &captured)
}

/// `result` of a command that ended with `exit_code`: a failure (with `result`) unless it is 0.
fn result_of(exit_code: Option<i32>, captured: &Captured) -> Result<Value, Failure> {
    // What a stream printed, with its trailing newlines removed as `$(…)` does: nothing the
    // command did not print is added, and `printf 200` reads as `200`.
    let stdout = captured.stdout.trim_end_matches('\n');
    let parsed = serde_json::from_str::<Value>(stdout.trim()).ok();
    let mut result = json!({
        "stdout": stdout,
        "stderr": captured.stderr.trim_end_matches('\n'),
        "exit_code": exit_code,
        "truncated": captured.truncated,
    });
    // `json` only when the output is JSON: reading it otherwise is an error that says so.
    if let Some(parsed) = parsed {
        result["json"] = parsed;
    }
    match exit_code {
        Some(0) => Ok(result),
        Some(code) => Err(Failure::with_result(
            format!("exited with code {code}"),
            result,
        )),
        None => Err(Failure::with_result(
            "killed by a signal".to_owned(),
            result,
        )),
    }
}

/// Reads both output streams in one task into one sequence of tagged lines, each sent as soon
/// as it is whole: lines keep the order they were written in across the two streams (two
/// readers, each woken on its own, could swap `echo about to fail; echo "disk full" >&2`).
/// When a line waits on both streams at the same moment, which was written first is not
/// known; the standard output's goes first.
async fn read_output<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    tx: mpsc::UnboundedSender<(Stream, String)>,
) where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let mut out = stdout.map(|s| (BufReader::new(s), Vec::new()));
    let mut err = stderr.map(|s| (BufReader::new(s), Vec::new()));
    loop {
        // `read_until` keeps what it read when the other stream wins: a line is never split.
        let (which, line) = tokio::select! {
            biased;
            read = next_line(out.as_mut()), if out.is_some() => (Stream::Stdout, settle(&mut out, &read)),
            read = next_line(err.as_mut()), if err.is_some() => (Stream::Stderr, settle(&mut err, &read)),
            else => break,
        };
        if let Some(line) = line
            && tx.send((which, line)).is_err()
        {
            break;
        }
    }
}

/// The line a read completed, if any; a stream that ended (or failed) is closed.
fn settle<R>(
    slot: &mut Option<(BufReader<R>, Vec<u8>)>,
    read: &std::io::Result<usize>,
) -> Option<String> {
    let (_, buf) = slot.as_mut()?;
    let line = (!buf.is_empty()).then(|| {
        let line = String::from_utf8_lossy(buf)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        buf.clear();
        line
    });
    if !matches!(read, Ok(n) if *n > 0) {
        *slot = None;
    }
    line
}

/// Reads a stream up to its next newline (or its end) into its buffer.
async fn next_line<R: AsyncRead + Unpin>(
    reader: Option<&mut (BufReader<R>, Vec<u8>)>,
) -> std::io::Result<usize> {
    match reader {
        Some((reader, buf)) => reader.read_until(b'\n', buf).await,
        None => Ok(0),
    }
}

/// The output kept for `result` (up to the capture limit per stream).
#[derive(Default)]
struct Captured {
    stdout: String,
    stderr: String,
    truncated: bool,
}

impl Captured {
    fn push(&mut self, rt: &Runtime, id: &NodeId, stream: Stream, line: &str, limit: usize) {
        rt.emit(Event::Output {
            id: id.to_owned(),
            stream,
            line: line.to_owned(),
        });
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        if buf.len() + line.len() < limit {
            buf.push_str(line);
            buf.push('\n');
        } else if !self.truncated {
            self.truncated = true;
            rt.emit(Event::Output {
                id: id.to_owned(),
                stream: Stream::Stderr,
                line: format!("(runbook: more than {} KiB of output; `result` keeps only the first part, the log keeps everything)", limit / 1024),
            });
        }
    }
}
