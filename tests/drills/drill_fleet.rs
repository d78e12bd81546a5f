//! Fleet procedures end to end over real SSH: one sshd serving five nodes `node1`…`node5` on
//! 127.0.0.2…6 (`services.sh fleet-start`; each session sees `FLEET_NODE`), reached through
//! the engine's multiplexed connections. The runbooks are written here, one per behaviour:
//! hosts from a step's output, batches in order, a gate that stops the rollout, a failure budget,
//! a kill -9 in the middle of a batch and its resume, a remote command stopped at its timeout,
//! per-node cleanup, and files moved to and from every node.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::durable_support::{Background, groups_gone, journal, kind, show, step};
use crate::run_support::{processes_gone, processes_matching, unique};
use crate::support::Drill;

/// Nodes in the fleet.
const NODES: usize = 5;

/// A drill with a fleet of `NODES` nodes and a `fleet.log` every node appends to.
fn fleet(name: &str) -> Drill {
    let mut d = Drill::new(name);
    d.fleet(NODES);
    d
}

/// `fleet.log`'s lines: `NODE EVENT` in the order the nodes wrote them.
fn events(d: &Drill) -> Vec<(String, String)> {
    let path = d.root().join("fleet.log");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, e)| (n.to_owned(), e.to_owned()))
        .collect()
}

/// The nodes that logged `event`, in order.
fn nodes_that(d: &Drill, event: &str) -> Vec<String> {
    events(d)
        .into_iter()
        .filter(|(_, e)| e == event)
        .map(|(n, _)| n)
        .collect()
}

/// An inventory step printing the fleet as JSON, then `body` (steps after it, indented as list
/// items of `steps:`).
fn with_inventory(d: &Drill, name: &str, body: &str) -> String {
    let nodes: Vec<String> = (1..=NODES).map(|i| format!("\"node{i}\"")).collect();
    let yaml = format!(
        r#"name: {name}
params:
  log: {{ type: string, default: "{log}" }}
steps:
  - id: inventory
    run: |
      echo '{{"nodes": [{nodes}]}}'
    outputs:
      nodes: "{{{{ result.json.nodes }}}}"
{body}"#,
        log = d.root().join("fleet.log").display(),
        nodes = nodes.join(", ")
    );
    d.sandbox()
        .write(&format!("{name}.yaml"), &yaml)
        .display()
        .to_string()
}

fn journal_of(d: &Drill, id: &str) -> Vec<Value> {
    journal(d.sandbox(), id)
}

/// How many `step_started` records node `id` has.
fn starts(records: &[Value], id: &str) -> usize {
    records
        .iter()
        .filter(|r| kind(r) == "step_started" && r["id"] == id)
        .count()
}

#[test]
fn hosts_from_a_steps_output_run_one_node_each_with_their_own_outputs() {
    let d = fleet("fleet-hosts");
    let file = with_inventory(
        &d,
        "hosts",
        r#"  - id: where
    needs: [inventory]
    on: "{{ steps.inventory.outputs.nodes }}"
    run: echo "$FLEET_NODE ran" >> {{ params.log }}; echo "$FLEET_NODE"
    outputs:
      node: "{{ result.stdout }}"
  - id: summary
    needs: [where]
    run: echo "{{ steps.where.items | map(attribute='outputs.node') | join(',') }}"
"#,
    );
    let run = d.run_with(&file, &[], &["--run-id", "hosts"]);
    run.expect_code(0);
    let mut ran = nodes_that(&d, "ran");
    ran.sort();
    assert_eq!(ran, ["node1", "node2", "node3", "node4", "node5"]);
    let shown = show(d.sandbox(), "hosts");
    for i in 1..=NODES {
        let node = step(&shown, &format!("where[node{i}]"));
        assert_eq!(node["status"], "succeeded", "{node}");
        assert_eq!(node["outputs"]["node"], format!("node{i}"), "{node}");
    }
    assert!(
        run.printed("summary")
            .iter()
            .any(|l| l.contains("node1,node2,node3,node4,node5")),
        "{}",
        run.all()
    );
}

#[test]
fn batches_run_in_order_one_then_half() {
    let d = fleet("fleet-batches");
    let file = with_inventory(
        &d,
        "batches",
        r#"  - id: restart
    needs: [inventory]
    on: "{{ steps.inventory.outputs.nodes }}"
    batch: [1, "50%"]
    max_parallel: 5
    run: |
      echo "$FLEET_NODE start" >> {{ params.log }}
      sleep 0.3
      echo "$FLEET_NODE end" >> {{ params.log }}
"#,
    );
    d.run_with(&file, &[], &["--run-id", "batches"])
        .expect_code(0);
    // Batches of 1, 3 (50% of 5, rounded up) and 1: every node of a batch ends before a node of
    // the next starts.
    let log = events(&d);
    let batch_of = |node: &str| match node {
        "node1" => 0,
        "node2" | "node3" | "node4" => 1,
        _ => 2,
    };
    let mut highest_ended = 0;
    let mut open: Vec<String> = Vec::new();
    for (node, event) in &log {
        let b = batch_of(node);
        if event == "start" {
            assert!(
                open.iter().all(|o| batch_of(o) == b),
                "{node} started while {open:?} ran: {log:?}"
            );
            assert!(
                b >= highest_ended,
                "{node} started after a later batch: {log:?}"
            );
            open.push(node.clone());
        } else {
            open.retain(|o| o != node);
            highest_ended = highest_ended.max(b);
        }
    }
    assert_eq!(nodes_that(&d, "end").len(), NODES, "{log:?}");
    // The second batch really ran at once.
    let starts: Vec<&str> = log
        .iter()
        .filter(|(_, e)| e == "start")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(starts[0], "node1");
    assert_eq!(starts[4], "node5");
}

#[test]
fn a_failing_gate_stops_the_remaining_batches() {
    let d = fleet("fleet-gate");
    let red = d.root().join("cluster-red");
    let file = with_inventory(
        &d,
        "gate",
        &format!(
            r#"  - id: restart
    needs: [inventory]
    on: "{{{{ steps.inventory.outputs.nodes }}}}"
    batch: 2
    run: |
      echo "$FLEET_NODE ran" >> {{{{ params.log }}}}
      if [ "$FLEET_NODE" = node2 ]; then touch {red}; fi
    gate:
      run: test -e {red} && echo red || echo green
      until: result.stdout == "green"
      interval: 100ms
      timeout: 1s
"#,
            red = red.display()
        ),
    );
    let run = d.run_with(&file, &[], &["--run-id", "gate"]);
    run.expect_code(1);
    let mut ran = nodes_that(&d, "ran");
    ran.sort();
    assert_eq!(ran, ["node1", "node2"], "{}", run.all());
    let shown = show(d.sandbox(), "gate");
    assert_eq!(step(&shown, "restart")["status"], "failed");
    let steps = shown["steps"].as_array().expect("steps");
    for i in 3..=NODES {
        let id = format!("restart[node{i}]");
        assert!(
            steps
                .iter()
                .all(|s| s["id"] != id.as_str() || s["status"] != "succeeded"),
            "{id} ran: {shown}"
        );
    }
    assert!(run.all().contains("gate"), "{}", run.all());
}

#[test]
fn max_failures_tolerates_one_failed_node_and_fails_on_the_second() {
    let d = fleet("fleet-budget");
    let file = with_inventory(
        &d,
        "budget",
        r#"  - id: patch
    needs: [inventory]
    on: "{{ steps.inventory.outputs.nodes }}"
    batch: 1
    max_failures: 1
    run: |
      echo "$FLEET_NODE ran" >> {{ params.log }}
      case "$FLEET_NODE" in node2|node4) echo "patch failed on $FLEET_NODE" >&2; exit 3;; esac
"#,
    );
    let run = d.run_with(&file, &[], &["--run-id", "budget"]);
    run.expect_code(1);
    assert_eq!(
        nodes_that(&d, "ran"),
        ["node1", "node2", "node3", "node4"],
        "node5 never starts once the budget is spent: {}",
        run.all()
    );
    let shown = show(d.sandbox(), "budget");
    assert_eq!(step(&shown, "patch[node2]")["status"], "failed");
    assert_eq!(step(&shown, "patch[node3]")["status"], "succeeded");
    assert_eq!(step(&shown, "patch[node4]")["status"], "failed");
    assert_eq!(step(&shown, "patch")["status"], "failed");
    assert!(run.all().contains("2 of"), "{}", run.all());
}

#[test]
fn kill_9_in_the_middle_of_a_batch_then_resume_runs_only_the_unfinished_nodes() {
    let d = fleet("fleet-crash");
    let file = with_inventory(
        &d,
        "crash",
        r#"  - id: upgrade
    needs: [inventory]
    on: "{{ steps.inventory.outputs.nodes }}"
    batch: 2
    run: |
      echo "$FLEET_NODE start" >> {{ params.log }}
      if [ "$FLEET_NODE" = node4 ]; then sleep 3.17; fi
      echo "$FLEET_NODE end" >> {{ params.log }}
  - id: done
    needs: [upgrade]
    run: echo "fleet upgraded"
"#,
    );
    let args: Vec<String> = ["run", &file, "--yes", "--no-progress", "--run-id", "crash"]
        .map(str::to_owned)
        .to_vec();
    let mut engine = Background::spawn(d.runbook(&args), d.root(), "crash");
    // Batch 2 is node3 and node4: kill when node3 has finished and node4 is still sleeping.
    engine.wait_until(
        "node3 finished, node4 in flight",
        Duration::from_mins(1),
        || {
            let records = journal_of(&d, "crash");
            records.iter().any(|r| {
                kind(r) == "step_finished"
                    && r["id"] == "upgrade[node3]"
                    && r["status"] == "succeeded"
            }) && records
                .iter()
                .any(|r| kind(r) == "step_started" && r["id"] == "upgrade[node4]")
        },
    );
    let killed = engine.crash();
    assert_eq!(killed.run.code, 137, "{}", killed.run.all());
    // The remote command goes on under sshd; wait for it like for a local step (its odd
    // duration tells it from the `sleep`s of tests running beside it).
    let left = processes_gone("sleep 3.17", Duration::from_secs(20));
    assert!(left.is_empty(), "{left:?}");
    let left = groups_gone(&killed.step_groups, Duration::from_secs(20));
    assert!(left.is_empty(), "{left:?}");
    let before = journal_of(&d, "crash");
    for n in ["node1", "node2", "node3"] {
        assert_eq!(starts(&before, &format!("upgrade[{n}]")), 1);
    }

    let resumed = d.run_args(&["resume", "crash", "--yes", "--no-progress"].map(str::to_owned));
    resumed.expect_code(0);
    let after = journal_of(&d, "crash");
    for n in ["node1", "node2", "node3"] {
        assert_eq!(
            starts(&after, &format!("upgrade[{n}]")),
            1,
            "{n} finished before the crash and is not run again"
        );
    }
    assert_eq!(starts(&after, "upgrade[node4]"), 2, "node4 was in flight");
    assert_eq!(starts(&after, "upgrade[node5]"), 1, "node5 had not started");
    let ends = nodes_that(&d, "end");
    for n in ["node1", "node2", "node3", "node5"] {
        assert_eq!(ends.iter().filter(|e| *e == n).count(), 1, "{n}: {ends:?}");
    }
    assert_eq!(show(d.sandbox(), "crash")["status"], "succeeded");
}

#[test]
fn a_remote_command_past_its_timeout_leaves_nothing_on_the_host() {
    let d = fleet("fleet-timeout");
    let seconds = 600 + unique() % 97;
    let yaml = format!(
        r"name: timeout
steps:
  - id: hang
    on: node3
    timeout: 2s
    run: sleep {seconds}; echo never
"
    );
    let file = d.sandbox().write("timeout.yaml", &yaml);
    let started = std::time::Instant::now();
    let run = d.run_with(&file.display().to_string(), &[], &["--run-id", "timeout"]);
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(run.all().contains("timed out"), "{}", run.all());
    let pattern = format!("sleep {seconds}");
    let left = processes_gone(&pattern, Duration::from_secs(10));
    assert!(left.is_empty(), "left on the host: {left:?}");
    assert!(processes_matching(&pattern).is_empty());
}

#[test]
fn a_blocks_finally_runs_per_node_with_that_nodes_status() {
    let d = fleet("fleet-finally");
    let file = with_inventory(
        &d,
        "finally",
        r#"  - id: bounce
    needs: [inventory]
    for_each: steps.inventory.outputs.nodes
    as: node
    max_failures: 5
    block:
      - id: drain
        on: "{{ node }}"
        run: echo "$FLEET_NODE drained" >> {{ params.log }}
      - id: restart
        needs: [drain]
        on: "{{ node }}"
        run: |
          if [ "$FLEET_NODE" = node2 ]; then exit 1; fi
          echo "$FLEET_NODE restarted" >> {{ params.log }}
    finally:
      - id: undrain
        on: "{{ node }}"
        run: echo "$FLEET_NODE undrained-after-{{ run.status }}" >> {{ params.log }}
"#,
    );
    let run = d.run_with(&file, &[], &["--run-id", "finally"]);
    run.expect_code(0);
    let log = events(&d);
    for i in 1..=NODES {
        let node = format!("node{i}");
        let expected = if i == 2 {
            "undrained-after-failed"
        } else {
            "undrained-after-succeeded"
        };
        assert!(
            log.iter().any(|(n, e)| *n == node && e == expected),
            "{node}: {log:?}\n{}",
            run.all()
        );
    }
    assert!(!log.iter().any(|(n, e)| n == "node2" && e == "restarted"));
}

/// `ROOT/NAME` on the host of node `i` (the fleet's nodes share this machine's filesystem).
fn node_file(d: &Drill, i: usize, name: &str) -> std::path::PathBuf {
    d.root().join(format!("node{i}")).join(name)
}

#[test]
fn uploads_and_downloads_move_files_per_node_and_skip_identical_ones() {
    let d = fleet("fleet-files");
    for i in 1..=NODES {
        std::fs::create_dir_all(d.root().join(format!("node{i}"))).unwrap();
        std::fs::write(
            node_file(&d, i, "snapshot.db"),
            format!("data of node{i}\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(d.root().join("snapshots")).unwrap();
    let yaml = format!(
        r#"name: files
params:
  root: {{ type: string, default: "{root}" }}
  version: {{ type: string, default: "1" }}
steps:
  - id: cfg
    on: [node1, node2, node3, node4, node5]
    upload:
      content: |
        node = "{{{{ host }}}}"
        version = {{{{ params.version }}}}
      dest: "{{{{ params.root }}}}/{{{{ host }}}}/app.conf"
      mode: "0640"
  - id: reload
    needs: [cfg]
    for_each: steps.cfg.items
    when: item.outputs.changed
    run: echo "{{{{ item.host }}}} reloaded" >> {{{{ params.root }}}}/fleet.log
  - id: fetch
    on: [node1, node2, node3, node4, node5]
    download:
      src: "{{{{ params.root }}}}/{{{{ host }}}}/snapshot.db"
      dest: "{{{{ params.root }}}}/snapshots/{{{{ host }}}}.db"
"#,
        root = d.root().display()
    );
    let file = d.sandbox().write("files.yaml", &yaml).display().to_string();
    d.run_with(&file, &[], &["--run-id", "files-1"])
        .expect_code(0);
    for i in 1..=NODES {
        let conf = node_file(&d, i, "app.conf");
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            format!("node = \"node{i}\"\nversion = 1\n")
        );
        assert_eq!(mode_of(&conf), 0o640);
        assert_eq!(
            std::fs::read_to_string(d.root().join(format!("snapshots/node{i}.db"))).unwrap(),
            format!("data of node{i}\n")
        );
    }
    let shown = show(d.sandbox(), "files-1");
    assert_eq!(
        step(&shown, "cfg[node1]")["outputs"]["changed"],
        true,
        "{shown}"
    );
    assert_eq!(
        step(&shown, "fetch[node1]")["outputs"]["changed"],
        true,
        "{shown}"
    );
    assert_eq!(nodes_that(&d, "reloaded").len(), NODES);

    // The same again: nothing differs, nothing is sent, nothing reloads.
    d.run_with(&file, &[], &["--run-id", "files-2"])
        .expect_code(0);
    let shown = show(d.sandbox(), "files-2");
    for i in 1..=NODES {
        assert_eq!(
            step(&shown, &format!("cfg[node{i}]"))["outputs"]["changed"],
            false
        );
        assert_eq!(
            step(&shown, &format!("fetch[node{i}]"))["outputs"]["changed"],
            false
        );
    }
    assert_eq!(
        nodes_that(&d, "reloaded").len(),
        NODES,
        "no reload without a change"
    );
    // No temporary file is left beside a destination.
    for i in 1..=NODES {
        let names: Vec<String> = std::fs::read_dir(d.root().join(format!("node{i}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    // A new version changes every node's file, and each reloads once more.
    d.run_with(
        &file,
        &[("version", "2".to_owned())],
        &["--run-id", "files-3"],
    )
    .expect_code(0);
    assert_eq!(nodes_that(&d, "reloaded").len(), 2 * NODES);
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// An HTTP server in `dir` bound to `address` only, stopped on drop.
struct Server(std::process::Child);

impl Server {
    fn start(dir: &Path, address: &str) -> (Self, u16) {
        let port = crate::run_support::free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", address, &port.to_string()])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((address, port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the server listens");
            std::thread::sleep(Duration::from_millis(50));
        }
        (Self(child), port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_steps_and_gates_on_a_host_are_sent_from_that_host() {
    let d = fleet("fleet-http");
    let site = d.root().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("health.json"), r#"{"status": "green"}"#).unwrap();
    // node2's address: the service listens there only.
    let (_server, port) = Server::start(&site, "127.0.0.3");
    let url = format!("http://127.0.0.3:{port}/health.json");
    let yaml = format!(
        r#"name: http-on
params:
  log: {{ type: string, default: "{log}" }}
steps:
  - id: roll
    on: [node1, node3]
    batch: 1
    run: echo "$FLEET_NODE ran" >> {{{{ params.log }}}}
    gate:
      on: node2
      http: {{ url: "{url}" }}
      until: result.json.status == "green"
      interval: 100ms
      timeout: 10s
  - id: health
    needs: [roll]
    on: node2
    http: {{ url: "{url}" }}
    outputs:
      status: "{{{{ result.json.status }}}}"
  - id: refused
    needs: [health]
    on: node{NODES}
    http: {{ url: "{url}", timeout: 5s }}
    allow_failure: true
"#,
        log = d.root().join("fleet.log").display()
    );
    let file = d
        .sandbox()
        .write("http-on.yaml", &yaml)
        .display()
        .to_string();
    let rehearsal = d.run_with(&file, &[], &["--dry-run"]);
    rehearsal.expect_code(0);
    assert!(
        rehearsal.all().contains(&format!("[node2] GET {url}")),
        "{}",
        rehearsal.all()
    );
    assert!(nodes_that(&d, "ran").is_empty(), "a rehearsal runs nothing");

    let run = d.run_with(&file, &[], &["--run-id", "http-on"]);
    run.expect_code(0);
    assert_eq!(nodes_that(&d, "ran"), ["node1", "node3"]);
    let shown = show(d.sandbox(), "http-on");
    assert_eq!(
        step(&shown, "health")["outputs"]["status"],
        "green",
        "{shown}"
    );
    // The last node refuses forwarding: its request fails, so requests do travel from the host.
    let refused = step(&shown, "refused");
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("sent from node{NODES} over SSH"))),
        "{refused}"
    );
}

#[test]
fn a_block_with_when_false_skips_every_step_and_hosts_come_as_maps_with_ports() {
    let d = fleet("fleet-maps");
    // The fleet's port, read from its ssh configuration.
    let port_of = |fleet: &str| -> u16 {
        let config = std::fs::read_to_string(d.root().join(fleet).join("ssh_config")).unwrap();
        config
            .lines()
            .find_map(|l| l.trim().strip_prefix("Port "))
            .expect("a Port line")
            .parse()
            .expect("a port number")
    };
    // A second fleet of one node (127.0.0.2, `node1`) on another port with another key: the
    // two hosts differ in address, port and key, each given in its map.
    let other = crate::run_support::free_port();
    d.service(&["fleet-start", &d.at("fleet2"), &other.to_string(), "1"]);
    let (port, port2) = (port_of("fleet"), port_of("fleet2"));
    assert_ne!(port, port2);
    let user = crate::support::current_user();
    let host = |address: &str, port: u16, fleet: &str| {
        serde_json::json!({
            "ssh": format!("{user}@{address}"),
            "port": port,
            "identity_file": d.root().join(fleet).join("client_key").display().to_string(),
            "options": ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"],
        })
    };
    let inventory = serde_json::json!({
        "hosts": [host("127.0.0.3", port, "fleet"), host("127.0.0.2", port2, "fleet2")]
    });
    let yaml = format!(
        r#"name: maps
params:
  log: {{ type: string, default: "{log}" }}
  maintenance: {{ type: bool, default: false }}
steps:
  - id: inventory
    run: |
      cat <<'JSON'
      {inventory}
      JSON
    outputs:
      hosts: "{{{{ result.json.hosts }}}}"
  - id: where
    needs: [inventory]
    on: "{{{{ steps.inventory.outputs.hosts }}}}"
    run: echo "$FLEET_NODE mapped" >> {{{{ params.log }}}}
  - id: maintenance
    needs: [where]
    when: params.maintenance
    block:
      - id: stop
        run: echo "all stopped" >> {{{{ params.log }}}}
      - id: wipe
        needs: [stop]
        run: echo "all wiped" >> {{{{ params.log }}}}
"#,
        log = d.root().join("fleet.log").display(),
    );
    let file = d.sandbox().write("maps.yaml", &yaml).display().to_string();
    let run = d.run_with(&file, &[], &["--run-id", "maps"]);
    run.expect_code(0);
    let mut mapped = nodes_that(&d, "mapped");
    mapped.sort();
    // node2 of the first fleet, node1 of the second.
    assert_eq!(mapped, ["node1", "node2"], "{}", run.all());
    let shown = show(d.sandbox(), "maps");
    for key in [
        format!("where[{user}@127.0.0.3:{port}]"),
        format!("where[{user}@127.0.0.2:{port2}]"),
    ] {
        assert_eq!(step(&shown, &key)["status"], "succeeded", "{key}: {shown}");
    }
    assert_eq!(step(&shown, "maintenance")["status"], "skipped");
    assert!(
        !events(&d)
            .iter()
            .any(|(_, e)| e == "stopped" || e == "wiped"),
        "{:?}",
        events(&d)
    );
}

#[test]
fn an_unreachable_host_fails_its_own_node_with_sshs_reason() {
    let d = fleet("fleet-unreachable");
    let yaml = format!(
        r#"name: unreachable
steps:
  - id: ping
    on: [node1, node-that-is-not-there, node2]
    max_failures: 1
    run: echo "$FLEET_NODE pinged" >> {log}
"#,
        log = d.root().join("fleet.log").display()
    );
    let file = d
        .sandbox()
        .write("unreachable.yaml", &yaml)
        .display()
        .to_string();
    let run = d.run_with(&file, &[], &["--run-id", "unreachable"]);
    run.expect_code(0);
    let mut pinged = nodes_that(&d, "pinged");
    pinged.sort();
    assert_eq!(pinged, ["node1", "node2"]);
    let shown = show(d.sandbox(), "unreachable");
    let lost = step(&shown, "ping[node-that-is-not-there]");
    assert_eq!(lost["status"], "failed", "{lost}");
    let reason = lost["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("unreachable") && reason.contains("node-that-is-not-there"),
        "{reason}"
    );
}

#[test]
fn no_local_ssh_gets_the_variable_a_secret_is_read_from() {
    let d = fleet("fleet-withheld");
    let children = d.root().join("children.txt");
    let yaml = format!(
        r#"name: withheld
secrets:
  token: {{ env: RB_FLEET_CANARY }}
steps:
  - id: remote
    on: node1
    run: echo "$FLEET_NODE reached" >> {log}
  - id: inspect
    needs: [remote]
    run: |
      # The engine's processes (this shell's parent's children), node1's ssh master among
      # them while the run lasts: each with how many times it has the secret's variable.
      for p in /proc/[0-9]*; do
        [ "$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f2)" = "$PPID" ] || continue
        printf '%s|%s\n' "$(tr '\0\n' '  ' <"$p/cmdline")" "$(tr '\0' '\n' <"$p/environ" | grep -c '^RB_FLEET_CANARY=')"
      done > {children}
"#,
        log = d.root().join("fleet.log").display(),
        children = children.display(),
    );
    let file = d
        .sandbox()
        .write("withheld.yaml", &yaml)
        .display()
        .to_string();
    let started = std::time::Instant::now();
    let output = d
        .runbook(&["run".to_owned(), file, "--no-progress".to_owned()])
        .env("RB_FLEET_CANARY", "fleet-canary-7Hq2")
        .output()
        .expect("the runbook binary starts");
    let run = crate::run_support::Run::new(&output, started.elapsed());
    run.expect_code(0);
    assert_eq!(nodes_that(&d, "reached"), ["node1"]);
    let seen = std::fs::read_to_string(&children).expect("the inspect step wrote its list");
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("ControlMaster=yes")),
        "node1's ssh master is among the engine's processes:\n{seen}"
    );
    assert!(
        lines.iter().any(|l| l.contains("trap '' HUP")),
        "and so is the dead man's switch:\n{seen}"
    );
    assert!(
        lines.iter().all(|l| l.ends_with("|0")),
        "a process of the engine has the variable a secret is read from:\n{seen}"
    );
}
