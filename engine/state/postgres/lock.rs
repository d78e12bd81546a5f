//! Who drives a run kept in `PostgreSQL`: a session-level advisory lock on the run's key, held by
//! the connection of the process that drives it (the server frees it when that connection ends,
//! however it ends), and the `holder_*` columns of its row, which name that process (pid,
//! user, host, since) and its session's backend pid. A row that names another backend than the
//! one holding the lock is stale: its new holder has not named itself yet.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio_postgres::Client;

use super::error::PgError;
use crate::state::identity;
use crate::state::store::{Holder, StoreError};

/// The first key of every advisory lock runbook takes (`RUNB`); the second is the run's key
/// (0: creating or migrating the tables).
pub const LOCK_SPACE: i32 = 0x5255_4E42;

/// How long a refused process waits for the holder to name itself (it takes the lock before
/// it writes its name).
const NAMING: Duration = Duration::from_millis(500);

/// How long a process waits for the server to notice that the holder, a process of this
/// machine that no longer exists, is gone (its connection closed as it died; the server frees
/// the lock as soon as it reads that).
const DEAD_HOLDER: Duration = Duration::from_secs(5);

/// A run's row as the lock sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The run's key.
    pub key: i32,
    /// Who holds its lock, if anyone.
    pub held: Option<HeldBy>,
}

/// The holder of a run's lock.
#[derive(Debug, Clone)]
pub struct HeldBy {
    /// As its row names it (unnamed when the row is stale).
    pub holder: Holder,
}

/// The predicate of runbook's advisory locks in `pg_locks`, in this database.
pub const LOCKS: &str = "l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
     AND l.classid = 1381322306::oid \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// A run's key and who holds its lock; `None` when there is no such run.
pub async fn look(client: &Client, store: &str, run_id: &str) -> Result<Option<Seen>, PgError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT r.key, l.pid, r.holder_pid, r.holder_user, r.holder_host, r.holder_since,
                        r.holder_backend
                 FROM runbook.runs r LEFT JOIN pg_locks l ON {LOCKS} AND l.objid = r.key::oid
                 WHERE r.run_id = $1"
            ),
            &[&run_id],
        )
        .await
        .map_err(|source| PgError::Query {
            store: store.to_owned(),
            what: "read who drives the run",
            source,
        })?;
    Ok(row.map(|row| {
        let backend: Option<i32> = row.get(1);
        Seen {
            key: row.get(0),
            held: backend.map(|backend| {
                let named = row.get::<_, Option<i32>>(6) == Some(backend);
                HeldBy {
                    holder: if named {
                        Holder {
                            pid: row
                                .get::<_, Option<i64>>(2)
                                .and_then(|pid| u32::try_from(pid).ok())
                                .unwrap_or(0),
                            user: row.get(3),
                            host: row.get(4),
                            since: row.get(5),
                        }
                    } else {
                        Holder::unnamed()
                    },
                }
            }),
        }
    }))
}

/// Who holds a run's lock, waiting a moment for a holder that has not named itself yet;
/// `None` when there is no such run.
pub async fn holder(
    client: &Client,
    store: &str,
    run_id: &str,
) -> Result<Option<Option<Holder>>, PgError> {
    let deadline = Instant::now() + NAMING;
    loop {
        let Some(seen) = look(client, store, run_id).await? else {
            return Ok(None);
        };
        match seen.held {
            Some(held) if held.holder.pid == 0 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            held => return Ok(Some(held.map(|h| h.holder))),
        }
    }
}

/// Takes the lock of an existing run for this process's session and names this process its
/// holder; returns the run's key and the lease's epoch (counted up by every process that takes
/// the run). Refused, naming the holder, while another process holds it.
pub async fn take(
    client: &Client,
    store: &str,
    run_id: &str,
    me: &Holder,
) -> Result<(i32, i64), StoreError> {
    let started = Instant::now();
    loop {
        let Some(seen) = look(client, store, run_id).await? else {
            return Err(StoreError::Missing {
                id: run_id.to_owned(),
                store: store.to_owned(),
            });
        };
        if try_lock(client, store, seen.key).await? {
            let epoch = claim(client, store, seen.key, me).await?;
            return Ok((seen.key, epoch));
        }
        let waited = started.elapsed();
        match seen.held {
            // Released between the look and the try.
            None => {}
            Some(held) if held.holder.pid == 0 && waited < NAMING => {}
            Some(held) if dead_here(&held.holder) && waited < DEAD_HOLDER => {}
            Some(held) => {
                return Err(StoreError::Locked {
                    id: run_id.to_owned(),
                    holder: held.holder,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tries the run's lock for this session.
pub async fn try_lock(client: &Client, store: &str, key: i32) -> Result<bool, PgError> {
    client
        .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_SPACE, &key])
        .await
        .map(|row| row.get(0))
        .map_err(|source| PgError::Query {
            store: store.to_owned(),
            what: "lock the run",
            source,
        })
}

/// Names this process (and its session) the holder of a run whose lock it just took, and
/// counts the lease's epoch up.
async fn claim(client: &Client, store: &str, key: i32, me: &Holder) -> Result<i64, PgError> {
    client
        .query_one(
            "UPDATE runbook.runs SET lease_epoch = lease_epoch + 1, holder_pid = $2,
                    holder_user = $3, holder_host = $4, holder_since = $5,
                    holder_backend = pg_backend_pid()
             WHERE key = $1 RETURNING lease_epoch",
            &[
                &key,
                &i64::from(me.pid),
                &me.user,
                &me.host,
                &me.since.unwrap_or_else(Timestamp::now),
            ],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|source| PgError::Query {
            store: store.to_owned(),
            what: "name this process the run's holder",
            source,
        })
}

/// Whether a holder is a process of this machine that no longer exists.
fn dead_here(holder: &Holder) -> bool {
    let Ok(pid) = i32::try_from(holder.pid) else {
        return false;
    };
    pid > 0
        && holder.host.is_some()
        && holder.host == identity::host_name()
        && matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}
