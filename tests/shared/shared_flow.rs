//! The team's flow: a run started on one machine is listed, shown, followed, approved and
//! resumed from another that has nothing of the first (not even the runbook file); one process
//! drives a run at a time, and the second is told who does; secrets never reach a table.

use std::time::Duration;

use serde_json::Value;

use crate::durable_support::{Background, step, wait_until};
use crate::pg::{self, Cluster};
use crate::run_support::{Run, Sandbox};

/// A value no table may ever hold.
const CANARY: &str = "canary-7f3a9e-never-stored";

/// `runbook ARGS…` on a machine, to completion.
fn on(machine: &Sandbox, args: &[&str]) -> Run {
    machine.cli(args)
}

/// `show ID --format json` on a machine.
#[track_caller]
fn show(machine: &Sandbox, id: &str) -> Value {
    let run = on(machine, &["show", id, "--format", "json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("show --format json is JSON")
}

/// The lines of a file that several machines append to (the services they act on).
fn trace(world: &Sandbox) -> Vec<String> {
    world.read("trace").lines().map(str::to_owned).collect()
}

fn handover(world: &Sandbox) -> String {
    let trace = world.join("trace").display().to_string();
    let go = world.join("go").display().to_string();
    format!(
        r#"name: handover
secrets:
  token: {{ env: SHARED_TOKEN }}
steps:
  - id: prepare
    run: "echo prepare >> {trace}; echo using {{{{ secrets.token }}}}"
  - id: copy
    needs: [prepare]
    run: "for i in 1 2 3; do echo chunk $i; sleep 0.1; done; while [ ! -e {go} ]; do sleep 0.05; done; echo copied; echo copy >> {trace}"
  - id: approve
    needs: [copy]
    manual: "Check the copy before the wipe"
  - id: wipe
    needs: [approve]
    run: "echo wipe >> {trace}; echo wiped with {{{{ secrets.token }}}}"
"#
    )
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one story, told in order: start, follow, pause, hand over, approve, resume, audit"
)]
fn a_run_started_on_one_machine_is_followed_approved_and_resumed_from_another() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let world = Sandbox::new();
    let alice = pg::machine("alice", &url).env("SHARED_TOKEN", CANARY);
    let bob = pg::machine("bob", &url).env("SHARED_TOKEN", CANARY);
    alice.runbook(&handover(&world));

    // An empty database: the tables are made on first use, and there is nothing to list.
    let empty = on(&bob, &["runs"]);
    empty.expect_code(0);
    assert!(
        empty.stdout.contains("no runs in postgres://"),
        "{}",
        empty.stdout
    );

    let mut started = Background::start(
        &alice,
        "alice",
        &["run", "runbook.yaml", "--run-id", "dr-1", "--no-progress"],
    );
    started.wait_until(
        "the copy prints its first chunk",
        Duration::from_secs(30),
        || {
            on(&bob, &["logs", "dr-1", "copy"])
                .stdout
                .contains("chunk 1")
        },
    );
    let listed = on(&bob, &["runs"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("dr-1") && l.contains("running")),
        "bob sees the run alice drives:\n{}",
        listed.stdout
    );
    // Bob follows the logs while alice's machine runs the step.
    let mut follow = Background::start(&bob, "follow", &["logs", "dr-1", "--follow"]);
    // Once it has printed what was logged so far, what comes next is streamed.
    follow.wait_until(
        "follow prints the logs so far",
        Duration::from_secs(30),
        || bob.read("follow.stdout").contains("chunk 1"),
    );
    world.write("go", "");
    let alice_run = started.wait(Duration::from_mins(1));
    alice_run.expect_code(3);
    let followed = follow.wait(Duration::from_secs(30));
    followed.expect_code(0);
    // What was logged when it started, then each line as it comes, under its step's line.
    for line in [
        "using ***",
        "chunk 1",
        "copied\n",
        "--- paused, waiting for an approval",
    ] {
        assert!(
            followed.stdout.contains(line),
            "`logs --follow` on bob's machine shows {line:?}:\n{}",
            followed.stdout
        );
    }
    assert!(
        !alice.exists(".runbook"),
        "nothing of the run is kept on alice's machine"
    );

    // Alice's laptop dies: her folder (and the runbook file) is gone.
    drop(alice);
    let shown = show(&bob, "dr-1");
    assert_eq!(shown["status"], "paused", "{shown:#}");
    assert_eq!(step(&shown, "copy")["status"], "succeeded");
    let text = on(&bob, &["show", "dr-1"]);
    assert!(
        text.stdout.contains("waiting for approval: approve"),
        "{}",
        text.stdout
    );

    // A manager approves from bob's machine, which resumes the run with the stored copy.
    let resumed = on(
        &bob,
        &[
            "resume",
            "dr-1",
            "--approve",
            "approve",
            "--as",
            "manager",
            "--no-progress",
        ],
    );
    resumed.expect_code(0);
    assert_eq!(
        trace(&world),
        ["prepare", "copy", "wipe"],
        "every step ran once, the settled ones were not run again"
    );
    let shown = show(&bob, "dr-1");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(shown["approvals"][0]["by"], "manager", "{shown:#}");
    assert_eq!(shown["approvals"][0]["approved"], true);
    let processes = shown["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 2, "alice's process, then bob's: {shown:#}");
    let logs = on(&bob, &["logs", "dr-1", "wipe"]);
    assert!(logs.stdout.contains("wiped with ***"), "{}", logs.stdout);
    assert!(
        !bob.exists(".runbook"),
        "nothing is kept on bob's machine either"
    );

    // The secret was used by two steps on two machines; no table holds it.
    let stored = pg::everything(cluster, &url);
    assert!(
        stored.contains("wiped with ***"),
        "the logs are in the database"
    );
    assert!(
        !stored.contains(CANARY),
        "the secret reached a table:\n{stored}"
    );
}

fn waiting(world: &Sandbox) -> String {
    let trace = world.join("trace").display().to_string();
    let go = world.join("go").display().to_string();
    format!(
        r#"name: waiting
steps:
  - id: first
    run: "echo first >> {trace}"
  - id: hold
    needs: [first]
    run: "while [ ! -e {go} ]; do sleep 0.05; done; echo hold >> {trace}"
  - id: last
    needs: [hold]
    run: "echo last >> {trace}"
"#
    )
}

#[test]
fn two_processes_on_one_run_exactly_one_drives_it_and_the_other_exits_4_naming_the_holder() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let world = Sandbox::new();
    let alice = pg::machine("alice", &url);
    let bob = pg::machine("bob", &url);
    alice.runbook(&waiting(&world));
    bob.runbook(&waiting(&world));

    let mut driver = Background::start(
        &alice,
        "alice",
        &["run", "runbook.yaml", "--run-id", "one", "--no-progress"],
    );
    driver.wait_until("`hold` runs", Duration::from_secs(30), || {
        trace(&world).contains(&"first".to_owned())
            && on(&bob, &["runs"]).stdout.contains("running")
    });
    for args in [
        &["resume", "one", "--no-progress"][..],
        &["run", "runbook.yaml", "--run-id", "one", "--no-progress"][..],
    ] {
        let refused = on(&bob, args);
        refused.expect_code(4);
        let holder = format!("pid {}, alice@", driver.pid());
        assert!(
            refused
                .stderr
                .contains("is being driven by another process")
                && refused.stderr.contains(&holder)
                && refused.stderr.contains("since "),
            "`{}` is refused naming the holder ({holder}…):\n{}",
            args.join(" "),
            refused.stderr
        );
    }

    // The driver dies with `hold` in flight; two machines resume at the same moment.
    let killed = driver.crash();
    let carol = pg::machine("carol", &url);
    let mut contenders: Vec<Background> = [("bob", &bob), ("carol", &carol)]
        .into_iter()
        .map(|(name, machine)| {
            Background::start(machine, name, &["resume", "one", "--no-progress"])
        })
        .collect();
    wait_until("one contender is refused", Duration::from_secs(30), || {
        contenders.iter_mut().any(|c| c.try_wait().is_some())
    });
    world.write("go", "");
    let mut codes: Vec<i32> = contenders
        .into_iter()
        .map(|c| {
            let run = c.wait(Duration::from_mins(1));
            if run.code == 4 {
                assert!(
                    run.stderr.contains("bob@") || run.stderr.contains("carol@"),
                    "the refused resume names the other: {}",
                    run.stderr
                );
            }
            run.code
        })
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [0, 4], "exactly one of two resumes drives the run");
    for group in killed.step_groups {
        crate::durable_support::kill_group(group);
    }
    let steps = trace(&world);
    assert_eq!(
        steps.iter().filter(|s| *s == "first").count(),
        1,
        "the settled step never ran again: {steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| *s == "last").count(),
        1,
        "{steps:?}"
    );
    assert_eq!(show(&bob, "one")["status"], "succeeded");
}

#[test]
fn latest_prefixes_and_prune_work_on_the_database_as_on_a_folder() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let alice = pg::machine("alice", &url);
    alice.write("ok.yaml", "name: ok\nsteps:\n  - id: a\n    run: echo a\n");
    alice.write(
        "bad.yaml",
        "name: bad\nsteps:\n  - id: a\n    run: exit 1\n",
    );
    on(&alice, &["run", "ok.yaml", "--run-id", "keep-ok-1"]).expect_code(0);
    on(&alice, &["run", "bad.yaml", "--run-id", "keep-bad-1"]).expect_code(1);

    // Another machine names the run started last, and a run by the beginning of its id.
    let bob = pg::machine("bob", &url);
    assert_eq!(show(&bob, "latest")["run_id"], "keep-bad-1");
    assert_eq!(show(&bob, "keep-o")["run_id"], "keep-ok-1");
    let ambiguous = on(&bob, &["show", "keep-"]);
    ambiguous.expect_code(2);
    assert!(
        ambiguous.stderr.contains("keep-ok-1"),
        "{}",
        ambiguous.stderr
    );

    std::thread::sleep(Duration::from_millis(50));
    let pruned = on(&bob, &["prune", "--older-than", "10ms"]);
    pruned.expect_code(0);
    assert!(
        pruned.stdout.contains("removed keep-ok-1"),
        "{}",
        pruned.stdout
    );
    let listed = on(&bob, &["runs"]).stdout;
    assert!(!listed.contains("keep-ok-1"), "its rows are gone: {listed}");
    assert!(
        listed.contains("keep-bad-1"),
        "a failed run is kept: {listed}"
    );
    let records = cluster.sql(
        &url,
        "SELECT count(*) FROM runbook.records r JOIN runbook.runs k ON k.key = r.run \
         WHERE k.run_id = 'keep-ok-1'",
    );
    assert_eq!(records.trim(), "0", "and its journal with them");
}
