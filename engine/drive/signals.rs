//! Ctrl-C and SIGTERM while a run goes: the first stops the run (process groups get SIGTERM,
//! then SIGKILL after a grace period), a second skips the grace period, a third ends the engine
//! at once.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Installs the handlers (before any step starts: an early Ctrl-C must not kill the engine
/// outright and leave a step's process group running) and watches them in a task.
pub fn watch(cancel: CancellationToken, hurry: CancellationToken) {
    if let (Ok(int), Ok(term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        tokio::spawn(escalate(int, term, cancel, hurry));
    }
}

async fn escalate(
    mut int: Signal,
    mut term: Signal,
    cancel: CancellationToken,
    hurry: CancellationToken,
) {
    for token in [cancel, hurry] {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}
