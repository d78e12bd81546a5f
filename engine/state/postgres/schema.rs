//! runbook's tables, in a schema of their own (`runbook`), created on first use and migrated
//! forward by the engine: `runbook.schema_version` holds the version, each migration takes it
//! one step further, and a database of a newer version than this build knows is refused.
//!
//! ```text
//! runs      one row per run: id, runbook, the run's summary as records land (how its last
//!           process ended, when it started and last ended) and who holds it (pid, user, host,
//!           since, the session's backend pid); `key` names its advisory lock
//! records   the journal: (run, seq) → one JSON record
//! logs      step logs in chunks: (run, step, start) → bytes from byte `start` on
//! files     the runbook files as they ran
//! params    the resolved params (secrets are never params)
//! ```

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::error::PgError;
use super::lock::LOCK_SPACE;

/// The schema version this build writes.
pub const VERSION: i32 = 1;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; VERSION as usize] = [r"
CREATE TABLE runbook.runs (
    key            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         text NOT NULL UNIQUE,
    runbook        text NOT NULL,
    source         text NOT NULL,
    root           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    ended          text,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    lease_epoch    bigint NOT NULL DEFAULT 0,
    holder_pid     bigint,
    holder_user    text,
    holder_host    text,
    holder_since   timestamptz,
    holder_backend integer
);
CREATE INDEX runs_by_creation ON runbook.runs (created_at, run_id);
CREATE TABLE runbook.records (
    run    integer NOT NULL REFERENCES runbook.runs (key) ON DELETE CASCADE,
    seq    bigint NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE runbook.logs (
    run   integer NOT NULL REFERENCES runbook.runs (key) ON DELETE CASCADE,
    step  text NOT NULL,
    start bigint NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (run, step, start)
);
CREATE TABLE runbook.files (
    run      integer NOT NULL REFERENCES runbook.runs (key) ON DELETE CASCADE,
    position integer NOT NULL,
    original text NOT NULL,
    relative text NOT NULL,
    bytes    bytea NOT NULL,
    PRIMARY KEY (run, position)
);
CREATE TABLE runbook.params (
    run    integer PRIMARY KEY REFERENCES runbook.runs (key) ON DELETE CASCADE,
    params json NOT NULL
);
"];

/// Makes sure the database holds runbook's tables in this build's version: creates them on
/// first use, migrates an older version forward, refuses a newer one.
pub async fn ensure(client: &mut Client, store: &str) -> Result<(), PgError> {
    match current(client, store).await? {
        Some(found) if found == VERSION => Ok(()),
        Some(found) if found > VERSION => Err(too_new(store, found)),
        _ => migrate(client, store).await,
    }
}

/// The version recorded, if the tables exist.
async fn current(client: &Client, store: &str) -> Result<Option<i32>, PgError> {
    match client
        .query_opt("SELECT max(version) FROM runbook.schema_version", &[])
        .await
    {
        Ok(row) => Ok(row.and_then(|r| r.get::<_, Option<i32>>(0))),
        Err(e)
            if matches!(
                e.code(),
                Some(&SqlState::UNDEFINED_TABLE | &SqlState::INVALID_SCHEMA_NAME)
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(query(store, "read runbook's schema version", source)),
    }
}

/// Creates or migrates the tables, one process at a time (a transaction-level advisory lock:
/// two engines starting on an empty database do not both create them).
async fn migrate(client: &mut Client, store: &str) -> Result<(), PgError> {
    let failed = |source| query(store, "create or migrate runbook's tables", source);
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE])
        .await
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS runbook;
         CREATE TABLE IF NOT EXISTS runbook.schema_version (
             version     integer NOT NULL,
             migrated_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(failed)?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM runbook.schema_version",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    if found > VERSION {
        return Err(too_new(store, found));
    }
    let from = usize::try_from(found).unwrap_or(0);
    for migration in &MIGRATIONS[from..] {
        tx.batch_execute(migration).await.map_err(failed)?;
    }
    if found < VERSION {
        tx.execute(
            "INSERT INTO runbook.schema_version (version) VALUES ($1)",
            &[&VERSION],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

fn too_new(store: &str, found: i32) -> PgError {
    PgError::SchemaTooNew {
        store: store.to_owned(),
        found,
        known: VERSION,
    }
}

fn query(store: &str, what: &'static str, source: tokio_postgres::Error) -> PgError {
    PgError::Query {
        store: store.to_owned(),
        what,
        source,
    }
}
