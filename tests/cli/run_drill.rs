//! The shipped demo drill (`runbooks/demo/drill.yaml`), end to end: its rehearsal touches
//! nothing, and the real drill (backup → disaster → restore → verify of a local HTTP service)
//! succeeds and leaves no server behind. Each test uses its own folder and a free port.

use std::time::Duration;

use crate::run_support::{Run, Sandbox, files_below, free_port, listening, processes_gone, repo};

/// Every step id of the drill, in the order a rehearsal lists it.
const STEPS: [&str; 18] = [
    "prepare",
    "seed_data[0]",
    "seed_data[1]",
    "seed_data[2]",
    "start_service",
    "wait_healthy",
    "snapshot",
    "count_before",
    "go_ahead",
    "stop_service",
    "wipe",
    "restore",
    "restart_service",
    "wait_healthy_again",
    "verify_checksums",
    "verify",
    "stop_service_finally",
    "report",
];

struct Drill {
    sb: Sandbox,
    port: u16,
}

impl Drill {
    fn new() -> Self {
        Self {
            sb: Sandbox::new(),
            port: free_port(),
        }
    }

    fn workdir(&self) -> std::path::PathBuf {
        self.sb.join("drill")
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let drill = repo().join("runbooks/demo/drill.yaml");
        let mut args: Vec<String> = vec![
            "run".into(),
            drill.display().to_string(),
            "--no-progress".into(),
            "--set".into(),
            format!("workdir={}", self.workdir().display()),
            "--set".into(),
            format!("port={}", self.port),
        ];
        args.extend(extra.iter().map(|&a| a.to_owned()));
        args
    }

    fn run(&self, extra: &[&str]) -> Run {
        let started = std::time::Instant::now();
        let output = self.sb.command(self.args(extra)).output().unwrap();
        Run::new(&output, started.elapsed())
    }

    /// The drill's server processes (its command line names the port).
    fn servers(&self) -> Vec<String> {
        processes_gone(
            &format!("http.server {} --bind", self.port),
            Duration::from_secs(3),
        )
    }
}

#[test]
fn the_rehearsal_prints_every_command_and_executes_nothing() {
    let drill = Drill::new();
    let run = drill.run(&["--dry-run"]);
    run.expect_code(0);

    let workdir = drill.workdir();
    assert!(
        files_below(&workdir).is_empty(),
        "the rehearsal created {:?}",
        files_below(&workdir)
    );
    assert!(!workdir.exists());
    assert!(!listening(drill.port), "something listens on the port");
    assert!(drill.servers().is_empty(), "a server was started");

    let lines = run.lines();
    let mut position = 0;
    for (n, id) in STEPS.iter().enumerate() {
        let heading = format!("{:>3}. {id}", n + 1);
        let found = lines[position..]
            .iter()
            .position(|l| l.starts_with(&format!("{heading} ")) || *l == heading)
            .unwrap_or_else(|| panic!("`{heading}` missing or out of order:\n{}", run.stdout));
        position += found + 1;
    }
    let wd = workdir.display();
    for command in [
        format!("mkdir -p {wd}/data {wd}/backup"),
        format!(
            "setsid nohup python3 -m http.server {} --bind 127.0.0.1",
            drill.port
        ),
        format!("GET http://127.0.0.1:{}/health", drill.port),
        format!("rm -rf {wd}/data"),
        "tar -xzf '<steps.snapshot.outputs.archive>'".to_owned(),
    ] {
        assert!(
            run.stdout.contains(&command),
            "`{command}` not shown:\n{}",
            run.stdout
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" 11. wipe") && l.contains("[DESTRUCTIVE")),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  9. go_ahead") && l.contains("[MANUAL")),
        "{}",
        run.stdout
    );
}

#[test]
fn the_rehearsal_as_json_lists_the_steps_in_order_with_their_marks() {
    let drill = Drill::new();
    let run = drill.run(&["--dry-run", "--format", "json"]);
    run.expect_code(0);
    let document: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout));
    let steps = document["steps"].as_array().expect("a `steps` list");
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, STEPS);
    let marked = |mark: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|s| s[mark] == true)
            .map(|s| s["id"].as_str().unwrap())
            .collect()
    };
    assert_eq!(marked("destructive"), ["wipe"]);
    assert_eq!(marked("manual"), ["go_ahead"]);
    assert_eq!(marked("safe"), ["count_before"]);
    let wipe = &steps[10];
    assert_eq!(
        wipe["would_run"],
        format!("rm -rf {}/data", drill.workdir().display())
    );
    assert!(!drill.workdir().exists());
}

#[test]
fn the_drill_runs_end_to_end_and_leaves_no_server_behind() {
    let drill = Drill::new();
    let run = drill.run(&["--yes", "--approve-all"]);
    run.expect_code(0);
    let workdir = drill.workdir();
    for file in ["customers.csv", "orders.csv", "invoices.csv"] {
        let text = std::fs::read_to_string(workdir.join("data").join(file)).unwrap();
        assert_eq!(text.lines().count(), 200, "{file}");
    }
    assert!(workdir.join("backup/snapshot.tar.gz").exists());
    assert!(
        run.printed("report")
            .iter()
            .any(|l| l.ends_with("ended: succeeded")),
        "{}",
        run.stdout
    );
    // `finally` signals the server and does not wait for it: give it a moment to exit.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while listening(drill.port) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!listening(drill.port), "the server still answers");
    let left = drill.servers();
    assert!(left.is_empty(), "servers left: {left:?}");
}
