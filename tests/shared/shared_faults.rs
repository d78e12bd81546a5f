//! When the database is not there: its sessions ended under a running run (the run goes on,
//! nothing lost), the server stopped mid-run (running steps finish, no step starts unrecorded,
//! the run stops as interrupted, resume completes it), and a store that cannot be reached, read
//! or trusted is named with the reason, without its password.

use std::fmt::Write as _;
use std::time::Duration;

use crate::durable_support::Background;
use crate::pg::{self, Cluster};
use crate::run_support::{Sandbox, free_port};

fn chain(world: &Sandbox, steps: usize) -> String {
    let trace = world.join("trace").display().to_string();
    let go = world.join("go").display().to_string();
    let mut yaml = String::from("name: chain\nsteps:\n");
    for i in 1..=steps {
        let wait = if i == 2 {
            format!("while [ ! -e {go} ]; do sleep 0.05; done; ")
        } else {
            String::new()
        };
        let _ = writeln!(
            yaml,
            "  - id: s{i}\n    run: \"{wait}echo s{i} >> {trace}; sleep 0.05\""
        );
    }
    yaml
}

fn trace(world: &Sandbox) -> Vec<String> {
    world.read("trace").lines().map(str::to_owned).collect()
}

fn count(lines: &[String], id: &str) -> usize {
    lines.iter().filter(|l| *l == id).count()
}

#[test]
fn sessions_ended_by_the_server_mid_run_are_taken_back_and_the_run_goes_on() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let world = Sandbox::new();
    let machine = pg::machine("alice", &url);
    machine.runbook(&chain(&world, 12));
    let mut run = Background::start(
        &machine,
        "run",
        &["run", "runbook.yaml", "--run-id", "cut", "--no-progress"],
    );
    run.wait_until("s2 waits", Duration::from_secs(30), || {
        trace(&world).contains(&"s1".to_owned())
    });
    // An administrator ends every session of runbook's, twice: while a step runs, and while
    // the next ones start.
    let database = url.rsplit('/').next().expect("a database name");
    let terminate = format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = '{database}' AND application_name = 'runbook'"
    );
    let ended: u32 = cluster
        .sql("postgres", &terminate)
        .trim()
        .parse()
        .expect("a count");
    assert!(ended >= 1, "the run's session was ended");
    world.write("go", "");
    run.wait_until("s5 runs", Duration::from_secs(30), || {
        trace(&world).contains(&"s5".to_owned())
    });
    cluster.sql("postgres", &terminate);
    let done = run.wait(Duration::from_mins(1));
    done.expect_code(0);
    let lines = trace(&world);
    for i in 1..=12 {
        assert_eq!(
            count(&lines, &format!("s{i}")),
            1,
            "s{i} ran once: {lines:?}"
        );
    }
    let shown = machine.cli(&["show", "cut", "--format", "json"]);
    assert!(
        shown.stdout.contains("\"status\": \"succeeded\""),
        "{}",
        shown.all()
    );
}

#[test]
fn a_database_that_stops_mid_run_stops_the_run_interrupted_and_resume_completes_it() {
    let cluster = Cluster::own();
    let url = cluster.database();
    let world = Sandbox::new();
    let machine = pg::machine("alice", &url).env("RUNBOOK_STATE_PATIENCE", "2");
    machine.runbook(&chain(&world, 4));
    let mut run = Background::start(
        &machine,
        "run",
        &["run", "runbook.yaml", "--run-id", "outage", "--no-progress"],
    );
    run.wait_until("s2 runs", Duration::from_secs(30), || {
        trace(&world).contains(&"s1".to_owned())
    });
    std::thread::sleep(Duration::from_millis(200));
    cluster.stop();
    // The running step goes on and finishes while the database is away.
    world.write("go", "");
    let stopped = run.wait(Duration::from_mins(1));
    stopped.expect_code(130);
    for text in [
        "could not be reached for 2 s",
        "was stopped as interrupted",
        "runbook resume outage",
        "failed to connect to postgres://postgres@127.0.0.1:",
    ] {
        assert!(
            stopped.stderr.contains(text),
            "{text:?} in:\n{}",
            stopped.stderr
        );
    }
    let lines = trace(&world);
    assert_eq!(
        lines,
        ["s1", "s2"],
        "s2 finished; s3 never started unrecorded"
    );

    cluster.start();
    let resumed = machine.cli(&["resume", "outage", "--no-progress"]);
    resumed.expect_code(0);
    let lines = trace(&world);
    assert_eq!(
        count(&lines, "s1"),
        1,
        "the settled step is not run again: {lines:?}"
    );
    assert!(
        count(&lines, "s2") <= 2,
        "s2 ran again only as in flight: {lines:?}"
    );
    assert_eq!(
        (count(&lines, "s3"), count(&lines, "s4")),
        (1, 1),
        "{lines:?}"
    );
}

#[test]
fn a_store_that_cannot_be_reached_read_or_trusted_is_named_with_the_reason() {
    let world = Sandbox::new();
    let trace = world.join("trace").display().to_string();
    let port = free_port();
    let machine = Sandbox::new().env(
        "RUNBOOK_STATE",
        &format!("postgres://alice:s3cret@127.0.0.1:{port}/runs"),
    );
    machine.runbook(&format!(
        "name: nothing\nsteps:\n  - id: a\n    run: \"echo a >> {trace}\"\n"
    ));
    for args in [
        &["runs"][..],
        &["show", "x"][..],
        &["run", "runbook.yaml", "--no-progress"][..],
    ] {
        let refused = machine.cli(args);
        refused.expect_code(1);
        let shown = format!("failed to connect to postgres://alice@127.0.0.1:{port}/runs");
        assert!(
            refused.stderr.contains(&shown) && refused.stderr.contains("Connection refused"),
            "`{}` names the store and the reason:\n{}",
            args.join(" "),
            refused.stderr
        );
        assert!(
            !refused.all().contains("s3cret"),
            "the password is never shown"
        );
    }
    assert!(!world.exists("trace"), "no step ran without its store");

    let bad = machine.cli(&["runs", "--state", "postgres://h/db?sslmode=sometimes"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("invalid --state URL"), "{}", bad.stderr);

    let cluster = Cluster::shared();
    let url = cluster.database();
    // The test cluster has no TLS: `sslmode=require` must say so, not fall back to plain text.
    let tls = machine.cli(&["runs", "--state", &format!("{url}?sslmode=require")]);
    tls.expect_code(1);
    assert!(tls.stderr.contains("TLS"), "{}", tls.stderr);

    let missing = machine.cli(&["runs", "--state", &format!("{url}_nope")]);
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );

    // A database whose tables a newer runbook migrated is refused, not misread.
    let empty = machine.cli(&["runs", "--state", &url]);
    empty.expect_code(0);
    cluster.sql(
        &url,
        "INSERT INTO runbook.schema_version (version) VALUES (99)",
    );
    let newer = machine.cli(&["runs", "--state", &url]);
    newer.expect_code(1);
    assert!(
        newer
            .stderr
            .contains("schema version 99, newer than this build"),
        "{}",
        newer.stderr
    );
}

#[test]
fn a_driver_cut_off_while_another_machine_took_the_run_over_stops_and_exits_4() {
    let cluster = Cluster::shared();
    let url = cluster.database();
    let database = url.rsplit('/').next().expect("a database name").to_owned();
    // Alice connects as a role of her own, so that the test can keep her out for a while.
    let role = format!("{database}_alice");
    cluster.sql(
        "postgres",
        &format!("CREATE ROLE {role} LOGIN; GRANT ALL ON DATABASE {database} TO {role}"),
    );
    let alice_url = url.replacen("postgres@", &format!("{role}@"), 1);
    let world = Sandbox::new();
    let trace_file = world.join("trace").display().to_string();
    let yaml = format!(
        "name: cut\nsteps:\n  - id: s1\n    run: \"echo s1 >> {trace_file}\"\n  - id: s2\n    needs: [s1]\n    run: \"echo s2 >> {trace_file}; sleep 1.5\"\n  - id: s3\n    needs: [s2]\n    run: \"echo s3 >> {trace_file}\"\n"
    );
    let alice = pg::machine("alice", &alice_url).env("RUNBOOK_STATE_PATIENCE", "60");
    let bob = pg::machine("bob", &url);
    alice.runbook(&yaml);
    let mut driver = Background::start(
        &alice,
        "alice",
        &["run", "runbook.yaml", "--run-id", "taken", "--no-progress"],
    );
    driver.wait_until("s2 runs", Duration::from_secs(30), || {
        trace(&world).contains(&"s2".to_owned())
    });
    // Alice's connection breaks and she cannot get back; bob resumes the run meanwhile.
    cluster.sql("postgres", &format!("ALTER ROLE {role} NOLOGIN"));
    cluster.sql(
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
    );
    let resume = Background::start(&bob, "bob", &["resume", "taken", "--no-progress"]);
    let held_by_bob = || {
        cluster
            .sql(
                &url,
                "SELECT holder_user FROM runbook.runs WHERE run_id = 'taken'",
            )
            .trim()
            == "bob"
    };
    crate::durable_support::wait_until("bob drives the run", Duration::from_secs(30), held_by_bob);
    cluster.sql("postgres", &format!("ALTER ROLE {role} LOGIN"));

    let cut_off = driver.wait(Duration::from_mins(1));
    cut_off.expect_code(4);
    assert!(
        cut_off.stderr.contains("was taken over by another process")
            && cut_off.stderr.contains("bob@"),
        "alice is told who took the run over:\n{}",
        cut_off.stderr
    );
    let resumed = resume.wait(Duration::from_mins(1));
    resumed.expect_code(0);
    let lines = trace(&world);
    assert_eq!(count(&lines, "s1"), 1, "{lines:?}");
    assert_eq!(
        count(&lines, "s3"),
        1,
        "alice started nothing after she lost the run: {lines:?}"
    );
    let shown = bob.cli(&["show", "taken", "--format", "json"]);
    assert!(
        shown.stdout.contains("\"status\": \"succeeded\""),
        "{}",
        shown.all()
    );
}
