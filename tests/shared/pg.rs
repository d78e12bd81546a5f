//! `PostgreSQL` for the shared-state tests: clusters started with `tests/drills/services.sh`
//! (`initdb`, `pg_ctl` on 127.0.0.1), a database of its own per test, and SQL through `psql`.
//!
//! Most tests share one cluster, started once per test binary and stopped by a watchdog when
//! the binary exits; a test that stops the server has a cluster of its own, stopped on drop. A
//! cluster that cannot start fails the test with its log: nothing is skipped.

#![allow(
    dead_code,
    reason = "each test module uses a different part of this shared module"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::run_support::{Sandbox, free_port, repo};

/// A `PostgreSQL` cluster on 127.0.0.1.
pub struct Cluster {
    /// `services.sh`'s folder for it (data, socket, log).
    dir: PathBuf,
    /// Its port.
    pub port: u16,
    /// Stopped (and its folder removed) on drop; the shared cluster is stopped by its watchdog.
    owned: Option<tempfile::TempDir>,
}

fn services(args: &[&str]) -> String {
    crate::run_support::services(
        args,
        "these tests need PostgreSQL (tests/run.sh installs it)",
    )
}

/// A folder the `postgres` user (the server runs as it when the tests run as root) can enter.
fn folder(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary folder can be created");
    let mut perms = std::fs::metadata(dir.path())
        .expect("the folder exists")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).expect("the folder's mode can be set");
    dir
}

impl Cluster {
    /// The cluster the tests of this binary share.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let root = folder("runbook-shared-pg-").keep();
            let cluster = Self::start_in(&root, None);
            // Stops the server and removes its folder once this test binary has exited.
            #[expect(
                clippy::zombie_processes,
                reason = "the watchdog outlives this process on purpose; nobody waits for it"
            )]
            let _watchdog = Command::new("setsid")
                .args([
                    "sh",
                    "-c",
                    "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; bash \"$1\" postgres-stop \"$2\"; rm -rf \"$3\"",
                ])
                .arg(std::process::id().to_string())
                .arg(repo().join("tests/drills/services.sh"))
                .arg(&cluster.dir)
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the watchdog starts");
            cluster
        })
    }

    /// A cluster of this test's own (stopped and removed on drop).
    pub fn own() -> Cluster {
        let root = folder("runbook-own-pg-");
        let path = root.path().to_path_buf();
        Self::start_in(&path, Some(root))
    }

    fn start_in(root: &Path, owned: Option<tempfile::TempDir>) -> Cluster {
        let dir = root.join("pg");
        let port = free_port();
        services(&["postgres-init", &dir.display().to_string()]);
        services(&[
            "postgres-start",
            &dir.display().to_string(),
            &port.to_string(),
        ]);
        Cluster { dir, port, owned }
    }

    /// Stops the server (fast shutdown: every session is ended).
    pub fn stop(&self) {
        services(&["postgres-stop", &self.dir.display().to_string()]);
    }

    /// Starts a stopped server again, on the same port.
    pub fn start(&self) {
        services(&[
            "postgres-start",
            &self.dir.display().to_string(),
            &self.port.to_string(),
        ]);
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL in the database a URL names; returns what it printed (unaligned, tuples only).
    #[track_caller]
    pub fn sql(&self, database_or_url: &str, sql: &str) -> String {
        let database = database_or_url
            .rsplit('/')
            .next()
            .unwrap_or(database_or_url);
        let out = Command::new(Path::new(&crate::pg::bin()).join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                database,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned.is_some() {
            let _ = Command::new("bash")
                .arg(repo().join("tests/drills/services.sh"))
                .args(["postgres-stop", &self.dir.display().to_string()])
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// The `bin` folder of the newest `PostgreSQL` installed.
pub fn bin() -> String {
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/run.sh installs it)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    bins.sort();
    bins.pop()
        .expect("a PostgreSQL version with initdb under /usr/lib/postgresql")
        .display()
        .to_string()
}

/// A "machine": a folder of its own whose runs are kept in the database `url`, where `user`
/// works.
pub fn machine(user: &str, url: &str) -> Sandbox {
    Sandbox::new()
        .env("RUNBOOK_STATE", url)
        .env("USER", user)
        .env("LOGNAME", user)
}

/// A run's journal as the database keeps it: one JSON value per record, in order.
pub fn journal(cluster: &Cluster, url: &str, run_id: &str) -> Vec<serde_json::Value> {
    cluster
        .sql(
            url,
            &format!(
                "SELECT r.record::text FROM runbook.records r JOIN runbook.runs k ON k.key = r.run
                 WHERE k.run_id = '{run_id}' ORDER BY r.seq"
            ),
        )
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a record is JSON: {e}: {l}")))
        .collect()
}

/// Whether the database has the run.
pub fn has_run(cluster: &Cluster, url: &str, run_id: &str) -> bool {
    let tables = cluster.sql(url, "SELECT to_regclass('runbook.runs') IS NOT NULL");
    tables.trim() == "t"
        && cluster
            .sql(
                url,
                &format!("SELECT count(*) FROM runbook.runs WHERE run_id = '{run_id}'"),
            )
            .trim()
            == "1"
}

/// Everything runbook keeps in the database, as text (logs and files decoded).
pub fn everything(cluster: &Cluster, url: &str) -> String {
    cluster.sql(
        url,
        "SELECT r::text FROM runbook.runs r
         UNION ALL SELECT record::text FROM runbook.records
         UNION ALL SELECT params::text FROM runbook.params
         UNION ALL SELECT step || ' ' || encode(bytes, 'escape') FROM runbook.logs
         UNION ALL SELECT original || ' ' || encode(bytes, 'escape') FROM runbook.files",
    )
}
