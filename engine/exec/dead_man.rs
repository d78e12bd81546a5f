//! A dead man's switch for steps' process groups: a small watcher process, started once per run,
//! that learns each step's process group when it starts and forgets it when it ends. When the
//! engine dies without stopping them (killed, or gone with its terminal), the watcher's end of
//! a pipe closes, and it stops every group it still knows: SIGTERM, then SIGKILL after the grace
//! period. A daemon a step starts on purpose in a session of its own (`setsid`) is not in the
//! step's group and is left alone, as when the engine stops a step itself.
//!
//! The watcher is a POSIX shell script rather than a thread: a thread dies with the engine.
//! It is in its own process group and ignores SIGHUP, SIGINT and SIGTERM, so what kills the
//! engine (a closed terminal, Ctrl-C) does not kill it first.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the watcher runs (`$0`: the grace period in seconds): `+PGID` and `-PGID` lines on
/// stdin; at their end, the groups left are stopped. `awk` reads the lines (buffered, a set kept
/// as an array): the shell's `read` takes a pipe one byte per system call, which cost a run as
/// much as its own bookkeeping; a shell loop remains for a system without `awk`.
const WATCHER: &str = r#"trap '' HUP INT TERM PIPE
if command -v awk >/dev/null 2>&1; then
  groups=$(awk '{ g = substr($0, 2) }
    /^[+]/ { left[g] = 1 }
    /^-/ { delete left[g] }
    END { for (g in left) print g }')
else
  groups=' '
  while read -r line; do
    g=${line#?}
    case $line in
      +*) groups="$groups$g " ;;
      -*) case $groups in *" $g "*) groups="${groups%% $g *} ${groups#* $g }" ;; esac ;;
    esac
  done
fi
set -- $groups
[ $# -eq 0 ] && exit 0
for g; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep "$0"
for g; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The engine's end of the watcher's pipe (closed when the engine exits, whatever the way).
#[derive(Debug)]
pub struct DeadMan {
    pipe: std::fs::File,
}

impl DeadMan {
    /// Starts the watcher; `grace`: between its SIGTERM and SIGKILL; `withheld`: the
    /// environment variables secrets were read from, not passed on to it. `None` when no shell
    /// can be started (the run goes on without the switch).
    pub fn start(grace: Duration, withheld: &[String]) -> Option<Self> {
        let grace = format!("{}.{:03}", grace.as_secs(), grace.subsec_millis());
        let mut watcher = Command::new("/bin/sh");
        super::secrets::withhold(&mut watcher, withheld);
        let mut child = watcher
            .args(["-c", WATCHER, &grace])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        // The pipe's fd is close-on-exec: the processes of steps do not hold it open.
        let pipe = child.stdin.take()?;
        Some(Self {
            pipe: std::fs::File::from(std::os::fd::OwnedFd::from(pipe)),
        })
    }

    /// A step's process group started.
    pub fn watch(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// A step's process group is no longer the run's concern (its command ended or was stopped).
    pub fn release(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// One write of a short line: atomic on a pipe, so steps can send at once without a lock.
    fn send(&self, line: &str) {
        // A watcher that is gone only means the switch is off.
        let _ = (&self.pipe).write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(pgid: u32) -> bool {
        let pgid = i32::try_from(pgid).unwrap_or(i32::MAX);
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
    }

    /// A process group `sh -c SCRIPT` leads.
    fn start(script: &str) -> std::process::Child {
        Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .expect("sh starts")
    }

    fn wait_gone(child: &mut std::process::Child) -> bool {
        let pgid = child.id();
        for _ in 0..300 {
            let _ = child.try_wait();
            if !group(pgid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn the_groups_it_watches_are_stopped_when_the_engine_end_closes() {
        let dead_man = DeadMan::start(Duration::from_millis(200), &[]).expect("a watcher");
        let mut stubborn = start("trap '' TERM; sleep 30 & wait");
        let mut released = start("sleep 30");
        let mut polite = start("sleep 30");
        for child in [&stubborn, &released, &polite] {
            dead_man.watch(i32::try_from(child.id()).expect("a pid"));
        }
        dead_man.release(i32::try_from(released.id()).expect("a pid"));
        drop(dead_man);
        assert!(wait_gone(&mut polite), "SIGTERM stops a group");
        assert!(
            wait_gone(&mut stubborn),
            "SIGKILL follows after the grace period"
        );
        assert!(group(released.id()), "a released group is left alone");
        let _ = released.kill();
        let _ = released.wait();
    }
}
