//! Shared by the end-to-end drills (`tests/drills/`): a drill's own folder on 127.0.0.1
//! services, the real `runbook` binary run on the shipped runbooks, and cleanup of every service
//! the drill started, whatever happens.
//!
//! Services are started by `tests/drills/services.sh` (also used from inside the drill runbooks):
//! a service that cannot start fails the test with its log, never skips it. The binary is run
//! through `run_support` (a drill's folder is a `Sandbox`), which each drill declares beside this
//! module.

#![allow(
    dead_code,
    reason = "each drill binary uses a different part of this shared module"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::run_support::{Run, Sandbox, free_port, repo};

/// `tests/drills`: the services script, fakes and drill runbooks.
pub fn drills() -> PathBuf {
    repo().join("tests/drills")
}

/// A shipped runbook, by its path under `runbooks/`.
pub fn shipped(path: &str) -> String {
    repo().join("runbooks").join(path).display().to_string()
}

/// Whether the tests run as root (CI does): `PostgreSQL` then runs as `postgres`.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// One drill's folder and the services started in it; every service is stopped on drop.
pub struct Drill {
    sandbox: Sandbox,
    path_prefix: Vec<PathBuf>,
}

impl Drill {
    pub fn new(name: &str) -> Self {
        let sandbox = Sandbox::with_prefix(&format!("runbook-drill-{name}-"));
        // Services running as other users (PostgreSQL as `postgres`) must reach their folders.
        set_mode(sandbox.path(), 0o755);
        Self {
            sandbox,
            path_prefix: Vec::new(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        self.sandbox.path()
    }

    /// The folder as a `Sandbox`, for what reads a run's state (its journal, `show`).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// A path inside the folder, as a string for params.
    pub fn at(&self, name: &str) -> String {
        self.sandbox.join(name).display().to_string()
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
        crate::run_support::services(args, "the drill needs this service")
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

    /// Starts one sshd for `n` hosts `node1`…`nodeN` on 127.0.0.2… in `ROOT/fleet` (see
    /// `services.sh fleet-start`) and puts its client wrapper on PATH; returns its port.
    pub fn fleet(&mut self, n: usize) -> u16 {
        let port = free_port();
        self.service(&[
            "fleet-start",
            &self.at("fleet"),
            &port.to_string(),
            &n.to_string(),
        ]);
        self.prepend_path(self.root().join("fleet/bin"));
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
        let mut path = self.path_prefix.clone();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = self.sandbox.command(args);
        cmd.env(
            "PATH",
            std::env::join_paths(path).expect("PATH entries are valid"),
        );
        cmd
    }

    /// `runbook run FILE --yes --approve-all --no-progress --set k=v…`, to completion.
    pub fn run(&self, file: &str, params: &[(&str, String)]) -> Run {
        self.run_with(file, params, &[])
    }

    /// `runbook run FILE --yes --approve-all --no-progress --set k=v… EXTRA…`, to completion.
    pub fn run_with(&self, file: &str, params: &[(&str, String)], extra: &[&str]) -> Run {
        let mut args: Vec<String> = ["run", file, "--yes", "--approve-all", "--no-progress"]
            .map(str::to_owned)
            .to_vec();
        args.extend(set_args(params));
        args.extend(extra.iter().map(|&a| a.to_owned()));
        self.run_args(&args)
    }

    /// The binary with these arguments, to completion — or, past `RUN_LIMIT`, stopped (SIGTERM,
    /// as Ctrl-C would) and reported as a failure: a drill never hangs the test suite.
    pub fn run_args(&self, args: &[String]) -> Run {
        let started = Instant::now();
        let mut cmd = self.runbook(args);
        let mut child = cmd
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
        let run = Run::new(&output, started.elapsed()).kept_as(&cmd);
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
        self.sandbox.read(name)
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

/// How many entries a folder has (0 when it does not exist).
pub fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, Iterator::count)
}

/// `--set k=v` for each param.
pub fn set_args<'a>(params: &'a [(&str, String)]) -> impl Iterator<Item = String> + 'a {
    params
        .iter()
        .flat_map(|(k, v)| ["--set".to_owned(), format!("{k}={v}")])
}

/// The arguments of `runbook run FILE --yes --approve-all --no-progress --run-id ID --set k=v…`.
pub fn run_args_with_id(file: &str, id: &str, params: &[(&str, String)]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        file,
        "--yes",
        "--approve-all",
        "--no-progress",
        "--run-id",
        id,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(set_args(params));
    args
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

// --- The drill runbooks' setups, shared by each drill and its kill-and-resume variant
// (`tests/drills/drill_resume.rs`).

/// The current user: the one the drill's sshd lets in.
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .expect("the user database can be read")
        .expect("the current user has a name")
        .name
}

/// The `bin` folder of the newest `PostgreSQL` installed.
pub fn pg_bin() -> String {
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/run.sh installs it)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    bins.sort();
    bins.pop()
        .expect("a PostgreSQL version with initdb under /usr/lib/postgresql")
        .display()
        .to_string()
}

/// `python3 tests/drills/zk_tool.py ARGS… --zk-hosts 127.0.0.1:PORT`, to completion.
pub fn zk_tool(args: &[&str], port: u16) -> Output {
    Command::new("python3")
        .arg(drills().join("zk_tool.py"))
        .args(args)
        .arg("--zk-hosts")
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("python3 runs")
}

/// The tree under `/job` and `/nuvla`, every znode and value, as `zk_tool` exports it.
#[track_caller]
pub fn zk_tree(port: u16) -> String {
    let out = zk_tool(&["export", "/job", "/nuvla"], port);
    assert!(
        out.status.success(),
        "zk_tool export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `PostgreSQL` and sshd for `tests/drills/deis-database.yaml`; returns its params and
/// `PostgreSQL's` port.
pub fn deis_database_setup(d: &mut Drill) -> (Vec<(&'static str, String)>, u16) {
    let pg_port = d.postgres();
    let ssh_port = d.sshd();
    let params = vec![
        ("root", d.root().display().to_string()),
        ("pg_port", pg_port.to_string()),
        ("ssh_port", ssh_port.to_string()),
        ("ssh_user", current_user()),
        ("pg_bin", pg_bin()),
        (
            "as_postgres",
            if is_root() {
                "runuser -u postgres --".to_owned()
            } else {
                String::new()
            },
        ),
        ("drills", drills().display().to_string()),
    ];
    (params, pg_port)
}

/// Starts both S3 servers (the old and the new cluster's store gateway) and sshd for
/// `tests/drills/deis-store.yaml`; returns its params.
pub fn deis_store_setup(d: &mut Drill) -> Vec<(&'static str, String)> {
    let old = d.moto("moto-old");
    let new = d.moto("moto-new");
    let ssh_port = d.sshd();
    vec![
        ("root", d.root().display().to_string()),
        ("old_gateway", format!("127.0.0.1:{old}")),
        ("new_gateway", format!("127.0.0.1:{new}")),
        ("ssh_port", ssh_port.to_string()),
        ("ssh_user", current_user()),
        ("drills", drills().display().to_string()),
    ]
}

/// The params of `tests/drills/nuvla-zk.yaml`, `ZooKeeper` on `zk_port` (the runbook starts it
/// itself; the drill stops it).
pub fn nuvla_zk_params(d: &Drill, zk_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("root", d.root().display().to_string()),
        ("zk_port", zk_port.to_string()),
        ("drills", drills().display().to_string()),
    ]
}
