//! Ctrl-C, SIGTERM and SIGHUP while a run goes: the first stops the run (process groups get
//! SIGTERM, then SIGKILL after a grace period; the run ends `interrupted` and can be resumed), a
//! second skips the grace period, a third ends the engine at once.
//!
//! SIGHUP is what a closed terminal (a dropped SSH session) sends: the run stops as for Ctrl-C.
//! A run started with SIGHUP ignored (`nohup runbook run …`) keeps it ignored and goes on when
//! its terminal goes away, its output only in the logs (the reporter stops writing to a terminal
//! that fails).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Installs the handlers (before any step starts: an early Ctrl-C must not kill the engine
/// outright and leave a step's process group running) and watches them in a task.
pub fn watch(cancel: CancellationToken, hurry: CancellationToken) {
    let hangup = if hangup_ignored() {
        None
    } else {
        signal(SignalKind::hangup()).ok()
    };
    if let (Ok(int), Ok(term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        tokio::spawn(escalate([Some(int), Some(term), hangup], cancel, hurry));
    }
}

/// Whether this process was started with SIGHUP ignored (`nohup`): a handler would undo that.
fn hangup_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        // SIGHUP is signal 1: the mask's lowest bit.
        .is_some_and(|mask| mask & 1 == 1)
}

async fn escalate(
    mut signals: [Option<Signal>; 3],
    cancel: CancellationToken,
    hurry: CancellationToken,
) {
    for token in [cancel, hurry] {
        any(&mut signals).await;
        token.cancel();
    }
    any(&mut signals).await;
    std::process::exit(130);
}

/// The next of these signals.
async fn any(signals: &mut [Option<Signal>; 3]) {
    let [int, term, hup] = signals;
    tokio::select! {
        () = next(int.as_mut()) => {}
        () = next(term.as_mut()) => {}
        () = next(hup.as_mut()) => {}
    }
}

/// The next delivery of a signal (never, for one not watched).
async fn next(signal: Option<&mut Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
