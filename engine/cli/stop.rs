//! `runbook stop RUN_ID`: stops a run that another process drives (another terminal, a job on
//! this machine). That process gets SIGTERM and stops as at Ctrl-C: its steps' process groups
//! are stopped, and the run ends `interrupted`, to be resumed.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::args::StateArgs;
use super::error::CliError;
use crate::drive::Outcome;
use crate::state::identity;

/// How often `stop` looks whether the run has ended.
const POLL: Duration = Duration::from_millis(100);

/// What `stop` takes.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The run's id (`latest`, or the beginning of one id).
    #[arg(add = super::complete::run_ids())]
    pub run_id: String,
    /// How long to wait for the run to end (its steps get a grace period to stop).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::args::duration)]
    pub wait: Duration,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Signals the process that drives the run and waits for the run to end.
pub fn execute(args: &StopArgs) -> Result<Outcome, CliError> {
    let store = args.state.store()?;
    let run_id = store.resolve(&args.run_id)?;
    let Some(holder) = store.holder(&run_id)? else {
        let status = store.timeline(&run_id)?.status(false);
        return Err(CliError::NotRunning {
            run_id,
            status: status.as_str(),
        });
    };
    let unreachable = |why: String| CliError::Unreachable {
        run_id: run_id.clone(),
        holder: Box::new(holder.clone()),
        why,
    };
    let here = identity::host_name();
    if let (Some(theirs), Some(mine)) = (&holder.host, &here)
        && theirs != mine
    {
        return Err(unreachable(format!(
            "it runs on {theirs}, not on this machine ({mine}); stop it there"
        )));
    }
    let pid = i32::try_from(holder.pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| unreachable("it did not record its pid".to_owned()))?;
    eprintln!("stopping run {run_id} ({holder})");
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        // Gone already: its lease is released with it.
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(Errno::EPERM) => {
            return Err(unreachable(format!(
                "no permission to signal pid {pid}{}",
                holder
                    .user
                    .as_ref()
                    .map(|u| format!(" (it runs as {u})"))
                    .unwrap_or_default()
            )));
        }
        Err(e) => return Err(unreachable(format!("failed to signal pid {pid}: {e}"))),
    }
    let deadline = Instant::now() + args.wait;
    while store.holder(&run_id)?.is_some() {
        if Instant::now() >= deadline {
            return Err(CliError::StillRunning {
                run_id,
                waited: args.wait,
            });
        }
        std::thread::sleep(POLL);
    }
    let status = store.timeline(&run_id)?.status(false);
    println!(
        "run {run_id} stopped: {}; continue with: runbook resume {run_id}",
        status.as_str()
    );
    Ok(Outcome::Succeeded)
}
