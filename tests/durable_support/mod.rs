//! What the durable-run tests share on top of `run_support`: runs started in the background
//! (to be killed or interrupted), the journal read as plain JSON, and waiting for a condition.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared module"
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
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
}

impl Background {
    /// Starts `runbook ARGS…` in the sandbox; `name` names its output files.
    pub fn start(sb: &Sandbox, name: &str, args: &[&str]) -> Self {
        let out = sb.join(&format!("{name}.stdout"));
        let err = sb.join(&format!("{name}.stderr"));
        let child = sb
            .command(args)
            .stdout(Stdio::from(File::create(&out).expect("output file")))
            .stderr(Stdio::from(File::create(&err).expect("output file")))
            .spawn()
            .expect("the runbook binary starts");
        Self {
            child,
            out,
            err,
            started: Instant::now(),
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
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "runbook did not end within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    read(&self.out),
                    read(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.finished(status)
    }

    /// Ends the process with SIGKILL (unless it already ended) and returns what it did.
    pub fn kill(mut self) -> Run {
        let _ = self.child.kill();
        let status = self.child.wait().expect("the child can be waited on");
        self.finished(status)
    }

    /// Whether it already ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the child can be waited on")
    }

    fn finished(&self, status: ExitStatus) -> Run {
        use std::os::unix::process::ExitStatusExt as _;
        Run {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: read(&self.out),
            stderr: read(&self.err),
            elapsed: self.started.elapsed(),
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `runbook ARGS…` to completion (output captured).
pub fn runbook(sb: &Sandbox, args: &[&str]) -> Run {
    let started = Instant::now();
    let output = sb
        .command(args)
        .output()
        .expect("the runbook binary starts");
    Run::new(&output, started.elapsed())
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

/// The processes of group `pgid` that still run (zombies, dead but not yet reaped by an init
/// that may never reap them, are not counted), as `pid state` from `/proc`.
pub fn group_members(pgid: i32) -> Vec<String> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            members.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                fields[0]
            ));
        }
    }
    members
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
