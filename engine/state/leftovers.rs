//! Processes a dead engine left behind: a step's process group outlives a `kill -9` of the
//! engine. A resume must not start a step again while its previous attempt still runs, so it
//! looks for the process groups the journal says in-flight steps started. A daemon a step
//! started on purpose (`setsid`, its own group) is not a leftover. Every command carries
//! `RUNBOOK_RUN_ID` in its environment, which guards against a reused group id.

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

/// The leftover processes of these groups after waiting up to `patience` for them to end.
pub fn wait(run_id: &str, groups: &[i32], patience: std::time::Duration) -> Vec<Leftover> {
    if groups.is_empty() {
        return Vec::new();
    }
    let deadline = std::time::Instant::now() + patience;
    loop {
        let found = find(run_id, groups);
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every live process (not a zombie) of these process groups whose environment names this run.
pub fn find(run_id: &str, groups: &[i32]) -> Vec<Leftover> {
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
        if state == "Z" || state == "X" || !groups.contains(&pgid) {
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
    use std::os::unix::process::CommandExt as _;

    use super::*;

    #[test]
    fn finds_a_live_process_of_a_named_group_carrying_the_run_id() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(crate::exec::step::command::RUN_ID_VAR, "leftover-test-run")
            .env("RUNBOOK_STEP", "wait_a_bit")
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let group = i32::try_from(child.id()).expect("a pid fits");
        // The child shows its own environment only once it has exec'd.
        let found = wait_for(|| find("leftover-test-run", &[group]));
        let elsewhere = find("leftover-test-run", &[group + 1]);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].step, "wait_a_bit");
        assert!(found[0].command.starts_with("sleep 30"), "{found:?}");
        assert!(elsewhere.is_empty(), "another group is not a leftover");
        assert!(find("no-such-run", &[group]).is_empty());
    }

    fn wait_for(mut probe: impl FnMut() -> Vec<Leftover>) -> Vec<Leftover> {
        for _ in 0..100 {
            let found = probe();
            if !found.is_empty() {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Vec::new()
    }
}
