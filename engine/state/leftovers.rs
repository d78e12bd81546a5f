//! Processes a dead engine left behind: a step's process group outlives a `kill -9` of the
//! engine. A resume must not start a step again while its previous attempt still runs, so it
//! looks for them first (every command carries `RUNBOOK_RUN_ID` in its environment).

use std::fs;

/// A process still running for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Its pid.
    pub pid: i32,
    /// Its process group (stop it with `kill -TERM -<pgid>`).
    pub pgid: i32,
    /// The step that started it.
    pub step: String,
    /// Its command line.
    pub command: String,
}

/// The run's leftover processes after waiting up to `patience` for them to end.
pub fn wait(run_id: &str, patience: std::time::Duration) -> Vec<Leftover> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let found = find(run_id);
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every live process (not a zombie) whose environment names this run.
pub fn find(run_id: &str) -> Vec<Leftover> {
    let marker = format!("{}={run_id}", crate::exec::step::command::RUN_ID_VAR);
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if u32::try_from(pid).ok() == Some(me) {
            continue;
        }
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if !vars.contains(&marker.as_bytes()) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold spaces, so read after its `)`.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace())
            .into_iter()
            .flatten();
        let state = fields.next().unwrap_or("?");
        let pgid = fields.nth(1).and_then(|p| p.parse().ok()).unwrap_or(pid);
        if state == "Z" || state == "X" {
            continue;
        }
        let step = vars
            .iter()
            .find_map(|v| v.strip_prefix(b"RUNBOOK_STEP="))
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        let command = fs::read(entry.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        found.push(Leftover {
            pid,
            pgid,
            step,
            command,
        });
    }
    found.sort_by_key(|l| l.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_process_carrying_the_run_id_and_ignores_others() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(crate::exec::step::command::RUN_ID_VAR, "leftover-test-run")
            .env("RUNBOOK_STEP", "wait_a_bit")
            .spawn()
            .expect("sleep starts");
        let found = find("leftover-test-run");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].step, "wait_a_bit");
        assert!(found[0].command.starts_with("sleep 30"), "{found:?}");
        assert!(find("no-such-run").is_empty());
    }
}
