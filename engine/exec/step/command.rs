//! `run:` — a command in its own process group, output streamed and captured, killed whole at
//! its timeout or on cancellation.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Command as Process;
use tokio::sync::mpsc;

use super::Failure;
use crate::exec::event::{Event, Stream};
use crate::exec::runtime::Runtime;
use crate::plan::NodeId;
use crate::template::shell_quote;

/// The environment variable naming the run in every command it starts.
pub const RUN_ID_VAR: &str = "RUNBOOK_RUN_ID";

/// A fully rendered command.
#[derive(Debug, Clone)]
pub struct CommandLine {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// What to show (the script, or the argv quoted).
    pub description: String,
}

impl CommandLine {
    /// A script for a shell.
    pub fn script(shell: &str, script: &str) -> Self {
        Self {
            argv: vec![shell.to_owned(), "-c".to_owned(), script.to_owned()],
            env: Vec::new(),
            cwd: None,
            description: script.trim_end().to_owned(),
        }
    }

    /// A program and arguments, no shell.
    pub fn argv(argv: Vec<String>) -> Self {
        let description = argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            argv,
            env: Vec::new(),
            cwd: None,
            description,
        }
    }

    #[must_use]
    /// The same command run on a host over the system `ssh` (batch mode: never prompts).
    pub fn over_ssh(
        &self,
        target: &str,
        port: Option<&str>,
        identity: Option<&str>,
        options: &[String],
    ) -> Self {
        let mut argv = vec![
            "ssh".to_owned(),
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
        ];
        if let Some(p) = port {
            argv.extend(["-p".to_owned(), p.to_owned()]);
        }
        if let Some(i) = identity {
            argv.extend(["-i".to_owned(), i.to_owned()]);
        }
        for o in options {
            argv.extend(["-o".to_owned(), o.clone()]);
        }
        let mut remote: Vec<String> = Vec::new();
        if let Some(cwd) = &self.cwd {
            remote.push(format!("cd {} &&", shell_quote(cwd)));
        }
        if !self.env.is_empty() {
            remote.push("env".to_owned());
            remote.extend(
                self.env
                    .iter()
                    .map(|(k, v)| shell_quote(&format!("{k}={v}"))),
            );
        }
        remote.extend(self.argv.iter().map(|a| shell_quote(a)));
        argv.extend([target.to_owned(), "--".to_owned(), remote.join(" ")]);
        Self {
            argv,
            env: Vec::new(),
            cwd: None,
            description: format!("[{target}] {}", self.description),
        }
    }
}

/// Runs a command to completion (or its timeout, or cancellation); returns `result`.
#[expect(
    clippy::too_many_lines,
    reason = "one child from spawn to exit: its pipes, deadline and cancellation share one loop"
)]
pub async fn run(
    rt: &Runtime,
    id: &NodeId,
    cmd: &CommandLine,
    timeout: Option<Duration>,
) -> Result<Value, Failure> {
    let mut process = Process::new(&cmd.argv[0]);
    process
        .args(&cmd.argv[1..])
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        // Scripts may use them; a resume uses them to find processes a dead engine left behind.
        .env(RUN_ID_VAR, &rt.options.run_id)
        .env("RUNBOOK_STEP", id.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(cwd) = &cmd.cwd {
        process.current_dir(cwd);
    }
    let mut child = process
        .spawn()
        .map_err(|e| Failure::new(format!("failed to start `{}`: {e}", cmd.argv[0])))?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    if let Some(pgid) = pgid {
        rt.emit(Event::ProcessStarted {
            id: id.to_owned(),
            pgid,
        });
    }
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(read_lines(s, Stream::Stdout, lines_tx.clone()))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_lines(s, Stream::Stderr, lines_tx.clone()))),
    ];
    drop(lines_tx);

    let limit = rt.options.capture_limit;
    let mut captured = Captured::default();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep_until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut stop: Option<&'static str> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(|e| Failure::new(format!("failed to wait for the command: {e}")))?,
            Some((stream, line)) = lines_rx.recv() => captured.push(rt, id, stream, &line, limit),
            () = &mut sleep_until, if stop.is_none() => {
                stop = Some("timed out");
                if let Some(pgid) = pgid { terminate_group(pgid, rt, &mut child).await; }
            }
            () = rt.cancel.cancelled(), if stop.is_none() => {
                stop = Some("interrupted");
                if let Some(pgid) = pgid { terminate_group(pgid, rt, &mut child).await; }
            }
        }
    };
    // A background process the command started may keep its pipes open: read what is there,
    // then stop waiting for the rest.
    let drain = async {
        while let Some((stream, line)) = lines_rx.recv().await {
            captured.push(rt, id, stream, &line, limit);
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(300), drain).await;
    for reader in readers.into_iter().flatten() {
        reader.abort();
    }
    if let Some(reason) = stop {
        let limit_text = timeout
            .map(|t| format!(" after {}", crate::spec::duration::Human(t)))
            .unwrap_or_default();
        return Err(Failure::new(if reason == "timed out" {
            format!("timed out{limit_text}; its process group was killed")
        } else {
            "interrupted; its process group was stopped".to_owned()
        }));
    }
    let exit_code = status.code();
    let stdout = captured.text(Stream::Stdout);
    let parsed = serde_json::from_str::<Value>(stdout.trim()).ok();
    let mut result = json!({
        "stdout": stdout,
        "stderr": captured.text(Stream::Stderr),
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

/// SIGTERM to the whole group, SIGKILL after the grace period (at once after a second Ctrl-C).
async fn terminate_group(pgid: i32, rt: &Runtime, child: &mut tokio::process::Child) {
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    tokio::select! {
        _ = tokio::time::timeout(rt.options.kill_grace, child.wait()) => {}
        () = rt.hurry.cancelled() => {}
    }
    // Members that ignored SIGTERM while the leader exited still get the SIGKILL.
    let _ = killpg(group, Signal::SIGKILL);
}

async fn read_lines<R: AsyncRead + Unpin>(
    stream: R,
    which: Stream,
    tx: mpsc::UnboundedSender<(Stream, String)>,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                if tx.send((which, line)).is_err() {
                    break;
                }
            }
        }
    }
}

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

    /// What a stream printed, with its trailing newlines removed as `$(…)` does: nothing the
    /// command did not print is added, and `printf 200` reads as `200`.
    fn text(&self, stream: Stream) -> String {
        let text = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        text.trim_end_matches('\n').to_owned()
    }
}
