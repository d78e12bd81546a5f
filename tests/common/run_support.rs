//! A small builder for end-to-end tests of `runbook run`: a throwaway folder holding runbooks,
//! and the real binary run in it (plain output, no colors, no terminal).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared module"
)]

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;
use tempfile::TempDir;

/// A test's own folder: runbooks are written here and the binary runs here.
pub struct Sandbox {
    dir: TempDir,
    env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with_prefix("runbook-e2e-")
    }

    /// A sandbox whose folder's name starts with `prefix`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("a temporary folder can be created"),
            env: Vec::new(),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file (folders created as needed); returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folders can be created");
        }
        std::fs::write(&path, contents).expect("the file can be written");
        path
    }

    /// Writes `runbook.yaml`.
    pub fn runbook(&self, yaml: &str) -> PathBuf {
        self.write("runbook.yaml", yaml)
    }

    /// Whether a file exists in the folder.
    pub fn exists(&self, name: &str) -> bool {
        self.join(name).exists()
    }

    /// A file's text (empty when it does not exist).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_default()
    }

    /// An environment variable for every run of this sandbox.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `runbook` command, set up to run in this folder: plain output, no colors, stdin not a
    /// terminal, state kept inside the folder (unless the sandbox's env names a database).
    pub fn command<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd =
            std::process::Command::cargo_bin("runbook").expect("the runbook binary is built");
        cmd.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE_DIR", self.join(".runbook"))
            // A team database in the caller's environment is not the sandbox's state.
            .env_remove("RUNBOOK_STATE")
            .stdin(std::process::Stdio::null())
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `runbook ARGS…`, to completion.
    pub fn cli(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let output = self
            .command(args)
            .output()
            .expect("the runbook binary starts");
        Run::new(&output, started.elapsed())
    }

    /// `runbook run runbook.yaml --no-progress ARGS…`, to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_file("runbook.yaml", args)
    }

    /// `runbook run FILE --no-progress ARGS…`, to completion.
    pub fn run_file(&self, file: &str, args: &[&str]) -> Run {
        let mut all = vec!["run", file, "--no-progress"];
        all.extend_from_slice(args);
        let started = Instant::now();
        let mut cmd = self.command(&all);
        let output = cmd.output().expect("the runbook binary starts");
        Run::new(&output, started.elapsed()).kept_as(&cmd)
    }
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The state dir it kept its run in, when known (`status_of` reads the run from there).
    pub state: Option<PathBuf>,
    /// `runbook show RUN_ID --format json` of its run, read once.
    shown: OnceCell<Option<serde_json::Value>>,
}

impl Run {
    pub fn new(output: &Output, elapsed: Duration) -> Self {
        Self::finished(
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        )
    }

    /// A run that ended with `code` after printing `stdout` and `stderr`.
    pub fn finished(code: i32, stdout: String, stderr: String, elapsed: Duration) -> Self {
        Self {
            code,
            stdout,
            stderr,
            elapsed,
            state: None,
            shown: OnceCell::new(),
        }
    }

    /// The same run, kept in the state dir `cmd` gives the binary (`RUNBOOK_STATE_DIR`).
    #[must_use]
    pub fn kept_as(mut self, cmd: &std::process::Command) -> Self {
        self.state = state_dir_of(cmd);
        self
    }

    /// The run's id, as its first line says (`run ID of RUNBOOK: N steps`); `None` for a
    /// rehearsal.
    pub fn run_id(&self) -> Option<&str> {
        self.lines().into_iter().find_map(|l| {
            let (id, _) = l.strip_prefix("run ")?.split_once(" of ")?;
            (!id.contains(' ')).then_some(id)
        })
    }

    /// `runbook show RUN_ID --format json` of this run, read once.
    fn shown(&self) -> Option<&serde_json::Value> {
        self.shown
            .get_or_init(|| {
                let state = self
                    .state
                    .as_ref()
                    .expect("the state dir of the run is known (Run::kept_as)");
                let run_id = self.run_id()?;
                let output = std::process::Command::cargo_bin("runbook")
                    .expect("the runbook binary is built")
                    .args(["show", run_id, "--format", "json"])
                    .env("NO_COLOR", "1")
                    .env("RUNBOOK_STATE_DIR", state)
                    .output()
                    .expect("the runbook binary starts");
                let text = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "runbook show {run_id} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                Some(
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("show --format json is JSON: {e}\n{text}")),
                )
            })
            .as_ref()
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

    /// What a step printed on stdout (`ID | line`), in order.
    pub fn printed(&self, id: &str) -> Vec<&str> {
        let prefix = format!("{id} | ");
        self.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// The status of a step of this run, as `runbook show RUN_ID --format json` reports it.
    pub fn status_of(&self, id: &str) -> Option<&str> {
        self.shown()?["steps"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == id)?["status"]
            .as_str()
    }

    /// Panics with stdout unless `runbook show` reports each of these steps `succeeded`.
    #[track_caller]
    pub fn expect_succeeded(&self, ids: &[&str]) -> &Self {
        for id in ids {
            assert_eq!(
                self.status_of(id),
                Some("succeeded"),
                "{id}\n{}",
                self.stdout
            );
        }
        self
    }

    /// Whether some stdout line (unstamped) starts with `prefix`.
    pub fn has_line_starting(&self, prefix: &str) -> bool {
        self.lines().iter().any(|l| l.starts_with(prefix))
    }

    /// Stdout and stderr together, for messages and "never appears" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The state dir a command gives the binary: `RUNBOOK_STATE_DIR`, else `.runbook` in its
/// folder.
pub fn state_dir_of(cmd: &std::process::Command) -> Option<PathBuf> {
    let named = cmd.get_envs().find_map(|(k, v)| {
        (k == "RUNBOOK_STATE_DIR")
            .then_some(v)
            .flatten()
            .map(PathBuf::from)
    });
    named.or_else(|| cmd.get_current_dir().map(|d| d.join(".runbook")))
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

/// The lines of a step's log with the time taken out of its `--- TIME …` lines.
pub fn log_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.strip_prefix("--- ") {
            Some(rest) => format!("--- {}", rest.split_once(' ').map_or(rest, |(_, r)| r)),
            None => l.to_owned(),
        })
        .collect()
}

/// A string no other test (or earlier run) uses: for process markers and sleep durations.
pub fn unique() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(std::process::id()) * 1_000_000 + u64::from(nanos % 1_000_000)
}

/// Processes whose command line contains `pattern` (as `pgrep -af` prints them).
pub fn processes_matching(pattern: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-af", pattern])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep"))
        .map(str::to_owned)
        .collect()
}

/// Waits up to `limit` for no process to match `pattern`; returns those still there.
pub fn processes_gone(pattern: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_matching(pattern);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port can be bound");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Every file below a folder (recursively), relative to it.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The repository's root (for the shipped runbooks).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/drills/services.sh ARGS…`, to completion: what it printed. A service that cannot start
/// fails the test with its log (`needed_by` says what needed it), never skips it.
pub fn services(args: &[&str], needed_by: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg(repo().join("tests/drills/services.sh"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "services.sh {} failed: {needed_by}\n{text}",
        args.join(" ")
    );
    text
}
