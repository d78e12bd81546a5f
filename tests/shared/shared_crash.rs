//! Crash consistency with the `PostgreSQL` store: a 40-step run killed (SIGKILL) at random
//! moments and resumed until it finishes does every step, never runs again a step the database
//! had settled, and runs again only a step that was in flight at a kill.
//!
//! Each trial has its own folder and run id in one database; its steps append their id to a
//! trace file and sleep 0–30 ms. A trial loops: `run --run-id X` (or `resume X` once the
//! database has the run), SIGKILL after a random 0–500 ms, until a process exits 0; after each
//! kill it waits for the steps the dead engine left behind, then notes what the database's
//! journal says and how long the trace is. 20 trials run here; for more:
//!
//! ```sh
//! RUNBOOK_PG_CRASH_TRIALS=200 cargo test --release --test shared shared_crash::
//! ```
//! (`RUNBOOK_PG_CRASH_SEED` replays from a seed; `benches/shared.sh` runs 100.)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::durable_support::{Background, kind};
use crate::pg::{self, Cluster};
use crate::run_support::{Sandbox, processes_gone};

/// xorshift64*: tiny, deterministic, good enough to place kills.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The 40-step runbook of a trial (a chain, two parallel groups, a `finally`), and its ids.
fn book(rng: &mut Rng, trace: &str) -> (String, Vec<String>) {
    let mut yaml = String::from("name: crash\ndefaults: { max_parallel: 4 }\nsteps:\n");
    let mut ids = Vec::new();
    let mut step = |yaml: &mut String, id: &str, needs: &[String]| {
        let _ = write!(
            yaml,
            "  - id: {id}\n    run: \"echo {id} >> {trace}; sleep 0.{:03}\"\n",
            rng.below(31)
        );
        if !needs.is_empty() {
            let _ = writeln!(yaml, "    needs: [{}]", needs.join(", "));
        }
        ids.push(id.to_owned());
    };
    step(&mut yaml, "s00", &[]);
    let group: Vec<String> = (1..=6).map(|i| format!("p{i}")).collect();
    for id in &group {
        step(&mut yaml, id, &["s00".to_owned()]);
    }
    step(&mut yaml, "join1", &group);
    for i in 1..=25 {
        step(&mut yaml, &format!("c{i:02}"), &[]);
    }
    let group: Vec<String> = (1..=5).map(|i| format!("q{i}")).collect();
    for id in &group {
        step(&mut yaml, id, &["c10".to_owned()]);
    }
    let mut joined = group.clone();
    joined.push("c25".to_owned());
    step(&mut yaml, "join2", &joined);
    let _ = write!(
        yaml,
        "finally:\n  - id: fin\n    run: \"echo fin >> {trace}\"\n"
    );
    ids.push("fin".to_owned());
    assert_eq!(ids.len(), 40);
    (yaml, ids)
}

/// What the database's journal and the trace said right after one kill.
struct AfterKill {
    trace_len: usize,
    settled: BTreeSet<String>,
    in_flight: BTreeSet<String>,
    finished: bool,
}

fn snapshot(cluster: &Cluster, url: &str, run_id: &str, trace: &str) -> AfterKill {
    let records = pg::journal(cluster, url, run_id);
    let mut last: BTreeMap<String, &str> = BTreeMap::new();
    for r in &records {
        if let (k @ ("step_started" | "step_finished"), Some(id)) = (kind(r), r["id"].as_str()) {
            last.insert(id.to_owned(), k);
        }
    }
    let pick = |which: &str| -> BTreeSet<String> {
        last.iter()
            .filter(|(_, k)| **k == which)
            .map(|(id, _)| id.clone())
            .collect()
    };
    AfterKill {
        trace_len: std::fs::read_to_string(trace)
            .unwrap_or_default()
            .lines()
            .count(),
        settled: pick("step_finished"),
        in_flight: pick("step_started"),
        finished: records
            .iter()
            .any(|r| kind(r) == "run_finished" && r["status"] == "succeeded"),
    }
}

/// One trial; the number of kills that left a step in flight, or what went wrong.
fn trial(cluster: &Cluster, url: &str, seed: u64) -> Result<usize, String> {
    let mut rng = Rng::new(seed);
    let sb = Sandbox::new().env("RUNBOOK_STATE", url);
    let trace = sb.join("trace").display().to_string();
    let (yaml, ids) = book(&mut rng, &trace);
    sb.runbook(&yaml);
    let run_id = format!("crash-{seed}");
    let marker = sb.path().display().to_string();
    let mut kills: Vec<AfterKill> = Vec::new();
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > 200 || started.elapsed() > Duration::from_mins(4) {
            return Err(format!(
                "seed {seed}: no process finished the run after {attempt} tries"
            ));
        }
        let args: Vec<&str> = if pg::has_run(cluster, url, &run_id) {
            vec!["resume", &run_id, "--yes", "--no-progress"]
        } else {
            vec![
                "run",
                "runbook.yaml",
                "--run-id",
                &run_id,
                "--yes",
                "--no-progress",
            ]
        };
        let mut bg = Background::start(&sb, &format!("p{attempt}"), &args);
        let deadline = Instant::now() + Duration::from_millis(rng.below(501));
        while Instant::now() < deadline && bg.try_wait().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let run = bg.kill();
        if run.code == 0 {
            break;
        }
        if run.code != 128 + 9 {
            return Err(format!(
                "seed {seed}: process {attempt} ({}) exited {}\n--- stdout\n{}\n--- stderr\n{}",
                args[0], run.code, run.stdout, run.stderr
            ));
        }
        let left = processes_gone(&marker, Duration::from_secs(10));
        if !left.is_empty() {
            return Err(format!("seed {seed}: steps still running: {left:?}"));
        }
        kills.push(snapshot(cluster, url, &run_id, &trace));
    }
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut problems = Vec::new();
    for id in &ids {
        let n = lines.iter().filter(|l| *l == id).count();
        let in_flight = kills.iter().filter(|k| k.in_flight.contains(id)).count();
        if n == 0 {
            problems.push(format!("{id} never ran"));
        } else if n > 1 + in_flight {
            problems.push(format!(
                "{id} ran {n} times, in flight at {in_flight} kill(s)"
            ));
        }
        for (k, after) in kills.iter().enumerate() {
            if after.settled.contains(id) && lines[after.trace_len..].contains(id) {
                problems.push(format!("{id} was settled at kill {} and ran again", k + 1));
                break;
            }
        }
    }
    let last = kills
        .iter()
        .rev()
        .find(|k| !k.finished)
        .map_or(0, |k| k.trace_len);
    if !lines[last..].iter().any(|l| l == "fin") {
        problems.push("`finally` did not run in the process that finished the run".to_owned());
    }
    let shown = sb.cli(&["show", &run_id, "--format", "json"]);
    if !shown.stdout.contains("\"status\": \"succeeded\"") || shown.code != 0 {
        problems.push(format!("the run did not end succeeded: {}", shown.all()));
    }
    if sb.exists(".runbook") {
        problems.push("a local state dir was written".to_owned());
    }
    if problems.is_empty() {
        Ok(kills.iter().filter(|k| !k.in_flight.is_empty()).count())
    } else {
        Err(format!(
            "seed {seed} ({} kills):\n  {}\n--- trace\n{}",
            kills.len(),
            problems.join("\n  "),
            lines.join(" ")
        ))
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn killed_at_random_moments_a_run_kept_in_postgres_resumes_without_repeating_settled_steps() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let trials = env_number("RUNBOOK_PG_CRASH_TRIALS", 20);
    let base = env_number("RUNBOOK_PG_CRASH_SEED", 0x00C0_FFEE);
    let next = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= trials {
                            return out;
                        }
                        out.push(trial(cluster, &url, base.wrapping_add(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a trial thread does not panic"))
            .collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {trials} trials failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let mid_step: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    assert!(
        mid_step as u64 >= trials,
        "only {mid_step} kills landed mid-step in {trials} trials: too few to test anything"
    );
    eprintln!("{trials} trials, {mid_step} kills mid-step");
}
