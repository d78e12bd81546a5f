//! Kill-and-resume drills: the `PostgreSQL`, `ZooKeeper` and ssh/S3 drills (see
//! `drill_postgres`, `drill_zookeeper`, `drill_deis_store`) stopped in the middle, after their
//! destructive step, then continued with `runbook resume ID --yes --approve-all`. The end state
//! must be the one an uninterrupted run of the same drill leaves (each test runs one first, in a
//! folder of its own), no step the journal had settled may run again (its
//! `step_started` records, its log and the resume's output say so), and the resumed run must end
//! `succeeded` in `runbook show ID --format json`.
//!
//! - `PostgreSQL`: SIGKILL as soon as the journal records `restore.wipe_data_dir` finished (the
//!   data directory is gone). Then resumes are killed too, each as soon as it starts initdb (so
//!   that its `check` decides in the next resume) and the start of `PostgreSQL` (which the next
//!   resume repeats), unless an earlier kill caught that step in flight. Every table's row count
//!   and checksum compared; the replay (not idempotent) ran once.
//! - `ZooKeeper`: SIGKILL as soon as the journal records `wipe_data` finished (`start_fresh`
//!   starting); every znode and value compared.
//! - ssh/S3: SIGINT (Ctrl-C: exit 130, run `interrupted`) as soon as `restore.sync_db_wal[1]`
//!   has uploaded the first of its 4 WAL segments to the new S3 gateway; every object, every store
//!   file and every deisctl call compared.
//!
//! An engine killed with SIGKILL does not stop its steps (each runs in a process group of its
//! own; a remote one under sshd): they go on, and die at their next write to the engine's closed
//! pipes, or finish. The tests wait for them to be gone before resuming, as
//! `tests/durable/durable_crash.rs` does: a resume racing the dead engine's steps is not tested here.
//! Every test ends by stopping the drill's services and failing on any process of the drill left
//! (a service started twice by a repeated step, for one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::durable_support::{Background, groups_gone, journal, kind, run_dir, show};
use crate::run_support::{Run, free_port};
use crate::support::{
    Drill, RUN_LIMIT, deis_database_setup, deis_store_setup, drills, nuvla_zk_params,
    run_args_with_id, zk_tree,
};
use serde_json::Value;

/// The id of every interrupted run.
const ID: &str = "resume-drill";

/// Whether the journal records step `id` as finished with `succeeded`.
fn succeeded(records: &[Value], id: &str) -> bool {
    records
        .iter()
        .any(|r| kind(r) == "step_finished" && r["id"] == id && r["status"] == "succeeded")
}

/// How many `step_started` records each step has.
fn starts(records: &[Value]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in records.iter().filter(|r| kind(r) == "step_started") {
        *n.entry(r["id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    n
}

/// What the journal said when the engine stopped.
struct AtStop {
    /// Steps whose latest record is a `succeeded` or `skipped` finish: never to run again.
    settled: Vec<String>,
    /// Steps started and not finished.
    in_flight: Vec<String>,
    /// `step_started` records per step.
    starts: BTreeMap<String, usize>,
    /// Every step log, as it was.
    logs: BTreeMap<String, String>,
}

impl AtStop {
    /// Whether step `id` was settled when the engine stopped.
    fn has_settled(&self, id: &str) -> bool {
        self.settled.iter().any(|s| s == id)
    }

    /// Panics unless each of these steps was settled when the engine stopped.
    #[track_caller]
    fn expect_settled(&self, ids: &[&str]) {
        for id in ids {
            assert!(self.has_settled(id), "{id} settled: {:?}", self.settled);
        }
    }
}

fn logs(d: &Drill) -> BTreeMap<String, String> {
    let mut logs = BTreeMap::new();
    for entry in std::fs::read_dir(run_dir(d.sandbox(), ID).join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        logs.insert(
            name,
            std::fs::read_to_string(entry.path()).unwrap_or_default(),
        );
    }
    logs
}

fn at_stop(d: &Drill) -> AtStop {
    let records = journal(d.sandbox(), ID);
    let mut last: BTreeMap<String, &Value> = BTreeMap::new();
    for r in &records {
        if matches!(kind(r), "step_started" | "step_finished") {
            last.insert(r["id"].as_str().unwrap_or_default().to_owned(), r);
        }
    }
    AtStop {
        settled: last
            .iter()
            .filter(|(_, r)| {
                kind(r) == "step_finished"
                    && matches!(r["status"].as_str(), Some("succeeded" | "skipped"))
            })
            .map(|(id, _)| id.clone())
            .collect(),
        in_flight: last
            .iter()
            .filter(|(_, r)| kind(r) == "step_started")
            .map(|(id, _)| id.clone())
            .collect(),
        starts: starts(&records),
        logs: logs(d),
    }
}

/// Starts `runbook ARGS…` in the drill's folder, in the background; `name` names its output files.
fn spawn(d: &Drill, name: &str, args: &[String]) -> Background {
    Background::spawn(d.runbook(args), d.root(), name)
}

/// SIGKILLs the engine (as a crash would), waits for the steps it left behind to end, and notes
/// what the journal says then.
fn kill(d: &Drill, engine: Background) -> (AtStop, Run) {
    let killed = engine.crash();
    assert_eq!(
        killed.run.code, 137,
        "--- stdout\n{}\n--- stderr\n{}",
        killed.run.stdout, killed.run.stderr
    );
    let left = groups_gone(&killed.step_groups, Duration::from_mins(1));
    assert!(
        left.is_empty(),
        "the killed engine's steps still run: {left:?}"
    );
    (at_stop(d), killed.run)
}

/// `runbook resume ID --yes --approve-all`, to the end; then checks that no step settled at any of the
/// `stops` ran again (the journal's `step_started` records, the step logs, the resume's output)
/// and that `show` reports the run and every step done.
fn resume_and_check(d: &Drill, stops: &[&AtStop]) -> Run {
    let resumed = d.run_args(&resume_args());
    resumed.expect_code(0);

    let after = starts(&journal(d.sandbox(), ID));
    let logs_after = logs(d);
    for stop in stops {
        for id in &stop.settled {
            assert_eq!(
                after.get(id),
                stop.starts.get(id),
                "{id} was settled when the engine stopped and started again\n{}",
                resumed.stdout
            );
            // A call (`dump` for `dump.*`) runs nothing itself: a resume records it finished
            // again once its steps are (a second `step_finished`, a second line in its log).
            if stop
                .settled
                .iter()
                .any(|other| other.starts_with(&format!("{id}.")))
            {
                continue;
            }
            let log = format!("{id}.log");
            assert_eq!(
                logs_after.get(&log),
                stop.logs.get(&log),
                "the log of {id}, settled when the engine stopped, changed after"
            );
            assert!(
                resumed.printed(id).is_empty(),
                "{id} printed in the resume\n{}",
                resumed.stdout
            );
        }
    }

    let shown = show(d.sandbox(), ID);
    assert_eq!(shown["status"], "succeeded", "{shown:#}");
    for s in shown["steps"].as_array().expect("steps") {
        assert!(
            matches!(s["status"].as_str(), Some("succeeded" | "skipped")),
            "step {} is {}\n{shown:#}",
            s["id"],
            s["status"]
        );
    }
    resumed
}

/// Stops the drill's services now and fails on any process of the drill still there.
#[track_caller]
fn expect_no_leftovers(d: &Drill) {
    let left = d.stop_all_leftovers();
    assert!(
        left.is_empty(),
        "processes of the drill left after stopping its services: {left:?}"
    );
}

fn resume_args() -> Vec<String> {
    ["resume", ID, "--yes", "--approve-all", "--no-progress"]
        .map(str::to_owned)
        .to_vec()
}

/// A step's status in `show --format json`.
fn shown_status(shown: &Value, id: &str) -> String {
    shown["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .map_or_else(|| "absent".to_owned(), |s| s["status"].to_string())
}

// --- PostgreSQL ------------------------------------------------------------------------------

/// `table|rows|md5 of every row` of every Deis table, read with psql after the run.
fn pg_tables(port: u16) -> String {
    let mut all = String::new();
    for t in ["auth_user", "api_app", "api_release", "api_key"] {
        let out = std::process::Command::new("psql")
            .args(["-X", "-At", "-h", "127.0.0.1", "-U", "postgres", "-d", "deis", "-p"])
            .arg(port.to_string())
            .arg("-c")
            .arg(format!(
                "SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
            ))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one drill: run, kills at three moments, resume, then every table compared"
)]
fn postgres_drill_killed_after_the_wipe_resumes_to_the_same_data() {
    let file = drills().join("deis-database.yaml").display().to_string();
    let clock = Instant::now();

    // The uninterrupted run, for its end state.
    let expected = {
        let mut base = Drill::new("resume-pg-base");
        let (params, port) = deis_database_setup(&mut base);
        base.run(&file, &params).expect_code(0);
        pg_tables(port)
    };
    let baseline = clock.elapsed();
    assert_eq!(
        expected
            .lines()
            .map(|l| l.rsplit_once('|').map_or(l, |(a, _)| a))
            .collect::<Vec<_>>(),
        [
            "auth_user|50",
            "api_app|200",
            "api_release|2000",
            "api_key|120"
        ],
        "{expected}"
    );

    // The same drill, killed as soon as the data directory is gone.
    let mut d = Drill::new("resume-pg");
    let (params, port) = deis_database_setup(&mut d);
    let mut engine = spawn(&d, "run", &run_args_with_id(&file, ID, &params));
    engine.wait_until("the wipe finished", RUN_LIMIT, || {
        succeeded(&journal(d.sandbox(), ID), "restore.wipe_data_dir")
    });
    let (first, killed) = kill(&d, engine);
    first.expect_settled(&[
        "dump.fetch_dump",
        "restore.stop_database",
        "restore.wipe_data_dir",
    ]);
    assert!(
        !first.has_settled("restore.restore_dump"),
        "the kill came before the replay: {:?}",
        first.settled
    );
    // Then the resumes are killed too, each as soon as it starts the next of these steps (unless
    // a kill already caught it in flight): initdb, whose `check` then decides, and the start of
    // PostgreSQL, which the last resume repeats.
    let mut stops = vec![first];
    let mut kills = vec![(killed.elapsed, stops[0].in_flight.clone())];
    for target in ["restore.init_cluster", "restore.start_database"] {
        let last = &stops[stops.len() - 1];
        if last
            .in_flight
            .iter()
            .chain(&last.settled)
            .any(|s| s == target)
        {
            continue;
        }
        let mut engine = spawn(
            &d,
            &format!("resume-killed-{}", stops.len()),
            &resume_args(),
        );
        engine.wait_until(&format!("{target} started"), RUN_LIMIT, || {
            starts(&journal(d.sandbox(), ID)).contains_key(target)
        });
        let (stop, killed) = kill(&d, engine);
        assert!(
            stop.in_flight.iter().any(|s| s == target),
            "{target} in flight: {:?}",
            stop.in_flight
        );
        kills.push((killed.elapsed, stop.in_flight.clone()));
        stops.push(stop);
    }

    let resumed = resume_and_check(&d, &stops.iter().collect::<Vec<_>>());
    let tables = pg_tables(port);
    assert_eq!(
        tables, expected,
        "the resumed run's data differ from the uninterrupted run's"
    );
    assert_eq!(
        resumed.printed("restore.verify_row_counts"),
        ["4 tables checked, 0 differ"],
        "{}",
        resumed.stdout
    );
    // `same_data`: the tables after the restore are the ones fingerprinted before the dump (in
    // the first process).
    let shown = show(d.sandbox(), ID);
    assert_eq!(shown_status(&shown, "same_data"), "\"succeeded\"");
    expect_no_leftovers(&d);
    eprintln!(
        "postgres: uninterrupted {baseline:.1?}; kills (after, in flight): {kills:?}; last resume {:.1?}; test {:.1?}",
        resumed.elapsed,
        clock.elapsed()
    );
    // The replay is not idempotent (and has no check): it ran once, whatever the kills.
    let records = journal(d.sandbox(), ID);
    let started = starts(&records);
    assert_eq!(started.get("restore.restore_dump"), Some(&1));
    // How the resume decided about initdb, in flight at a kill: its check found the cluster the
    // killed initdb made (one start), or found none and initdb ran again (two).
    let init_finish = records
        .iter()
        .rev()
        .find(|r| kind(r) == "step_finished" && r["id"] == "restore.init_cluster")
        .map(|r| r["reason"].as_str().unwrap_or("ran").to_owned());
    eprintln!(
        "postgres: initdb started {:?} time(s), finished: {init_finish:?}",
        started.get("restore.init_cluster")
    );
    eprintln!("--- resume\n{}", resumed.stdout);
}

// --- ZooKeeper -------------------------------------------------------------------------------

#[test]
fn zookeeper_drill_killed_after_the_wipe_resumes_to_the_same_tree() {
    let file = drills().join("nuvla-zk.yaml").display().to_string();
    let clock = Instant::now();

    let expected = {
        let base = Drill::new("resume-zk-base");
        let port = free_port();
        base.run(&file, &nuvla_zk_params(&base, port))
            .expect_code(0);
        zk_tree(port)
    };
    let baseline = clock.elapsed();
    assert!(expected.contains("\"/job/entries/entry-"), "{expected}");

    let d = Drill::new("resume-zk");
    let port = free_port();
    let mut engine = spawn(
        &d,
        "killed",
        &run_args_with_id(&file, ID, &nuvla_zk_params(&d, port)),
    );
    engine.wait_until("the wipe finished", RUN_LIMIT, || {
        succeeded(&journal(d.sandbox(), ID), "wipe_data")
    });
    let (stop, killed) = kill(&d, engine);
    stop.expect_settled(&["populate", "export", "stop_zookeeper", "wipe_data"]);
    assert!(
        !stop.has_settled("rebuild.restore_jobs"),
        "the kill came before the rebuild: {:?}",
        stop.settled
    );

    let resumed = resume_and_check(&d, &[&stop]);
    // Exactly one rebuild, into an empty ZooKeeper (a second one would queue every job twice).
    assert_eq!(
        resumed.printed("rebuild.restore_jobs"),
        [format!(
            "Re-created 46 znodes (0 already present) on 127.0.0.1:{port}"
        )],
        "{}",
        resumed.stdout
    );
    assert_eq!(
        starts(&journal(d.sandbox(), ID)).get("rebuild.restore_jobs"),
        Some(&1)
    );
    assert_eq!(
        resumed.printed("verify_with_zkcli"),
        ["zkCli: 46 znodes, every value as populated"]
    );
    let tree = zk_tree(port);
    assert_eq!(
        tree, expected,
        "the resumed run's tree differs from the uninterrupted run's"
    );
    assert_eq!(
        tree,
        d.read("export.json"),
        "the tree is the export taken before the wipe"
    );
    // The ZooKeeper serving is the one the drill knows and stops: the `start_fresh` the resume
    // repeated did not start a second one over it and lose track of the first.
    expect_no_leftovers(&d);
    eprintln!(
        "zookeeper: uninterrupted {baseline:.1?}; killed after {:.1?} with {:?} in flight; resume {:.1?}; test {:.1?}",
        killed.elapsed,
        stop.in_flight,
        resumed.elapsed,
        clock.elapsed()
    );
    eprintln!("--- resume\n{}", resumed.stdout);
}

// --- ssh/S3 (Deis store) ---------------------------------------------------------------------

/// The new cluster's objects (`size key`), its store (without times: the seed writes the files
/// at run time, and random bytes, so sizes and keys are what two runs share), and the calls made
/// to its deisctl.
fn store_end_state(d: &Drill) -> (String, String, String) {
    let store = d
        .read("verify/new-store.listing")
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split(' ').collect();
            // `type mode owner size time path [link]`: drop the time.
            cols.iter()
                .enumerate()
                .filter(|&(i, _)| i != 4)
                .map(|(_, c)| *c)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        d.read("verify/new-db_wal.listing") + &d.read("verify/new-registry.listing"),
        store,
        d.read("new-cluster.json.log"),
    )
}

#[test]
fn deis_store_drill_interrupted_mid_upload_resumes_to_the_same_buckets() {
    let file = drills().join("deis-store.yaml").display().to_string();
    let clock = Instant::now();

    let expected = {
        let mut base = Drill::new("resume-store-base");
        let params = deis_store_setup(&mut base);
        base.run(&file, &params).expect_code(0);
        store_end_state(&base)
    };
    let baseline = clock.elapsed();
    assert_eq!(expected.0.lines().count(), 10, "{}", expected.0);

    let mut d = Drill::new("resume-store");
    let params = deis_store_setup(&mut d);
    let mut engine = spawn(&d, "interrupted", &run_args_with_id(&file, ID, &params));
    // In the middle of the upload of the 4 WAL segments: as soon as s3cmd reports the first.
    let step = "restore.sync_db_wal[1]";
    let log = run_dir(d.sandbox(), ID).join(format!("logs/{step}.log"));
    engine.wait_until("the upload started", RUN_LIMIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("upload:"))
    });
    engine.signal(nix::sys::signal::Signal::SIGINT);
    let interrupted = engine.wait(RUN_LIMIT);
    let uploaded = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("upload:")
        .count();
    assert_eq!(
        interrupted.code, 130,
        "--- stdout\n{}\n--- stderr\n{}",
        interrupted.stdout, interrupted.stderr
    );
    let stop = at_stop(&d);
    let shown = show(d.sandbox(), ID);
    assert_eq!(shown["status"], "interrupted", "{shown:#}");
    assert!(
        !stop.has_settled(step),
        "the interrupt came after {step}: {:?}",
        stop.settled
    );
    stop.expect_settled(&[
        "backup.fetch_store_tarball",
        "restore.configure_s3cmd",
        "restore.make_db_wal_bucket",
    ]);

    let resumed = resume_and_check(&d, &[&stop]);
    let got = store_end_state(&d);
    assert_eq!(
        got.0, expected.0,
        "the new cluster's objects differ from the uninterrupted run's"
    );
    assert_eq!(
        got.1, expected.1,
        "the new store differs from the uninterrupted run's"
    );
    assert_eq!(
        got.2, expected.2,
        "the calls to the new cluster's deisctl differ from the uninterrupted run's"
    );
    expect_no_leftovers(&d);
    eprintln!(
        "deis store: uninterrupted {baseline:.1?}; interrupted after {:.1?} ({} at {step}, {uploaded} of 4 uploads reported); resume {:.1?}; test {:.1?}",
        interrupted.elapsed,
        shown_status(&shown, step),
        resumed.elapsed,
        clock.elapsed()
    );
    eprintln!(
        "--- interrupted\n{}\n--- resume\n{}",
        interrupted.stdout, resumed.stdout
    );
}
