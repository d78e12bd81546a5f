//! `run:` on a host: the command runs over the host's connection, in a process group of its own
//! on the host, and a timeout or cancellation stops that group there.
//!
//! No script, working folder or environment value is on any command line, here or on the host
//! (a command given as an argv list has its own arguments as its argv there, as it would here).
//! The session runs `exec sh -s`; the engine
//! writes a small POSIX wrapper on its standard input: `cd`, the environment, and the command,
//! started as `setsid … </dev/null &` (a script reaches its shell as a here-document on fd 3,
//! read as `/dev/fd/3`, never as `-c SCRIPT`). The wrapper reports the group's id and, later,
//! the command's exit status on stderr, on lines marked with the run's marker; the engine keeps
//! those lines out of the output. A stop sends `kill -TERM` to that group over the connection,
//! then `kill -KILL` once the group outlives `kill_grace`. After a normal end nothing is killed:
//! a daemon the command started keeps running (only its output, if it still writes to the
//! step's, is no longer read).

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Child;

use super::connection::Connection;
use super::hosts::Remote;
use super::target::HostTarget;
use crate::exec::event::{Event, Stream};
use crate::exec::process::{self, Supervision};
use crate::exec::runtime::Runtime;
use crate::exec::step::Failure;
use crate::exec::step::command::{CommandLine, RUN_ID_VAR};
use crate::plan::NodeId;
use crate::template::shell_quote;

/// What a session runs: a shell reading its script from the connection.
const READ_SCRIPT: &str = "exec sh -s";

/// `alive`: whether the process group `$g` has a member that is not a zombie (`kill -0` counts
/// zombies, which a host's init may leave for a while).
const GROUP_ALIVE_SH: &str = r#"alive() {
  if [ -r /proc/self/stat ]; then
    for s in /proc/[0-9]*/stat; do
      read -r l < "$s" 2>/dev/null || continue
      set -- ${l##*") "}
      if [ "$3" = "$g" ] && [ "$1" != Z ]; then return 0; fi
    done
    return 1
  fi
  kill -s 0 -- "-$g" 2>/dev/null
}"#;

/// How long a stopped command's session may take to close once its group is gone.
const CLOSE_PATIENCE: Duration = Duration::from_secs(5);

impl Remote {
    /// Runs a command on a host to completion (or its timeout, or cancellation); returns
    /// `result` `{stdout, stderr, exit_code, json, truncated}` as `command::run` does, streaming
    /// its output as the node's. A host that cannot be reached fails with `unreachable` and
    /// ssh's reason. `timeout` includes connecting. A command killed by a signal on the host
    /// reports the exit code its shell gives it (128 + the signal's number).
    pub async fn run(
        &self,
        rt: &Runtime,
        id: &NodeId,
        host: &HostTarget,
        cmd: &CommandLine,
        timeout: Option<Duration>,
    ) -> Result<Value, Failure> {
        let started = tokio::time::Instant::now();
        let wrapper = wrapper(rt, id, cmd, &self.marker)?;
        let connection = self.connect_within(rt, host, started, timeout).await?;
        let _permit = connection.permit().await;
        let mut session = connection.session(READ_SCRIPT);
        session
            .env(RUN_ID_VAR, &rt.options.run_id)
            .env("RUNBOOK_STEP", id.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = session
            .spawn()
            .map_err(|e| Failure::new(format!("failed to start `ssh` for {}: {e}", host.key)))?;
        // The local end has a group of its own: while it runs, the command may run on the host
        // (a resume after a crashed engine waits for it as for a local command).
        if let Some(pgid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            rt.emit(Event::ProcessStarted {
                id: id.to_owned(),
                pgid,
            });
        }
        if let Some(mut input) = child.stdin.take() {
            tokio::spawn(async move {
                let _ = input.write_all(wrapper.as_bytes()).await;
                let _ = input.shutdown().await;
            });
        }
        let mut supervision = OnHost {
            connection,
            reports: Reports {
                marker: self.marker.clone(),
                ..Reports::default()
            },
        };
        process::supervise(rt, id, &mut child, timeout, started, &mut supervision).await
    }

    /// The host's connection, within what is left of `timeout` since `started`.
    pub(super) async fn connect_within(
        &self,
        rt: &Runtime,
        host: &HostTarget,
        started: tokio::time::Instant,
        timeout: Option<Duration>,
    ) -> Result<Arc<Connection>, Failure> {
        let connecting = self.connection(rt, host);
        let connected = match timeout {
            Some(limit) => tokio::time::timeout_at(started + limit, connecting)
                .await
                .map_err(|_| {
                    Failure::new(format!(
                        "timed out after {} while connecting to {}",
                        crate::spec::duration::Human(limit),
                        host.key
                    ))
                })?,
            None => connecting.await,
        };
        connected.map_err(|e| Failure::new(e.to_string()))
    }
}

/// The script `sh -s` reads on the host.
fn wrapper(rt: &Runtime, id: &NodeId, cmd: &CommandLine, marker: &str) -> Result<String, Failure> {
    let mut lines = Vec::new();
    if let Some(cwd) = &cmd.cwd {
        lines.push(format!("cd -- {} || exit 126", shell_quote(cwd)));
    }
    lines.push(format!(
        "export {RUN_ID_VAR}={} RUNBOOK_STEP={}",
        shell_quote(&rt.options.run_id),
        shell_quote(id.as_str())
    ));
    for (name, value) in &cmd.env {
        if !is_variable_name(name) {
            return Err(Failure::new(format!(
                "`{name}` is not an environment variable name"
            )));
        }
        lines.push(format!("export {name}={}", shell_quote(value)));
    }
    lines.push(
        "command -v setsid >/dev/null 2>&1 || { echo 'runbook: this host has no `setsid` (util-linux), which runs a command in a process group of its own' >&2; exit 127; }".to_owned(),
    );
    if let Some((shell, body)) = cmd.as_script() {
        let mut end = format!("RUNBOOK_SCRIPT_END_{}", &marker[marker.len() - 8..]);
        while body.lines().any(|l| l == end) {
            end.push('_');
        }
        lines.push(format!(
            "setsid {} /dev/fd/3 </dev/null 3<<'{end}' &",
            shell_quote(shell)
        ));
        lines.push(body.strip_suffix('\n').unwrap_or(body).to_owned());
        lines.push(end);
    } else {
        let argv: Vec<String> = cmd.argv.iter().map(|a| shell_quote(a)).collect();
        lines.push(format!("setsid {} </dev/null &", argv.join(" ")));
    }
    let marker = shell_quote(marker);
    lines.push("pid=$!".to_owned());
    lines.push(format!("printf '%s pgid %s\\n' {marker} \"$pid\" >&2"));
    lines.push("wait \"$pid\"".to_owned());
    lines.push(format!("printf '%s exit %s\\n' {marker} \"$?\" >&2"));
    lines.push(String::new());
    Ok(lines.join("\n"))
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A command on a host: its connection, and what its wrapper reported.
struct OnHost {
    connection: Arc<Connection>,
    reports: Reports,
}

/// What a wrapper reports on stderr, on lines marked with the run's marker.
#[derive(Debug, Default)]
struct Reports {
    marker: String,
    /// The command's process group on the host, once reported.
    pgid: Option<u32>,
    /// Its exit status, once reported.
    exit: Option<i32>,
}

impl Reports {
    /// Takes in a report; returns the rest of the line that is the command's own output.
    fn line(&mut self, stream: Stream, line: String) -> Option<String> {
        if stream != Stream::Stderr {
            return Some(line);
        }
        let Some(at) = line.find(&self.marker) else {
            return Some(line);
        };
        let report = &line[at + self.marker.len()..];
        let mut words = report.split_whitespace();
        match (words.next(), words.next().map(str::parse::<i64>)) {
            (Some("pgid"), Some(Ok(pgid))) => self.pgid = u32::try_from(pgid).ok(),
            (Some("exit"), Some(Ok(code))) => self.exit = i32::try_from(code).ok(),
            _ => return Some(line),
        }
        // A command's last line without a newline shares its line with the report.
        (at > 0).then(|| line[..at].to_owned())
    }
}

impl OnHost {
    /// `kill -s SIGNAL` to the group, over the connection (waiting up to `grace` for the group to
    /// end after SIGTERM, then SIGKILL); whether the request was carried out.
    async fn kill(&self, pgid: u32, grace: Option<Duration>) -> bool {
        let script = match grace {
            Some(grace) => format!(
                "{GROUP_ALIVE_SH}\ng={pgid}\nkill -s TERM -- -$g 2>/dev/null || exit 0\ni=0\nwhile alive && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\nkill -s KILL -- -$g 2>/dev/null\nexit 0",
                tenths = grace.as_millis().div_ceil(100)
            ),
            None => format!("kill -s KILL -- -{pgid} 2>/dev/null; exit 0"),
        };
        let mut session = self
            .connection
            .session(&format!("exec sh -c {}", shell_quote(&script)));
        session
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let patience = grace.unwrap_or_default() + CLOSE_PATIENCE;
        matches!(
            tokio::time::timeout(patience, session.status()).await,
            Ok(Ok(status)) if status.success()
        )
    }
}

impl Supervision for OnHost {
    fn line(&mut self, stream: Stream, line: String) -> Option<String> {
        self.reports.line(stream, line)
    }

    fn ended(&self) -> bool {
        self.reports.exit.is_some()
    }

    fn can_stop(&self) -> bool {
        self.reports.pgid.is_some()
    }

    async fn stop(&mut self, rt: &Runtime, child: &mut Child) {
        if let Some(pgid) = self.reports.pgid {
            let graceful = self.kill(pgid, Some(rt.options.kill_grace));
            tokio::select! {
                _ = graceful => {}
                () = rt.hurry.cancelled() => { self.kill(pgid, None).await; }
            }
        }
        // The group is gone; its session closes by itself unless the connection is broken.
        if tokio::time::timeout(CLOSE_PATIENCE, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
        }
    }

    fn exit_code(&self, status: Option<ExitStatus>, stderr: &str) -> Result<Option<i32>, String> {
        if let Some(code) = self.reports.exit {
            return Ok(Some(code));
        }
        let code = status.and_then(|s| s.code());
        if code == Some(255) {
            // ssh's own failure: the session could not be opened or the connection broke.
            if !self.connection.alive() {
                return Err(format!("unreachable: {}", self.connection.lost()));
            }
            let said = stderr.lines().rev().find(|l| !l.trim().is_empty());
            return Err(format!(
                "ssh to {} failed: {}",
                self.connection.key(),
                said.unwrap_or("no reason given")
            ));
        }
        Ok(code)
    }

    fn group(&self) -> String {
        format!("its process group on {}", self.connection.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper run by a local `sh -s`, as a host's session runs it: `(stdout, stderr)`.
    fn run_wrapper(cmd: &CommandLine) -> (String, String) {
        use std::io::Write as _;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let rt = Runtime::new(
            crate::exec::RunOptions::new("run-1"),
            crate::exec::secrets::Masker::default(),
            tx,
            tokio_util::sync::CancellationToken::new(),
        );
        let script = wrapper(&rt, &NodeId::step("s"), cmd, "@runbook-0123456789abcdef")
            .expect("a valid command");
        let mut sh = std::process::Command::new("sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        sh.stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())
            .expect("sh reads its script");
        let out = sh.wait_with_output().expect("sh ends");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_wrapper_runs_a_script_with_its_cwd_and_env_and_reports_its_group_and_exit() {
        let mut cmd = CommandLine::script(
            "sh",
            "pwd\necho \"$A|$RUNBOOK_STEP|$RUNBOOK_RUN_ID\"\nread x || echo no-stdin\nexit 4",
        );
        cmd.cwd = Some("/".into());
        cmd.env.push(("A".into(), "it's \"$HOME\" `x`".into()));
        let (out, err) = run_wrapper(&cmd);
        assert_eq!(out, "/\nit's \"$HOME\" `x`|s|run-1\nno-stdin\n");
        let reports: Vec<&str> = err.lines().collect();
        assert_eq!(reports.len(), 2, "{err}");
        assert!(
            reports[0].starts_with("@runbook-0123456789abcdef pgid "),
            "{err}"
        );
        assert_eq!(reports[1], "@runbook-0123456789abcdef exit 4");
    }

    #[test]
    fn a_script_containing_the_here_document_end_still_runs_whole() {
        let cmd = CommandLine::script("sh", "echo one\nRUNBOOK_SCRIPT_END_89abcdef\necho two");
        let (out, err) = run_wrapper(&cmd);
        assert_eq!(out, "one\ntwo\n", "{err}");
        assert!(
            err.contains("RUNBOOK_SCRIPT_END_89abcdef: not found"),
            "the middle line ran as a command: {err}"
        );
    }

    #[test]
    fn the_output_of_a_command_is_told_apart_from_the_wrappers_reports() {
        let mut on_host = Reports {
            marker: "@runbook-ab".into(),
            ..Reports::default()
        };
        assert_eq!(
            on_host.line(Stream::Stderr, "@runbook-ab pgid 4242".into()),
            None
        );
        assert_eq!(on_host.pgid, Some(4242));
        assert_eq!(
            on_host.line(Stream::Stderr, "partial line@runbook-ab exit 3".into()),
            Some("partial line".into())
        );
        assert_eq!(on_host.exit, Some(3));
        assert_eq!(
            on_host.line(Stream::Stdout, "@runbook-ab exit 9".into()),
            Some("@runbook-ab exit 9".into()),
            "only stderr carries reports"
        );
    }

    #[test]
    fn variable_names_are_checked_before_they_reach_a_shell() {
        assert!(is_variable_name("PGPASSWORD"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1x"));
        assert!(!is_variable_name("A-B"));
        assert!(!is_variable_name("A=B; rm"));
        assert!(!is_variable_name(""));
    }
}
