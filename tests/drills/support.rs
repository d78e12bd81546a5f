//! Shared by the end-to-end drills (`tests/drill_*.rs`): a drill's own folder on 127.0.0.1
//! services, the real `runbook` binary run on the shipped runbooks, and cleanup of every service
//! the drill started, whatever happens.
//!
//! Services are started by `tests/drills/services.sh` (also used from inside the drill runbooks):
//! a service that cannot start fails the test with its log, never skips it.

#![allow(
    dead_code,
    reason = "each drill binary uses a different part of this shared module"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;
use tempfile::TempDir;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/drills`: the services script, fakes and drill runbooks.
pub fn drills() -> PathBuf {
    repo().join("tests/drills")
}

/// A shipped runbook, by its path under `runbooks/`.
pub fn shipped(path: &str) -> String {
    repo().join("runbooks").join(path).display().to_string()
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port can be bound");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// Whether the tests run as root (CI does): `PostgreSQL` then runs as `postgres`.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// One drill's folder and the services started in it; every service is stopped on drop.
pub struct Drill {
    dir: TempDir,
    path_prefix: Vec<PathBuf>,
}

impl Drill {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("runbook-drill-{name}-"))
            .tempdir()
            .expect("a temporary folder can be created");
        // Services running as other users (PostgreSQL as `postgres`) must reach their folders.
        set_mode(dir.path(), 0o755);
        Self {
            dir,
            path_prefix: Vec::new(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder, as a string for params.
    pub fn at(&self, name: &str) -> String {
        self.root().join(name).display().to_string()
    }

    /// Puts a folder first on the PATH of every run (the sshd client wrapper, fake tools).
    pub fn prepend_path(&mut self, dir: PathBuf) {
        self.path_prefix.push(dir);
    }

    /// `services.sh COMMAND ARGS…`; panics with its output when it fails.
    #[expect(
        clippy::unused_self,
        reason = "a method, so that services are only started for a drill that will stop them"
    )]
    pub fn service(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(drills().join("services.sh"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "services.sh {} failed: the drill needs this service\n{text}",
            args.join(" ")
        );
        text
    }

    /// Starts `ZooKeeper` in `ROOT/zookeeper`; returns its port.
    pub fn zookeeper(&self) -> u16 {
        let port = free_port();
        self.service(&["zookeeper-start", &self.at("zookeeper"), &port.to_string()]);
        port
    }

    /// Initializes and starts `PostgreSQL` in `ROOT/postgres`; returns its port.
    pub fn postgres(&self) -> u16 {
        let port = free_port();
        let dir = self.at("postgres");
        self.service(&["postgres-init", &dir]);
        self.service(&["postgres-start", &dir, &port.to_string()]);
        port
    }

    /// Starts sshd in `ROOT/sshd` for the current user and puts its client wrapper on PATH;
    /// returns its port.
    pub fn sshd(&mut self) -> u16 {
        let port = free_port();
        self.service(&["sshd-start", &self.at("sshd"), &port.to_string()]);
        self.prepend_path(self.root().join("sshd/bin"));
        port
    }

    /// Starts an S3-protocol server (moto) in `ROOT/NAME`; returns its port.
    pub fn moto(&self, name: &str) -> u16 {
        let port = free_port();
        self.service(&["moto-start", &self.at(name), &port.to_string()]);
        port
    }

    /// Starts a fake (a python3 script under `tests/drills`) as service NAME in `ROOT/NAME`; returns
    /// its port once it listens.
    pub fn fake_http(&self, name: &str, script: &str, args: &[&str]) -> u16 {
        let port = free_port();
        let dir = self.at(name);
        let port_text = port.to_string();
        let mut all = vec!["fake-start", dir.as_str(), name, port_text.as_str(), script];
        all.extend_from_slice(args);
        self.service(&all);
        port
    }

    /// The `runbook` command for this drill: plain output, no colors, no terminal, state in
    /// `ROOT/.runbook`, PATH with the drill's folders first.
    pub fn runbook(&self, args: &[String]) -> Command {
        let mut cmd = Command::cargo_bin("runbook").expect("the runbook binary is built");
        let mut path = self.path_prefix.clone();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE_DIR", self.root().join(".runbook"))
            .env(
                "PATH",
                std::env::join_paths(path).expect("PATH entries are valid"),
            )
            .stdin(Stdio::null())
            .args(args);
        cmd
    }

    /// `runbook run FILE --yes --no-progress --set k=v…`, to completion.
    pub fn run(&self, file: &str, params: &[(&str, String)]) -> Run {
        self.run_with(file, params, &[])
    }

    /// `runbook run FILE --yes --no-progress --set k=v… EXTRA…`, to completion.
    pub fn run_with(&self, file: &str, params: &[(&str, String)], extra: &[&str]) -> Run {
        let mut args = vec![
            "run".to_owned(),
            file.to_owned(),
            "--yes".to_owned(),
            "--no-progress".to_owned(),
        ];
        for (k, v) in params {
            args.push("--set".to_owned());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|&a| a.to_owned()));
        self.run_args(&args)
    }

    /// The binary with these arguments, to completion — or, past `RUN_LIMIT`, stopped (SIGTERM,
    /// as Ctrl-C would) and reported as a failure: a drill never hangs the test suite.
    pub fn run_args(&self, args: &[String]) -> Run {
        let started = Instant::now();
        let mut child = self
            .runbook(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the runbook binary starts");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let out = std::thread::spawn(move || read_all(stdout));
        let err = std::thread::spawn(move || read_all(stderr));
        let mut stopped = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if !stopped && started.elapsed() > RUN_LIMIT {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                stopped = true;
            }
            if stopped && started.elapsed() > RUN_LIMIT + Duration::from_secs(10) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = Output {
            status,
            stdout: out.join().expect("the reader thread ends"),
            stderr: err.join().expect("the reader thread ends"),
        };
        let run = Run::new(&output, started.elapsed());
        assert!(
            !stopped,
            "the run did not end within {RUN_LIMIT:?}: stopped\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// Copies the shipped runbooks of one system (`runbooks/SYSTEM/*.yaml`) into `ROOT/runbooks/SYSTEM`
    /// with every poll `interval:` set to `interval`, so a drill polls a fake in milliseconds
    /// instead of the minutes a real cluster needs. Nothing else may differ (checked line by line);
    /// returns the copy's folder.
    pub fn fast_copy(&self, system: &str, interval: &str) -> PathBuf {
        let from = repo().join("runbooks").join(system);
        let to = self.root().join("runbooks").join(system);
        std::fs::create_dir_all(&to).expect("the copy's folder can be created");
        for entry in std::fs::read_dir(&from)
            .expect("the shipped runbooks are there")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a shipped runbook can be read");
            let mut out = String::new();
            for line in text.lines() {
                let rest = line.trim_start();
                if rest.starts_with("interval:") {
                    let indent = &line[..line.len() - rest.len()];
                    out.push_str(indent);
                    out.push_str("interval: ");
                    out.push_str(interval);
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
            let changed = text
                .lines()
                .zip(out.lines())
                .filter(|(a, b)| a != b)
                .all(|(a, _)| a.trim_start().starts_with("interval:"));
            assert!(changed, "only intervals differ from {}", path.display());
            std::fs::write(to.join(entry.file_name()), out).expect("the copy can be written");
        }
        to
    }

    /// A file's text inside the folder (empty when missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root().join(name)).unwrap_or_default()
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        // Best effort: a panicking test must not leave servers behind.
        let _ = Command::new("bash")
            .arg(drills().join("services.sh"))
            .args(["stop-all", &self.root().display().to_string()])
            .stdin(Stdio::null())
            .output();
    }
}

/// The longest a drill's run may take before it is stopped and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_mins(3);

fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("permissions can be set");
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn new(output: &Output, elapsed: Duration) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Stdout lines without the plain reporter's `HH:MM:SS ` stamp.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(unstamped).collect()
    }

    /// What a step printed (`ID | line`), in order.
    pub fn printed(&self, id: &str) -> Vec<&str> {
        let prefix = format!("{id} | ");
        self.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// The final status of a step from the summary table (`step  status  attempts  time`).
    pub fn status_of(&self, id: &str) -> Option<&str> {
        const STATUSES: [&str; 5] = ["pending", "running", "succeeded", "failed", "skipped"];
        self.lines().into_iter().rev().find_map(|l| {
            let mut cols = l.split_whitespace();
            let status = (cols.next() == Some(id)).then(|| cols.next()).flatten()?;
            STATUSES.contains(&status).then_some(status)
        })
    }

    /// Stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A line without the plain reporter's leading `HH:MM:SS ` stamp.
pub fn unstamped(line: &str) -> &str {
    let b = line.as_bytes();
    let stamped = b.len() >= 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' '
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit());
    if stamped { &line[9..] } else { line }
}

/// How many entries a folder has (0 when it does not exist).
pub fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, Iterator::count)
}

// --- Killed and interrupted runs (tests/drill_resume.rs) -----------------------------------

/// The run folder of run `id` in a drill's state dir (`ROOT/.runbook/runs/ID`).
pub fn run_dir(d: &Drill, id: &str) -> PathBuf {
    d.root().join(".runbook/runs").join(id)
}

/// A run's journal, one JSON value per complete line; a torn last line (the engine killed while
/// writing it) is left out, as the engine does.
pub fn journal(d: &Drill, id: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir(d, id).join("journal.jsonl")).unwrap_or_default();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line.trim_end()) {
            Ok(v) => records.push(v),
            Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => {}
            Err(e) => panic!("journal line {} is damaged: {e}: {line}", i + 1),
        }
    }
    records
}

/// `runbook show ID --format json`, parsed.
#[track_caller]
pub fn show(d: &Drill, id: &str) -> serde_json::Value {
    let run = d.run_args(&[
        "show".to_owned(),
        id.to_owned(),
        "--format".to_owned(),
        "json".to_owned(),
    ]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("show --format json is JSON: {e}\n{}", run.stdout))
}

/// The arguments of `runbook run FILE --yes --no-progress --run-id ID --set k=v…`.
pub fn run_args_with_id(file: &str, id: &str, params: &[(&str, String)]) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        file.to_owned(),
        "--yes".to_owned(),
        "--no-progress".to_owned(),
        "--run-id".to_owned(),
        id.to_owned(),
    ];
    for (k, v) in params {
        args.push("--set".to_owned());
        args.push(format!("{k}={v}"));
    }
    args
}

/// A `runbook` process running in the background, to be killed or interrupted. Its output goes
/// to files in the drill's folder, never to pipes: the steps a killed engine leaves behind could
/// hold a pipe open.
pub struct Engine {
    child: std::process::Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

/// What a killed engine left behind.
pub struct Killed {
    /// Its output until the kill (code 137).
    pub run: Run,
    /// The process groups of the steps it was running (each step is a group of its own), which
    /// went on after the engine died.
    pub step_groups: Vec<i32>,
}

impl Drill {
    /// Starts `runbook ARGS…` in the background; `name` names its output files (`ROOT/NAME.stdout`,
    /// `ROOT/NAME.stderr`).
    pub fn spawn(&self, name: &str, args: &[String]) -> Engine {
        let out = self.root().join(format!("{name}.stdout"));
        let err = self.root().join(format!("{name}.stderr"));
        let file = |p: &Path| Stdio::from(std::fs::File::create(p).expect("an output file"));
        let child = self
            .runbook(args)
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .expect("the runbook binary starts");
        Engine {
            child,
            out,
            err,
            started: Instant::now(),
        }
    }
}

impl Engine {
    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid fits in i32")
    }

    /// Waits (polling every few milliseconds) until `cond` holds; panics with the engine's output
    /// when the engine ends first or `RUN_LIMIT` passes.
    #[track_caller]
    pub fn wait_until(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        loop {
            if cond() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                panic!(
                    "the engine ended ({status}) before {what}\n--- stdout\n{}\n--- stderr\n{}",
                    read_file(&self.out),
                    read_file(&self.err)
                );
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "timed out waiting for {what}\n--- stdout\n{}\n--- stderr\n{}",
                    read_file(&self.out),
                    read_file(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    /// SIGKILL, as a crash would: the engine is first frozen (SIGSTOP) so that the steps it runs
    /// at that moment are known exactly (its children, each the leader of its step's process
    /// group), then killed. Those steps are not stopped: they go on without the engine.
    pub fn kill(mut self) -> Killed {
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let _ = kill(pid, Signal::SIGSTOP);
        let step_groups = children_of(self.pid());
        let _ = kill(pid, Signal::SIGKILL);
        let status = self.child.wait().expect("the child can be waited for");
        Killed {
            run: self.finished(status),
            step_groups,
        }
    }

    /// SIGINT, as Ctrl-C would; waits for the engine to end.
    pub fn interrupt(self) -> Run {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("the engine can be signalled");
        self.wait()
    }

    /// Waits for the engine to end (at most `RUN_LIMIT`, then kills it and panics).
    pub fn wait(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the engine did not end within {RUN_LIMIT:?}\n--- stdout\n{}\n--- stderr\n{}",
                    read_file(&self.out),
                    read_file(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.finished(status)
    }

    fn finished(&self, status: std::process::ExitStatus) -> Run {
        use std::os::unix::process::ExitStatusExt as _;
        Run {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: read_file(&self.out),
            stderr: read_file(&self.err),
            elapsed: self.started.elapsed(),
        }
    }
}

fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `(pid, ppid, pgrp, state)` of every process, from `/proc`.
fn processes() -> Vec<(i32, i32, i32, char)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
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
            all.push((pid, ppid, pgrp, state));
        }
    }
    all
}

/// The children of a process.
fn children_of(pid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|&(_, ppid, _, _)| ppid == pid)
        .map(|(child, ..)| child)
        .collect()
}

/// Waits up to `limit` until no live process (zombies, which an init that never reaps may keep,
/// do not count) is left in any of these process groups; returns the ones left (`pid pgrp`).
pub fn groups_gone(groups: &[i32], limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<String> = processes()
            .into_iter()
            .filter(|&(_, _, pgrp, state)| groups.contains(&pgrp) && state != 'Z')
            .map(|(pid, _, pgrp, _)| format!("{pid} {pgrp}"))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drill {
    /// Stops every service of the drill now (`services.sh stop-all`, as on drop), then looks for
    /// processes still naming the drill's folder on their command line: services the drill lost
    /// track of (one started twice over its pid file, say). Those are killed (SIGKILL, each by
    /// pid) and returned as `pid command line`, for the test to fail on.
    pub fn stop_all_leftovers(&self) -> Vec<String> {
        self.service(&["stop-all", &self.root().display().to_string()]);
        let root = self.root().display().to_string();
        let me = std::process::id();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut left = Vec::new();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if pid != me && cmdline.contains(&root) {
                    left.push((pid, cmdline.trim_end().to_owned()));
                }
            }
            if left.is_empty() || Instant::now() > deadline {
                for &(pid, _) in &left {
                    if let Ok(pid) = i32::try_from(pid) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                return left
                    .into_iter()
                    .map(|(pid, cmd)| format!("{pid} {cmd}"))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
