//! [`Remote`]: a run's connections to its hosts. One master connection per host, opened on first
//! use and reused by every command and transfer to that host, opened again if it was lost (a host
//! rebooting between steps), and ended when the run ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use super::connection::{ConnectError, Connection};
use super::target::HostTarget;
use crate::exec::runtime::Runtime;

/// ssh's `ConnectTimeout` unless a host's options set one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Remote::close`] waits for a master to end before killing it.
const CLOSE_PATIENCE: Duration = Duration::from_secs(5);

/// One host's connection, or none yet. Its lock is held while connecting, so that steps starting
/// together on a new host open one connection and share it.
type Slot = tokio::sync::Mutex<Option<Arc<Connection>>>;

/// A run's connections to its hosts.
#[derive(Debug)]
pub struct Remote {
    run_id: String,
    /// Marks the lines a remote command's wrapper writes for the engine (never a command's own).
    pub(super) marker: String,
    connect_timeout: Duration,
    /// The control sockets' folder (mode 0700, under `/tmp` so that socket paths stay short),
    /// made on first use and removed with the `Remote`.
    sockets: Mutex<Option<TempDir>>,
    hosts: Mutex<HashMap<HostTarget, Arc<Slot>>>,
    next_socket: AtomicUsize,
    /// The environment variables secrets were read from: ssh and tar do not get them.
    withheld: Arc<[String]>,
}

impl Remote {
    /// The connections of the run `run_id` (none open yet).
    pub fn new(run_id: impl Into<String>) -> Self {
        let run_id = run_id.into();
        let seed = format!(
            "{run_id} {} {:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let digest = Sha256::digest(seed.as_bytes());
        let marker = format!("@runbook-{}", hex(&digest[..12]));
        Self {
            run_id,
            marker,
            connect_timeout: CONNECT_TIMEOUT,
            sockets: Mutex::new(None),
            hosts: Mutex::new(HashMap::new()),
            next_socket: AtomicUsize::new(0),
            withheld: Arc::from([]),
        }
    }

    /// The same, keeping the environment variables `vars` (those secrets were read from) out
    /// of every process it starts.
    #[must_use]
    pub fn withholding(mut self, vars: &[String]) -> Self {
        self.withheld = Arc::from(vars);
        self
    }

    /// The same, with another ssh `ConnectTimeout` (whole seconds; at least one).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The folder of the control sockets, once a connection was opened.
    pub fn control_dir(&self) -> Option<PathBuf> {
        self.lock_sockets()
            .as_ref()
            .map(|dir| dir.path().to_path_buf())
    }

    /// The host's connection: the open one, or a new one (and only one, however many steps ask
    /// at once).
    pub(crate) async fn connection(
        &self,
        rt: &Runtime,
        host: &HostTarget,
    ) -> Result<Arc<Connection>, ConnectError> {
        // Targets that differ only by their key share a connection.
        let same = HostTarget {
            key: String::new(),
            ..host.clone()
        };
        let slot = Arc::clone(
            self.hosts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(same)
                .or_default(),
        );
        let mut current = tokio::select! {
            guard = slot.lock() => guard,
            () = rt.cancel.cancelled() => return Err(ConnectError::Interrupted { host: host.key.clone() }),
        };
        if let Some(open) = current.as_ref().filter(|c| c.alive()) {
            return Ok(Arc::clone(open));
        }
        let socket = self.socket_path(host)?;
        let connection = Arc::new(
            Connection::open(
                host,
                socket,
                self.connect_timeout,
                Arc::clone(&self.withheld),
                &rt.cancel,
            )
            .await?,
        );
        *current = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// Ends every connection (`ssh -O exit`, then SIGKILL to a master that does not end) and
    /// removes the control sockets' folder. A step still using a connection loses it.
    pub async fn close(&self) {
        let slots: Vec<Arc<Slot>> = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        let closing = slots.iter().map(|slot| async move {
            if let Some(connection) = slot.lock().await.take() {
                connection.close(CLOSE_PATIENCE).await;
            }
        });
        futures_join_all(closing).await;
        if let Some(dir) = self.lock_sockets().take() {
            let _ = dir.close();
        }
    }

    fn socket_path(&self, host: &HostTarget) -> Result<PathBuf, ConnectError> {
        let mut sockets = self.lock_sockets();
        if sockets.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("rb-")
                .tempdir_in("/tmp")
                .map_err(|e| ConnectError::Socket {
                    host: host.key.clone(),
                    reason: format!("failed to create a folder in /tmp: {e}"),
                })?;
            // tempfile makes it 0700 already; the sockets in it must never be reachable by others.
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .map_err(|e| ConnectError::Socket {
                host: host.key.clone(),
                reason: format!("failed to restrict {}: {e}", dir.path().display()),
            })?;
            *sockets = Some(dir);
        }
        let n = self.next_socket.fetch_add(1, Ordering::Relaxed);
        Ok(sockets
            .as_ref()
            .map(|dir| dir.path().join(n.to_string()))
            .unwrap_or_default())
    }

    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, Option<TempDir>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs futures to completion together (they borrow the `Remote`, so they are polled here rather
/// than spawned).
async fn futures_join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending: Vec<_> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
