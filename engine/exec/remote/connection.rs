//! One OpenSSH connection to a host (a `ControlMaster` the engine supervises), and every `ssh`
//! invocation the engine makes: the master, sessions multiplexed over it, and its control
//! requests. No other file builds ssh arguments.
//!
//! The master runs in the foreground as a child of the engine (never `-f`, never
//! `ControlPersist`): it ends when [`Connection::close`] asks it to, when the connection is
//! dropped (SIGKILL), and — should the engine itself be killed — when its session's standard
//! input, a pipe from the engine, closes. Every process here runs in a process group of its own,
//! so a Ctrl-C at the terminal reaches the engine, which then stops remote commands over the
//! connection, rather than killing the connection first.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::target::HostTarget;
use crate::exec::secrets::withhold;

/// What the master's own session prints once the host runs commands; then it waits for its
/// standard input to close.
const READY: &str = "runbook-connection-ready";

/// Sessions a step may hold at once on one connection. sshd allows 10 by default
/// (`MaxSessions`); the rest are kept for stopping commands.
const SESSIONS: usize = 8;

/// The longest a unix socket path may be (`sun_path`, less ssh's temporary suffix).
const SOCKET_PATH_MAX: usize = 100;

/// Lines of the master's own messages kept for a reason.
const LOG_LINES: usize = 20;

/// Why a host could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// ssh could not connect or log in.
    #[error("unreachable: {message}")]
    Unreachable {
        /// The host's key.
        host: String,
        /// ssh's own words (naming the host), or what happened.
        message: String,
    },
    /// `ssh` could not be started at all.
    #[error("failed to start `ssh` for {host}: {source}")]
    Spawn {
        /// The host's key.
        host: String,
        /// The OS's reason.
        #[source]
        source: std::io::Error,
    },
    /// The control socket's folder could not be made, or its path is too long.
    #[error("failed to prepare a control socket for {host}: {reason}")]
    Socket {
        /// The host's key.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// The target is not something ssh can be given.
    #[error("{host}: {reason}")]
    Target {
        /// The host's key.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The run was cancelled while connecting.
    #[error("interrupted while connecting to {host}")]
    Interrupted {
        /// The host's key.
        host: String,
    },
}

/// A live master connection to one host.
#[derive(Debug)]
pub struct Connection {
    target: HostTarget,
    socket: PathBuf,
    master: Mutex<Child>,
    /// The master session's standard input: held open for as long as the connection lives.
    _session_input: Option<ChildStdin>,
    log: Arc<Mutex<VecDeque<String>>>,
    sessions: Arc<Semaphore>,
    /// The local port of the connection's SOCKS proxy, once one was asked for.
    socks: tokio::sync::Mutex<Option<u16>>,
    /// The environment variables secrets were read from, kept from the local processes a
    /// connection starts.
    withheld: Arc<[String]>,
}

impl Connection {
    /// Connects (ssh's `ConnectTimeout` is `connect_timeout` unless the target's options set
    /// one); returns once the host runs commands over the connection.
    pub(crate) async fn open(
        target: &HostTarget,
        socket: PathBuf,
        connect_timeout: Duration,
        withheld: Arc<[String]>,
        cancel: &CancellationToken,
    ) -> Result<Self, ConnectError> {
        let host = target.key.clone();
        if let Some(reason) = target.problem() {
            return Err(ConnectError::Target { host, reason });
        }
        if socket.as_os_str().len() > SOCKET_PATH_MAX {
            return Err(ConnectError::Socket {
                host,
                reason: format!(
                    "{} is longer than {SOCKET_PATH_MAX} bytes",
                    socket.display()
                ),
            });
        }
        let mut master = Self::master_command(target, &socket, connect_timeout, &withheld)
            .spawn()
            .map_err(|source| ConnectError::Spawn {
                host: host.clone(),
                source,
            })?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let log_reader = master
            .stderr
            .take()
            .map(|err| tokio::spawn(keep_log(err, Arc::clone(&log))));
        let stdout = master.stdout.take();
        let ready = async {
            let Some(out) = stdout else { return false };
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == READY {
                    return true;
                }
            }
            false
        };
        // ssh gives up after its ConnectTimeout; this bounds a login that hangs after it.
        let patience = connect_timeout * 3 + Duration::from_secs(5);
        let outcome = tokio::select! {
            ready = tokio::time::timeout(patience, ready) => ready.ok(),
            () = cancel.cancelled() => {
                let _ = master.start_kill();
                let _ = master.wait().await;
                return Err(ConnectError::Interrupted { host });
            }
        };
        if outcome == Some(true) && wait_for_socket(&socket, &mut master).await {
            return Ok(Self {
                target: target.clone(),
                socket,
                _session_input: master.stdin.take(),
                master: Mutex::new(master),
                log,
                sessions: Arc::new(Semaphore::new(SESSIONS)),
                socks: tokio::sync::Mutex::new(None),
                withheld,
            });
        }
        let _ = master.start_kill();
        let _ = master.wait().await;
        if let Some(reader) = log_reader {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        let said = lines_of(&log).join("; ");
        let message = if said.is_empty() {
            match outcome {
                None => format!(
                    "no answer from {} within {}",
                    target.key,
                    crate::spec::duration::Human(patience)
                ),
                Some(_) => format!("ssh to {} ended without running a command", target.key),
            }
        } else {
            said
        };
        Err(ConnectError::Unreachable {
            message: name_host(target, message),
            host,
        })
    }

    /// `ssh … -M` for a target: the master, with the target's options (a later one winning,
    /// while ssh keeps the first value it reads of an option, so they are given in reverse),
    /// then the engine's defaults, which the target's options may override.
    fn master_command(
        target: &HostTarget,
        socket: &Path,
        connect_timeout: Duration,
        withheld: &[String],
    ) -> Command {
        let mut ssh = Command::new("ssh");
        withhold(ssh.as_std_mut(), withheld);
        ssh.arg("-S")
            .arg(socket)
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .args(["-o", "BatchMode=yes"]);
        if let Some(port) = target.port {
            ssh.arg("-p").arg(port.to_string());
        }
        if let Some(identity) = &target.identity_file {
            ssh.arg("-i").arg(identity);
        }
        for option in target.options.iter().rev() {
            ssh.arg("-o").arg(option);
        }
        ssh.arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                connect_timeout.as_secs().max(1)
            ))
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=4",
            ])
            .args(["-T", "--", &target.destination])
            .arg(format!("echo {READY}; exec cat >/dev/null"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        ssh
    }

    /// A session over the connection running `remote` (a POSIX shell command line, run by the
    /// user's login shell on the host). Standard streams are the caller's to set. A session
    /// never opens a connection of its own: without the master it fails.
    pub(crate) fn session(&self, remote: &str) -> Command {
        let mut ssh = self.client();
        ssh.args(["-T", "--", &self.target.destination, remote]);
        ssh
    }

    /// The local port of a SOCKS proxy whose connections leave from the host (`ssh -O forward
    /// -D`): requests sent through it reach what the host reaches, its loopback included. Asked
    /// for once per connection; a port taken meanwhile by another program is tried again.
    pub(crate) async fn socks(&self) -> Result<u16, String> {
        let mut known = self.socks.lock().await;
        if let Some(port) = *known {
            return Ok(port);
        }
        let mut said = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free local port for a forward: {e}"))?
                .port();
            let mut forward = self.client();
            forward
                .args(["-O", "forward", "-D", &format!("127.0.0.1:{port}")])
                .args(["--", &self.target.destination])
                .stdin(Stdio::null());
            let out = forward
                .output()
                .await
                .map_err(|e| format!("failed to start `ssh`: {e}"))?;
            if out.status.success() {
                *known = Some(port);
                return Ok(port);
            }
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .clone_into(&mut said);
        }
        Err(name_host(
            &self.target,
            format!("the connection could not forward a port: {said}"),
        ))
    }

    /// Waits for one of the sessions a step may hold.
    pub(crate) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.sessions).acquire_owned().await.ok()
    }

    /// Asks the master to end and waits for it (killing it after `patience`).
    pub(crate) async fn close(&self, patience: Duration) {
        let mut exit = self.client();
        exit.args(["-O", "exit", "--", &self.target.destination])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = tokio::time::timeout(patience, exit.status()).await;
        let deadline = tokio::time::Instant::now() + patience;
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(master.try_wait(), Ok(None)) {
            let _ = master.start_kill();
        }
    }

    /// Whether the master still runs.
    pub(crate) fn alive(&self) -> bool {
        matches!(
            self.master
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait(),
            Ok(None)
        )
    }

    /// Why the connection ended, in ssh's words, naming the host.
    pub(crate) fn lost(&self) -> String {
        let said = lines_of(&self.log).join("; ");
        name_host(
            &self.target,
            if said.is_empty() {
                "the connection ended".to_owned()
            } else {
                format!("the connection ended: {said}")
            },
        )
    }

    /// The environment variables the local processes of this connection do not get.
    pub(crate) fn withheld(&self) -> &[String] {
        &self.withheld
    }

    /// The host's key.
    pub(crate) fn key(&self) -> &str {
        &self.target.key
    }

    /// `ssh -S SOCKET`: a client of the master that never connects by itself (if the master
    /// is gone, its `ProxyCommand` fails instead of opening a new connection).
    fn client(&self) -> Command {
        let mut ssh = Command::new("ssh");
        withhold(ssh.as_std_mut(), &self.withheld);
        ssh.arg("-S")
            .arg(&self.socket)
            .args(["-o", "ControlMaster=no", "-o", "BatchMode=yes"])
            .args(["-o", "ProxyCommand=false"])
            .process_group(0)
            .kill_on_drop(true);
        ssh
    }
}

/// The master made its socket (it does before it runs its session's command).
async fn wait_for_socket(socket: &Path, master: &mut Child) -> bool {
    for _ in 0..100 {
        if socket.exists() {
            return true;
        }
        if !matches!(master.try_wait(), Ok(None)) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Keeps the last lines the master says (its errors), without the noise of a first contact.
async fn keep_log(stream: impl AsyncRead + Unpin, log: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim().to_owned();
        if line.is_empty() || line.starts_with("Warning: Permanently added") {
            continue;
        }
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
}

fn lines_of(log: &Mutex<VecDeque<String>>) -> Vec<String> {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .cloned()
        .collect()
}

/// ssh's message, naming the host when ssh's own words do not.
fn name_host(target: &HostTarget, message: String) -> String {
    if message.contains(target.address()) || message.contains(&target.key) {
        message
    } else {
        format!("{message} ({})", target.key)
    }
}
