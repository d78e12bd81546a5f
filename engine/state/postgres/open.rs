//! Making a run this process's to drive: creating it (its row, runbook files, params and first
//! record, in one transaction, with its lock taken) or taking an existing one over; either way
//! on a session connection of its own, which then holds the run's lock.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::connect::Dialer;
use super::error::PgError;
use super::lock;
use super::session::Position;
use super::summary::Summary;
use crate::state::journal::Record;
use crate::state::store::{Holder, NewRun, StoreError};

/// A new run, owned (it goes to the database thread).
pub struct Creation {
    run_id: String,
    runbook: String,
    source: String,
    root: String,
    positions: Vec<i32>,
    originals: Vec<String>,
    relatives: Vec<String>,
    contents: Vec<Vec<u8>>,
    params: String,
    first: Record,
}

impl Creation {
    /// What `run` says of the new run.
    pub fn of(run: &NewRun<'_>) -> Self {
        let files = &run.files.files;
        Self {
            run_id: run.run_id.to_owned(),
            runbook: run.runbook.to_owned(),
            source: run.files.source.to_string_lossy().into_owned(),
            root: run.files.root.to_string_lossy().into_owned(),
            positions: (0..).take(files.len()).collect(),
            originals: files
                .iter()
                .map(|f| f.original.to_string_lossy().into_owned())
                .collect(),
            relatives: files
                .iter()
                .map(|f| f.relative.to_string_lossy().into_owned())
                .collect(),
            contents: files.iter().map(|f| f.bytes.clone()).collect(),
            // Plain data: serializing it cannot fail.
            params: serde_json::to_string(run.params).unwrap_or_else(|_| "{}".to_owned()),
            first: run.first.clone(),
        }
    }
}

/// A session connection holding a run's lock, and where the run's journal stands.
pub struct Opened {
    /// The connection.
    pub client: Client,
    /// Its backend's pid.
    pub backend: i32,
    /// The journal's position.
    pub position: Position,
}

/// Creates a run; a run that exists is not touched (refused as locked while it is driven).
pub async fn create(dialer: &Dialer, run: &Creation, me: &Holder) -> Result<Opened, StoreError> {
    let store = dialer.store();
    let failed = |what| {
        move |source| {
            StoreError::from(PgError::Query {
                store: store.to_owned(),
                what,
                source,
            })
        }
    };
    let mut client = dialer.connect_session().await?;
    let tx = client
        .transaction()
        .await
        .map_err(failed("create the run"))?;
    let started_at = match &run.first {
        Record::RunStarted { at, .. } => Some(*at),
        _ => None,
    };
    let row = tx
        .query_opt(
            "INSERT INTO runbook.runs (run_id, runbook, source, root, started_at, lease_epoch,
                                       holder_pid, holder_user, holder_host, holder_since,
                                       holder_backend)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, pg_backend_pid())
             ON CONFLICT (run_id) DO NOTHING
             RETURNING key, holder_backend",
            &[
                &run.run_id,
                &run.runbook,
                &run.source,
                &run.root,
                &started_at,
                &i64::from(me.pid),
                &me.user,
                &me.host,
                &me.since,
            ],
        )
        .await
        .map_err(failed("create the run"))?;
    let Some(row) = row else {
        drop(tx);
        // A run that exists: say who drives it, when someone does.
        return Err(match lock::holder(&client, store, &run.run_id).await? {
            Some(Some(holder)) => StoreError::Locked {
                id: run.run_id.clone(),
                holder,
            },
            _ => StoreError::Exists(run.run_id.clone()),
        });
    };
    let key: i32 = row.get(0);
    let backend: i32 = row.get(1);
    // A session-level lock: it outlives the transaction (and the connection's end frees it).
    let locked: bool = tx
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&lock::LOCK_SPACE, &key],
        )
        .await
        .map_err(failed("lock the run"))?
        .get(0);
    if !locked {
        return Err(StoreError::Locked {
            id: run.run_id.clone(),
            holder: Holder::unnamed(),
        });
    }
    contents(&tx, store, key, run).await?;
    tx.commit().await.map_err(failed("create the run"))?;
    let mut summary = Summary::default();
    summary.apply(&run.first);
    Ok(Opened {
        client,
        backend,
        position: Position {
            key,
            epoch: 1,
            next_seq: 1,
            summary,
            log_ends: HashMap::new(),
        },
    })
}

/// Stores a new run's runbook files, params and first record, in its creating transaction.
async fn contents(
    tx: &tokio_postgres::Transaction<'_>,
    store: &str,
    key: i32,
    run: &Creation,
) -> Result<(), StoreError> {
    let failed = |what| {
        move |source| {
            StoreError::from(PgError::Query {
                store: store.to_owned(),
                what,
                source,
            })
        }
    };
    tx.execute(
        "INSERT INTO runbook.files (run, position, original, relative, bytes)
         SELECT $1, f.position, f.original, f.relative, f.bytes
         FROM unnest($2::integer[], $3::text[], $4::text[], $5::bytea[])
              AS f (position, original, relative, bytes)",
        &[
            &key,
            &run.positions,
            &run.originals,
            &run.relatives,
            &run.contents,
        ],
    )
    .await
    .map_err(failed("store the runbook files"))?;
    tx.execute(
        "INSERT INTO runbook.params (run, params) VALUES ($1, $2::text::json)",
        &[&key, &run.params],
    )
    .await
    .map_err(failed("store the params"))?;
    // A record is plain data: serializing it cannot fail.
    let first = serde_json::to_string(&run.first).unwrap_or_default();
    tx.execute(
        "INSERT INTO runbook.records (run, seq, record) VALUES ($1, 0, $2::text::json)",
        &[&key, &first],
    )
    .await
    .map_err(failed("journal the run's start"))?;
    Ok(())
}

/// Takes an existing run over.
pub async fn take(dialer: &Dialer, run_id: &str, me: &Holder) -> Result<Opened, StoreError> {
    let store = dialer.store();
    let failed = |source| {
        StoreError::from(PgError::Query {
            store: store.to_owned(),
            what: "read where the run's journal stands",
            source,
        })
    };
    let client = dialer.connect_session().await?;
    let (key, epoch) = lock::take(&client, store, run_id, me).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
    let (next, row, ends) = tokio::try_join!(
        client.query_one(
            "SELECT coalesce(max(seq), -1) + 1 FROM runbook.records WHERE run = $1",
            &params,
        ),
        client.query_one(
            "SELECT ended, finished_at, pg_backend_pid() FROM runbook.runs WHERE key = $1",
            &params,
        ),
        client.query(
            "SELECT step, max(start + octet_length(bytes))::bigint FROM runbook.logs
             WHERE run = $1 GROUP BY step",
            &params,
        ),
    )
    .map_err(failed)?;
    let summary = Summary {
        ended: row
            .get::<_, Option<&str>>(0)
            .and_then(super::summary::parse_status),
        finished_at: row.get(1),
    };
    Ok(Opened {
        backend: row.get(2),
        position: Position {
            key,
            epoch,
            next_seq: next.get(0),
            summary,
            log_ends: ends.iter().map(|r| (r.get(0), r.get(1))).collect(),
        },
        client,
    })
}
