//! What the durable-run tests (and the kill-and-resume drills) share on top of `run_support`: runs
//! started in the background (to be killed, crashed or interrupted), the process groups of the
//! steps they leave behind, the journal read as plain JSON, and waiting for a condition.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared module"
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run_support::{Run, Sandbox};

/// A `runbook` process running in the background; its output goes to files (never pipes: a
/// step's orphaned processes could hold a pipe open after the engine is killed).
pub struct Background {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
    /// The state dir it keeps its run in.
    state: Option<PathBuf>,
}

/// What a process killed with SIGKILL left behind.
pub struct Killed {
    /// Its output until the kill (code 137).
    pub run: Run,
    /// The process groups of the steps it was running (each step is a group of its own), which
    /// go on after the engine died.
    pub step_groups: Vec<i32>,
}

impl Background {
    /// Starts `runbook ARGS…` in the sandbox; `name` names its output files.
    pub fn start(sb: &Sandbox, name: &str, args: &[&str]) -> Self {
        Self::spawn(sb.command(args), sb.path(), name)
    }

    /// Starts `cmd`; its output goes to `DIR/NAME.stdout` and `DIR/NAME.stderr`.
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Self {
        let state = crate::run_support::state_dir_of(&cmd);
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdout(Stdio::from(File::create(&out).expect("output file")))
            .stderr(Stdio::from(File::create(&err).expect("output file")))
            .spawn()
            .expect("the runbook binary starts");
        Self {
            child,
            out,
            err,
            started: Instant::now(),
            state,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid fits in i32")
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("the process can be signalled");
    }

    /// Waits for the process to end, at most `limit` (then kills it and panics).
    pub fn wait(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                self.give_up(&format!("runbook did not end within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.finished(status)
    }

    /// Waits (polling every few milliseconds, to catch the moment) until `cond` holds; panics
    /// with the output when the process ends first or `limit` passes.
    #[track_caller]
    pub fn wait_until(&mut self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            if let Some(status) = self.try_wait() {
                panic!("runbook ended ({status}) before {what}\n{}", self.output());
            }
            if Instant::now() > deadline {
                self.give_up(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    /// Ends the process with SIGKILL (unless it already ended) and returns what it did.
    pub fn kill(mut self) -> Run {
        let _ = self.child.kill();
        let status = self.child.wait().expect("the child can be waited on");
        self.finished(status)
    }

    /// SIGKILL, as a crash would: the process is first frozen (SIGSTOP) so that the steps it
    /// runs at that moment are known exactly (its children, each the leader of its step's
    /// process group), then killed. Those steps are not stopped: they go on without it.
    pub fn crash(self) -> Killed {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
        let step_groups = children_of(self.pid());
        Killed {
            run: self.kill(),
            step_groups,
        }
    }

    /// Whether it already ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the child can be waited on")
    }

    /// Kills the process and panics with `why` and its output.
    #[track_caller]
    fn give_up(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("{why}\n{}", self.output());
    }

    /// Its output so far, for a failure message.
    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            read(&self.out),
            read(&self.err)
        )
    }

    fn finished(&self, status: ExitStatus) -> Run {
        use std::os::unix::process::ExitStatusExt as _;
        let mut run = Run::finished(
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            read(&self.out),
            read(&self.err),
            self.started.elapsed(),
        );
        run.state.clone_from(&self.state);
        run
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `runbook ARGS…` to completion (output captured).
pub fn runbook(sb: &Sandbox, args: &[&str]) -> Run {
    let started = Instant::now();
    let mut cmd = sb.command(args);
    let output = cmd.output().expect("the runbook binary starts");
    Run::new(&output, started.elapsed()).kept_as(&cmd)
}

/// Waits up to `limit` for `cond`; panics with `what` when it never holds.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A run's folder.
pub fn run_dir(sb: &Sandbox, id: &str) -> PathBuf {
    sb.join(".runbook").join("runs").join(id)
}

/// A run's journal, one JSON value per complete line (a torn last line is left out, as the
/// engine does).
pub fn journal(sb: &Sandbox, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(run_dir(sb, id).join("journal.jsonl")).unwrap_or_default();
    let mut records = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Value>(line.trim_end()) {
            Ok(v) => records.push(v),
            Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => {}
            Err(e) => panic!("journal line {} is damaged: {e}: {line}", i + 1),
        }
    }
    records
}

/// The `type` of a journal record.
pub fn kind(record: &Value) -> &str {
    record["type"].as_str().unwrap_or_default()
}

/// Whether the journal records `id` as started (its latest record for that step is a start).
pub fn in_flight(records: &[Value], id: &str) -> bool {
    records
        .iter()
        .rev()
        .find(|r| r["id"] == id && matches!(kind(r), "step_started" | "step_finished"))
        .is_some_and(|r| kind(r) == "step_started")
}

/// `runbook show ID --format json`, parsed.
#[track_caller]
pub fn show(sb: &Sandbox, id: &str) -> Value {
    let run = runbook(sb, &["show", id, "--format", "json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("show --format json is JSON: {e}\n{}", run.stdout))
}

/// A step of `show --format json` by id.
#[track_caller]
pub fn step<'a>(shown: &'a Value, id: &str) -> &'a Value {
    shown["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {shown:#}"))
}

/// Whether a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// One line of `/proc`: a process, its parent, its process group and its state (`Z` for a
/// zombie).
struct Process {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    state: char,
}

/// Every process, from `/proc`.
fn processes() -> Vec<Process> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(state), Some(Ok(ppid)), Some(Ok(pgrp))) = (
            fields.first().and_then(|s| s.chars().next()),
            fields.get(1).map(|s| s.parse()),
            fields.get(2).map(|s| s.parse()),
        ) {
            all.push(Process {
                pid,
                ppid,
                pgrp,
                state,
            });
        }
    }
    all
}

/// The children of a process.
fn children_of(pid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect()
}

/// The processes below a process: its children, theirs, and so on.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let all = processes();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.ppid == parent).map(|p| p.pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// The processes of group `pgid` that still run (zombies, dead but not yet reaped by an init
/// that may never reap them, are not counted), as `pid state`.
pub fn group_members(pgid: i32) -> Vec<String> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z')
        .map(|p| format!("{} {}", p.pid, p.state))
        .collect()
}

/// Waits up to `limit` until no live process is left in any of these process groups; returns
/// the ones left (`pid state`).
pub fn groups_gone(groups: &[i32], limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<String> = groups.iter().flat_map(|&g| group_members(g)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether some live process is in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    !group_members(pgid).is_empty()
}

/// Kills a process group (cleanup of steps a killed engine left behind).
pub fn kill_group(pgid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Lines of a file.
pub fn lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_owned).collect()
}
