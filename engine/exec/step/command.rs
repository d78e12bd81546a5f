//! `run:` — a command in its own process group, output streamed and captured, killed whole at
//! its timeout or on cancellation.

mod script;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::process::{Child, Command as Process};

use super::Failure;
use crate::exec::event::{Event, Stream};
use crate::exec::process::{self, Supervision};
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

    /// `(shell, script)` when this is a script for a shell (`SHELL -c SCRIPT`).
    pub fn as_script(&self) -> Option<(&str, &str)> {
        match self.argv.as_slice() {
            [shell, flag, script] if flag == "-c" => Some((shell, script)),
            _ => None,
        }
    }
}

/// Runs a command to completion (or its timeout, or cancellation); returns `result`.
pub async fn run(
    rt: &Runtime,
    id: &NodeId,
    cmd: &CommandLine,
    timeout: Option<Duration>,
) -> Result<Value, Failure> {
    let (mut started, direct) = process(rt, id, cmd, false);
    let spawned = match started.spawn() {
        // A file the shell would run although exec refuses it (a script without `#!`): the
        // shell runs it, as it would have.
        Err(_) if direct => process(rt, id, cmd, true).0.spawn(),
        spawned => spawned,
    };
    let child =
        spawned.map_err(|e| Failure::new(format!("failed to start `{}`: {e}", cmd.argv[0])))?;
    supervised(rt, id, child, timeout).await
}

/// A local script's shell started before its step's start was durable, waiting for it: it runs
/// nothing until [`run_held`] releases it, and exits without running the script if it is
/// dropped instead.
#[derive(Debug)]
pub struct Held {
    child: Child,
    go: std::io::PipeWriter,
}

/// Starts a script's shell held before the script ([`script::can_hold`]), so that starting the
/// shell overlaps making the step's start durable; `None` when the command is not such a script
/// or its shell could not be started ([`run`] then starts it, and reports why it cannot).
pub fn hold(rt: &Runtime, id: &NodeId, cmd: &CommandLine) -> Option<Held> {
    let launch = launch(rt, cmd, false)?;
    if !script::can_hold(&launch, gets(rt, cmd, "BASH_ENV")) {
        return None;
    }
    let (wait, go) = std::io::pipe().ok()?;
    let child = build(rt, id, cmd, Some(script::held(launch)), Stdio::from(wait))
        .spawn()
        .ok()?;
    Some(Held { child, go })
}

/// Runs a held command: releases it (its start is durable now) and supervises it as [`run`]
/// does.
pub async fn run_held(
    rt: &Runtime,
    id: &NodeId,
    timeout: Option<Duration>,
    held: Held,
) -> Result<Value, Failure> {
    let Held { child, mut go } = held;
    // A shell that died before reading it is seen by `supervised` as it ended.
    let _ = std::io::Write::write_all(&mut go, b"\n");
    drop(go);
    supervised(rt, id, child, timeout).await
}

/// A started command to its end: its process group journaled and watched, its output read.
async fn supervised(
    rt: &Runtime,
    id: &NodeId,
    mut child: Child,
    timeout: Option<Duration>,
) -> Result<Value, Failure> {
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let dead_man = rt.options.dead_man.as_deref();
    if let Some(pgid) = pgid {
        rt.emit(Event::ProcessStarted {
            id: id.to_owned(),
            pgid,
        });
        if let Some(dead_man) = dead_man {
            dead_man.watch(pgid);
        }
    }
    let ended = process::supervise(
        rt,
        id,
        &mut child,
        timeout,
        tokio::time::Instant::now(),
        &mut Local { pgid },
    )
    .await;
    // What the command left in its group is not stopped after it ended (as before the switch).
    if let (Some(pgid), Some(dead_man)) = (pgid, dead_man) {
        dead_man.release(pgid);
    }
    ended
}

/// The process a command starts as, and whether it is a script executed without its shell: a
/// script by the way [`script::launch`] chooses (`shell`: through its shell whatever it is),
/// without the environment variables secrets were read from (a step that needs one sets it in
/// its `env`), in a process group of its own.
fn process(rt: &Runtime, id: &NodeId, cmd: &CommandLine, shell: bool) -> (Process, bool) {
    let launch = launch(rt, cmd, shell);
    let direct = matches!(launch, Some(script::Launch::Direct { .. }));
    (build(rt, id, cmd, launch, Stdio::null()), direct)
}

/// How a script starts (`None`: the command is a program and its arguments).
fn launch(rt: &Runtime, cmd: &CommandLine, shell: bool) -> Option<script::Launch> {
    let (shell_program, text) = cmd.as_script()?;
    let hidden = shell || rt.masker.finds(text);
    Some(script::launch(
        shell_program,
        text,
        hidden,
        path_of(cmd).as_deref(),
    ))
}

/// Whether a command's process gets the environment variable `var`, as [`build`] sets its
/// environment: from the step's `env`, or inherited unless secrets were read from it.
fn gets(rt: &Runtime, cmd: &CommandLine, var: &str) -> bool {
    cmd.env.iter().any(|(k, _)| k == var)
        || (std::env::var_os(var).is_some() && !rt.options.secret_sources.iter().any(|v| v == var))
}

/// The `PATH` a command's process gets.
fn path_of(cmd: &CommandLine) -> Option<String> {
    cmd.env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
}

/// The process of a command started as `launch` says, reading `stdin`.
fn build(
    rt: &Runtime,
    id: &NodeId,
    cmd: &CommandLine,
    launch: Option<script::Launch>,
    stdin: Stdio,
) -> Process {
    let path = path_of(cmd);
    let mut process = match launch {
        Some(script::Launch::Direct { program, argv }) => {
            let mut process = Process::new(program);
            process.arg0(&argv[0]).args(&argv[1..]);
            process
        }
        Some(script::Launch::Hidden { argv, script }) => {
            let mut process = shell_process(&argv[0], path.as_deref());
            process.args(&argv[1..]).env(script::SCRIPT_VAR, script);
            process
        }
        Some(script::Launch::Argument { argv }) => {
            let mut process = shell_process(&argv[0], path.as_deref());
            process.args(&argv[1..]);
            process
        }
        None => {
            let mut process = Process::new(&cmd.argv[0]);
            process.args(&cmd.argv[1..]);
            process
        }
    };
    crate::exec::secrets::withhold(process.as_std_mut(), &rt.options.secret_sources);
    process
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        // Scripts may use them; a resume uses them to find processes a dead engine left behind.
        .env(RUN_ID_VAR, &rt.options.run_id)
        .env("RUNBOOK_STEP", id.as_str())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(cwd) = &cmd.cwd {
        process.current_dir(cwd);
    }
    process
}

/// The process of a shell, found in `PATH` here rather than by the child trying each folder
/// of `PATH` with `execve` (a cost every step paid); `argv[0]` stays as written. A shell not
/// found is left for the child to report.
fn shell_process(shell: &str, path: Option<&str>) -> Process {
    match script::find(shell, path) {
        Some(program) => {
            let mut process = Process::new(program);
            process.arg0(shell);
            process
        }
        None => Process::new(shell),
    }
}

/// A command on this machine: its process group is stopped with signals.
struct Local {
    pgid: Option<i32>,
}

impl Supervision for Local {
    fn line(&mut self, _stream: Stream, line: String) -> Option<String> {
        Some(line)
    }

    fn ended(&self) -> bool {
        false
    }

    fn can_stop(&self) -> bool {
        true
    }

    /// SIGTERM to the whole group, SIGKILL after the grace period (at once after a second
    /// Ctrl-C).
    async fn stop(&mut self, rt: &Runtime, child: &mut Child) {
        let Some(pgid) = self.pgid else {
            let _ = child.start_kill();
            return;
        };
        let group = Pid::from_raw(pgid);
        let _ = killpg(group, Signal::SIGTERM);
        tokio::select! {
            _ = tokio::time::timeout(rt.options.kill_grace, child.wait()) => {}
            () = rt.hurry.cancelled() => {}
        }
        // Members that ignored SIGTERM while the leader exited still get the SIGKILL.
        let _ = killpg(group, Signal::SIGKILL);
    }

    fn exit_code(&self, status: Option<ExitStatus>, _stderr: &str) -> Result<Option<i32>, String> {
        Ok(status.and_then(|s| s.code()))
    }

    fn group(&self) -> String {
        "its process group".to_owned()
    }
}
