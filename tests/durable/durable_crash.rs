//! Crash consistency: a run killed (SIGKILL) at random moments, resumed until it finishes, does
//! every step, never repeats a step the journal had settled, repeats an idempotent step only
//! if it was in flight at a kill, and never repeats a step that is not idempotent (its `check`
//! decides).
//!
//! Each trial writes the same ~50-step runbook (parallel groups through `needs`, a `for_each`
//! known when planning, a fan-out over an earlier step's output, non-idempotent steps with a
//! `check`) whose steps append their id to a trace file and then sleep a few milliseconds, so
//! kills land mid-step. It then loops: `runbook run --run-id X --yes` (or `runbook resume X
//! --yes` once the run's folder exists), SIGKILL after a random 0–400 ms, until a process exits
//! 0. After every kill the test waits for the steps the dead engine left behind, then notes
//! what the journal says (settled, in flight) and how long the trace is.
//!
//! The RNG is seeded (a small xorshift), so a failing trial can be replayed. At least 50 trials
//! run in CI; for a long soak:
//!
//! ```sh
//! RUNBOOK_CRASH_TRIALS=1000 cargo test --release --test durable durable_crash::
//! RUNBOOK_CRASH_SEED=12345 RUNBOOK_CRASH_TRIALS=1 cargo test --test durable durable_crash::   # replay one
//! ```
//! (`RUNBOOK_CRASH_THREADS`, default 2, sets how many trials run at once.)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::durable_support::{Background, journal, kind, run_dir, show};
use crate::run_support::{Sandbox, processes_gone};

/// xorshift64*: tiny, deterministic, good enough to place kills.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The runbook of a trial, and the ids its steps write to the trace.
struct Book {
    yaml: String,
    /// Every id a step appends to the trace (the journal's ids of the nodes that run commands).
    traced: Vec<String>,
    /// Steps that are not idempotent (they have a `check`): must appear exactly once.
    once: Vec<String>,
}

/// `sleep` for 0–30 ms.
fn nap(rng: &mut Rng) -> String {
    format!("sleep 0.{:03}", rng.below(31))
}

/// Builds the trial's runbook; each step's sleep (0–30 ms) comes from `rng`.
fn book(rng: &mut Rng, trace: &str) -> Book {
    let mut yaml = String::from("name: crash\ndefaults: { max_parallel: 4 }\nsteps:\n");
    let mut traced = Vec::new();
    let mut once = Vec::new();
    let step = |yaml: &mut String, rng: &mut Rng, id: &str, needs: Option<&[&str]>| {
        let _ = write!(
            yaml,
            "  - id: {id}\n    run: \"echo {id} >> {trace}; {}\"\n",
            nap(rng)
        );
        if let Some(needs) = needs {
            let _ = writeln!(yaml, "    needs: [{}]", needs.join(", "));
        }
    };
    step(&mut yaml, rng, "s00", None);
    traced.push("s00".to_owned());
    // A parallel group, then a join.
    let group: Vec<String> = (1..=6).map(|i| format!("p{i}")).collect();
    for id in &group {
        step(&mut yaml, rng, id, Some(&["s00"]));
        traced.push(id.clone());
    }
    let refs: Vec<&str> = group.iter().map(String::as_str).collect();
    step(&mut yaml, rng, "join1", Some(&refs));
    traced.push("join1".to_owned());
    // A for_each known when planning: one node per item, `fe[0]` … `fe[7]`.
    let _ = write!(
        yaml,
        "  - id: fe\n    for_each: \"{{{{ range(8) | list }}}}\"\n    run: \"echo 'fe[{{{{ item }}}}]' >> {trace}; {}\"\n",
        nap(rng)
    );
    traced.extend((0..8).map(|i| format!("fe[{i}]")));
    // A fan-out over an earlier step's output, expanded at run time: `fan[0]` … `fan[5]`.
    let _ = write!(
        yaml,
        "  - id: list\n    run: \"echo list >> {trace}; {}; echo '[0, 1, 2, 3, 4, 5]'\"\n    outputs:\n      items: \"{{{{ result.json }}}}\"\n",
        nap(rng)
    );
    traced.push("list".to_owned());
    let _ = write!(
        yaml,
        "  - id: fan\n    for_each: steps.list.outputs.items\n    max_parallel: 3\n    run: \"echo 'fan[{{{{ item }}}}]' >> {trace}; {}\"\n",
        nap(rng)
    );
    traced.extend((0..6).map(|i| format!("fan[{i}]")));
    // A chain, with three steps that must never run twice: not idempotent, with a check.
    for i in 1..=20 {
        let id = format!("c{i:02}");
        step(&mut yaml, rng, &id, None);
        traced.push(id.clone());
        if i % 7 == 0 {
            let x = format!("x{i}");
            let _ = write!(
                yaml,
                "  - id: {x}\n    idempotent: false\n    check: {{ run: \"grep -qxF {x} {trace}\" }}\n    run: \"echo {x} >> {trace}; {}\"\n",
                nap(rng)
            );
            traced.push(x.clone());
            once.push(x);
        }
    }
    // A second parallel group off the middle of the chain, joined with the chain's end.
    let group: Vec<String> = (1..=5).map(|i| format!("q{i}")).collect();
    for id in &group {
        step(&mut yaml, rng, id, Some(&["c10"]));
        traced.push(id.clone());
    }
    let mut refs: Vec<&str> = group.iter().map(String::as_str).collect();
    refs.push("c20");
    step(&mut yaml, rng, "join2", Some(&refs));
    traced.push("join2".to_owned());
    let _ = write!(
        yaml,
        "finally:\n  - id: fin\n    run: \"echo fin >> {trace}\"\n"
    );
    Book { yaml, traced, once }
}

/// What the journal and the trace said right after one kill.
struct AfterKill {
    /// Trace lines written before the kill (and by the steps it left behind).
    trace_len: usize,
    /// Steps with a `step_finished` record: never to run again.
    settled: BTreeSet<String>,
    /// Steps started and not finished.
    in_flight: BTreeSet<String>,
    /// The journal already recorded the run's end: a later resume has nothing left to do.
    finished: bool,
}

fn snapshot(sb: &Sandbox, trace: &str) -> AfterKill {
    let records = journal(sb, "X");
    let mut last: BTreeMap<String, &str> = BTreeMap::new();
    for r in &records {
        if let (k @ ("step_started" | "step_finished"), Some(id)) = (kind(r), r["id"].as_str()) {
            if k == "step_finished" {
                assert!(
                    matches!(r["status"].as_str(), Some("succeeded" | "skipped")),
                    "no step of this runbook fails: {r}"
                );
            }
            last.insert(id.to_owned(), k);
        }
    }
    let finished = records
        .iter()
        .any(|r| kind(r) == "run_finished" && r["status"] == "succeeded");
    AfterKill {
        finished,
        trace_len: std::fs::read_to_string(trace)
            .unwrap_or_default()
            .lines()
            .count(),
        settled: last
            .iter()
            .filter(|(_, k)| **k == "step_finished")
            .map(|(id, _)| id.clone())
            .collect(),
        in_flight: last
            .iter()
            .filter(|(_, k)| **k == "step_started")
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// What a trial went through.
#[derive(Debug, Default)]
struct Tally {
    processes: usize,
    /// Kills that left a step in flight.
    mid_step: usize,
    /// Steps that ran twice (allowed: in flight at a kill, idempotent).
    repeated: usize,
    /// Non-idempotent steps in flight at a kill (their check kept them from running twice).
    checked: usize,
}

/// One trial; returns what it went through, or what went wrong.
#[expect(
    clippy::too_many_lines,
    reason = "one trial: kill until the run finishes, then every check of what it did"
)]
fn trial(seed: u64) -> Result<Tally, String> {
    let mut rng = Rng::new(seed);
    let sb = Sandbox::new();
    let trace = sb.join("trace").display().to_string();
    let book = book(&mut rng, &trace);
    sb.runbook(&book.yaml);
    let marker = sb.path().display().to_string();
    let mut kills: Vec<AfterKill> = Vec::new();
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > 300 || started.elapsed() > Duration::from_mins(4) {
            return Err(format!(
                "seed {seed}: no process finished the run after {attempt} tries"
            ));
        }
        let exists = run_dir(&sb, "X").join("meta.json").is_file();
        let args: Vec<&str> = if exists {
            vec!["resume", "X", "--yes", "--no-progress"]
        } else {
            vec![
                "run",
                "runbook.yaml",
                "--run-id",
                "X",
                "--yes",
                "--no-progress",
            ]
        };
        let mut bg = Background::start(&sb, &format!("p{attempt}"), &args);
        let deadline = Instant::now() + Duration::from_millis(rng.below(401));
        while Instant::now() < deadline && bg.try_wait().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        // SIGKILL, unless it already ended.
        let run = bg.kill();
        if run.code == 0 {
            break;
        }
        if run.code != 128 + 9 {
            return Err(format!(
                "seed {seed}: process {attempt} ({}) exited {} without being killed\n--- stdout\n{}\n--- stderr\n{}",
                args[0], run.code, run.stdout, run.stderr
            ));
        }
        // The dead engine's steps run on (their own process groups); let them finish so that
        // what they append is counted before the next process starts.
        let left = processes_gone(&marker, Duration::from_secs(10));
        if !left.is_empty() {
            return Err(format!("seed {seed}: steps still running: {left:?}"));
        }
        kills.push(snapshot(&sb, &trace));
    }
    let trace_lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let count = |id: &str| trace_lines.iter().filter(|l| *l == id).count();
    let mut problems = Vec::new();
    for id in &book.traced {
        let n = count(id);
        let was_in_flight = kills.iter().filter(|k| k.in_flight.contains(id)).count();
        if n == 0 {
            problems.push(format!("{id} never ran"));
        } else if n > 1 + was_in_flight {
            problems.push(format!(
                "{id} ran {n} times but was in flight at only {was_in_flight} kill(s)"
            ));
        }
        if book.once.contains(id) && n != 1 {
            problems.push(format!("{id} is not idempotent and ran {n} times"));
        }
        for (k, after) in kills.iter().enumerate() {
            if after.settled.contains(id) && trace_lines[after.trace_len..].contains(id) {
                problems.push(format!("{id} was settled at kill {} and ran again", k + 1));
                break;
            }
        }
    }
    // `finally` ran in the process that finished the run: after the last kill, or before it
    // when that kill came once the run's end was already recorded (the resume then did nothing)
    // or once `fin` itself was recorded finished (a settled step is never run again).
    let last = kills
        .iter()
        .rev()
        .find(|k| !k.finished && !k.settled.contains("fin"))
        .map_or(0, |k| k.trace_len);
    if !trace_lines[last..].iter().any(|l| l == "fin") {
        problems.push("`finally` did not run in the process that finished the run".to_owned());
    }
    let shown = show(&sb, "X");
    if shown["status"] != "succeeded" {
        problems.push(format!("the run is {}, not succeeded", shown["status"]));
    }
    for s in shown["steps"].as_array().into_iter().flatten() {
        if s["status"] != "succeeded" {
            problems.push(format!("step {} is {}", s["id"], s["status"]));
        }
    }
    if problems.is_empty() {
        Ok(Tally {
            processes: attempt,
            mid_step: kills.iter().filter(|k| !k.in_flight.is_empty()).count(),
            repeated: book.traced.iter().filter(|id| count(id) > 1).count(),
            checked: kills
                .iter()
                .map(|k| {
                    book.once
                        .iter()
                        .filter(|x| k.in_flight.contains(*x))
                        .count()
                })
                .sum(),
        })
    } else {
        Err(format!(
            "seed {seed} ({} kills):\n  {}\n--- trace\n{}\n--- journal\n{}",
            kills.len(),
            problems.join("\n  "),
            trace_lines.join(" "),
            std::fs::read_to_string(run_dir(&sb, "X").join("journal.jsonl")).unwrap_or_default()
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
fn killed_at_random_moments_a_run_resumes_to_the_end_without_repeating_settled_steps() {
    let trials = env_number("RUNBOOK_CRASH_TRIALS", 50);
    let base = env_number("RUNBOOK_CRASH_SEED", 0x5EED);
    let threads = env_number("RUNBOOK_CRASH_THREADS", 2).max(1);
    let next = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= trials {
                            return out;
                        }
                        out.push(trial(base.wrapping_add(i)));
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
    let mut tally = Tally::default();
    for t in results.iter().filter_map(|r| r.as_ref().ok()) {
        tally.processes += t.processes;
        tally.mid_step += t.mid_step;
        tally.repeated += t.repeated;
        tally.checked += t.checked;
    }
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
    // Kills must actually have landed: far more processes than trials.
    assert!(
        tally.mid_step as u64 >= trials,
        "only {} kills landed mid-step in {trials} trials: too few to test anything ({tally:?})",
        tally.mid_step
    );
    eprintln!("{trials} trials: {tally:?}");
}
