//! The thread that talks to the database. The [`crate::state::Store`] interface is synchronous
//! and is called from plain threads and from inside the engine's tokio runtime (the recorder),
//! where a blocking client that starts a runtime of its own would panic. So every connection
//! lives on one dedicated thread with a single-threaded tokio runtime; callers hand it a future
//! and wait for the answer on a plain channel.

use std::future::Future;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use super::error::PgError;

/// How long a caller inside the engine's runtime waits on its worker thread before it hands
/// that thread's other tasks to another one (a round trip takes far less; an outage more).
const SHORT_WAIT: Duration = Duration::from_millis(20);

/// The database thread.
#[derive(Debug)]
pub struct Worker {
    handle: Handle,
    /// Ends the thread's runtime; taken on drop.
    stop: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
    store: String,
}

impl Worker {
    /// Starts the thread for the database `store` (named in errors).
    pub fn start(store: &str) -> Result<Self, PgError> {
        let failed = |source| PgError::Worker {
            store: store.to_owned(),
            source: Some(source),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("runbook-postgres".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Sessions still open are dropped: their connections close, their locks go.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(failed)?;
        Ok(Self {
            handle,
            stop: Mutex::new(Some((stop, thread))),
            store: store.to_owned(),
        })
    }

    /// Runs `work` on the database thread and waits for its answer.
    pub fn call<T: Send + 'static, E: From<PgError> + Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, E> {
        let (tx, rx) = sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        wait(&rx).unwrap_or_else(|| Err(self.stopped().into()))
    }

    /// The error of a thread that is gone.
    pub fn stopped(&self) -> PgError {
        PgError::Worker {
            store: self.store.clone(),
            source: None,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let taken = match self.stop.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((stop, thread)) = taken {
            let _ = stop.send(());
            // The database thread never drops the last handle of its own worker (only callers
            // hold one), so this never joins the current thread.
            let _ = thread.join();
        }
    }
}

/// Waits for an answer from the database thread; `None` when it is gone. A caller on a worker
/// of a multi-threaded tokio runtime (the recorder) that waits longer than a round trip lets
/// the runtime move that worker's other tasks elsewhere, so that the steps that run go on
/// while the database is slow or out of reach.
pub fn wait<T>(rx: &Receiver<T>) -> Option<T> {
    match rx.recv_timeout(SHORT_WAIT) {
        Ok(answer) => return Some(answer),
        Err(RecvTimeoutError::Disconnected) => return None,
        Err(RecvTimeoutError::Timeout) => {}
    }
    let in_multi_thread_runtime = Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if in_multi_thread_runtime {
        tokio::task::block_in_place(|| rx.recv().ok())
    } else {
        rx.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_the_thread_and_answers_from_inside_a_runtime_too() {
        let worker = Worker::start("db").unwrap();
        let name = worker
            .call(async { Ok::<_, PgError>(std::thread::current().name().map(str::to_owned)) })
            .unwrap();
        assert_eq!(name.as_deref(), Some("runbook-postgres"));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let worker = std::sync::Arc::new(worker);
        let slow = runtime.block_on({
            let worker = worker.clone();
            async move {
                tokio::spawn(async move {
                    worker.call(async {
                        tokio::time::sleep(Duration::from_millis(60)).await;
                        Ok::<_, PgError>(7)
                    })
                })
                .await
                .unwrap()
            }
        });
        assert_eq!(
            slow.unwrap(),
            7,
            "a long wait inside the runtime does not panic"
        );
    }
}
