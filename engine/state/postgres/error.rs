//! Why the `PostgreSQL` store could not do what was asked, with the server's or the OS's reason
//! kept as the source.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::state::store::Holder;

/// Why the `PostgreSQL` store failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A `--state` URL the client cannot use.
    #[error("invalid --state URL: {reason}")]
    Url {
        /// What is wrong.
        reason: String,
        /// The client's reason, when it gave one.
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    /// TLS root certificates that cannot be read.
    #[error("failed to read TLS root certificates from {path}")]
    RootCert {
        /// The file (or the system's store).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("failed to set up TLS for {store}")]
    Tls {
        /// The database.
        store: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The server could not be reached, or refused the connection.
    #[error("failed to connect to {store}")]
    Connect {
        /// The database.
        store: String,
        /// The client's reason (refused, authentication, TLS…).
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("failed to {what} in {store}")]
    Query {
        /// The database.
        store: String,
        /// What was being done.
        what: &'static str,
        /// The server's or the client's reason.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server did not answer in time.
    #[error("{store} did not answer within {} s (while trying to {what})", after.as_secs_f32())]
    Timeout {
        /// The database.
        store: String,
        /// What was being done.
        what: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// The database holds runbook's tables in a version this build does not know.
    #[error(
        "{store} keeps runs in schema version {found}, newer than this build of runbook knows (up to {known}); use a newer runbook"
    )]
    SchemaTooNew {
        /// The database.
        store: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// Something a run keeps cannot be read back.
    #[error("{store}: {what} is damaged: {reason}")]
    Damaged {
        /// The database.
        store: String,
        /// What is damaged (`record 12 of run r-1`).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The database stayed out of reach longer than the run may wait; the run was stopped.
    #[error(
        "{store} could not be reached for {} s; run `{run_id}` was stopped as interrupted: `runbook resume {run_id}` continues it once the database answers",
        waited.as_secs()
    )]
    Unreachable {
        /// The database.
        store: String,
        /// The run.
        run_id: String,
        /// How long it was retried.
        waited: Duration,
        /// The last reason it could not be reached.
        #[source]
        last: Arc<PgError>,
    },
    /// While this process had lost the database, another one drove the run: this one stopped.
    #[error(
        "run `{run_id}` was taken over by another process ({holder}) while this one had lost {store}; this process stopped driving it"
    )]
    TakenOver {
        /// The database.
        store: String,
        /// The run.
        run_id: String,
        /// Who drives it, or drove it meanwhile (boxed: errors stay small).
        holder: Box<Holder>,
    },
    /// The run's lease was released: its journal can no longer be written.
    #[error("run `{run_id}` is no longer driven by this process; its journal cannot be written")]
    Released {
        /// The run.
        run_id: String,
    },
    /// The server refused a write of the journal: it takes no more.
    #[error("run `{run_id}`'s journal cannot be written to {store}")]
    Broken {
        /// The database.
        store: String,
        /// The run.
        run_id: String,
        /// The write the server refused.
        #[source]
        cause: Arc<PgError>,
    },
    /// The thread that talks to the database could not start, or stopped.
    #[error("the thread that talks to {store} stopped")]
    Worker {
        /// The database.
        store: String,
        /// Why it could not start, when it did not.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl PgError {
    /// The exit code of a command that failed with this error (SPEC §5): a run stopped because
    /// the database stayed away is interrupted (130, resumable); one taken over by another
    /// process is locked (4); anything else failed to reach or use the store (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } => 130,
            Self::TakenOver { .. } => 4,
            Self::Url { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the connection, not the statement, failed: trying again on a new connection may
    /// succeed (the server restarted, the network came back, an administrator ended the
    /// session).
    pub fn transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::Query { source, .. } => connection_lost(source),
            _ => false,
        }
    }
}

/// Whether a client error means the connection is gone (rather than a statement refused).
pub fn connection_lost(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        // No SQLSTATE: the socket, TLS or protocol failed, or the connection closed.
        None => true,
        // Class 08: connection exception. 57P01–57P03: the server shuts down, crashed or is
        // starting; `pg_terminate_backend` ends a session with 57P01.
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
    }
}
