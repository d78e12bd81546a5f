//! Opening connections on the database thread: one for reading (shared, reopened when it
//! breaks; it also makes sure the tables exist in this build's version) and one per run this
//! process drives (it holds the run's lock).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::PgError;
use super::schema;
use super::target::Target;

/// What a connection needs: where, how, and the name to show.
#[derive(Clone)]
pub struct Dialer {
    /// The database.
    pub target: Arc<Target>,
    /// TLS as the URL asks.
    pub tls: MakeRustlsConnect,
}

impl Dialer {
    /// The database as it may be shown.
    pub fn store(&self) -> &str {
        &self.target.display
    }

    /// A new connection; its I/O is driven by a task on the current (database) thread.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let (client, connection) =
            self.target
                .config
                .connect(self.tls.clone())
                .await
                .map_err(|source| PgError::Connect {
                    store: self.store().to_owned(),
                    source,
                })?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the connection breaks; the client's next
            // statement then says why.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A connection for driving a run: the server probes it often, so that the lock of a
    /// process whose machine died is freed within half a minute (TCP keepalives every 5 s
    /// after 10 s idle, 3 missed).
    pub async fn connect_session(&self) -> Result<Client, PgError> {
        let client = self.connect().await?;
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;
                 SET tcp_keepalives_count = 3;",
            )
            .await
            .map_err(|source| PgError::Query {
                store: self.store().to_owned(),
                what: "set up the session",
                source,
            })?;
        Ok(client)
    }
}

/// The shared reading connection.
pub struct Reader {
    dialer: Dialer,
    client: Mutex<Option<Arc<Client>>>,
}

impl Reader {
    /// A reader that connects on first use.
    pub fn new(dialer: Dialer) -> Self {
        Self {
            dialer,
            client: Mutex::new(None),
        }
    }

    /// The connection, opened (and the tables made ready) when there is none or it broke.
    pub async fn client(&self) -> Result<Arc<Client>, PgError> {
        let mut held = self.client.lock().await;
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let mut client = self.dialer.connect().await?;
        schema::ensure(&mut client, self.dialer.store()).await?;
        let client = Arc::new(client);
        *held = Some(client.clone());
        Ok(client)
    }

    /// Forgets a connection that broke.
    pub async fn reset(&self) {
        *self.client.lock().await = None;
    }
}

/// Runs `work`, giving up after `limit` with a timeout error naming `what`.
pub async fn within<T>(
    limit: Duration,
    store: &str,
    what: &'static str,
    work: impl Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(PgError::Timeout {
            store: store.to_owned(),
            what,
            after: limit,
        })
    })
}
