//! Elasticsearch drills: the Nuvla (backup, repository setup, restore with the `ZooKeeper` rebuild)
//! and `ActiveData` (controlled bounce, node change) runbooks against the FAKE Elasticsearch
//! `tests/drills/fake_es.py` — Elasticsearch cannot be installed here. The fake speaks the
//! documented API with realistic transitions (snapshots `IN_PROGRESS` for several polls, restored
//! indices red while they initialize, shards draining off excluded nodes over several listings,
//! bounced nodes away for a while, a node that fails to come back).
//!
//! The runbooks run from a copy whose poll intervals are milliseconds (`Drill::fast_copy`
//! checks that nothing else differs); the Nuvla restore also uses a real `ZooKeeper`.

use crate::run_support::Run;
use crate::support::{Drill, drills, zk_tool};
use serde_json::Value;

/// A drill with the fake Elasticsearch running; its events are read from `ROOT/es/events.log`.
struct Es {
    d: Drill,
    port: u16,
}

impl Es {
    fn start(name: &str, args: &[&str]) -> Self {
        let d = Drill::new(name);
        let log = d.at("es/events.log");
        let mut all = vec!["--log", log.as_str()];
        all.extend_from_slice(args);
        let port = d.fake_http("es", "fake_es.py", &all);
        Self { d, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `runbooks/SYSTEM/FILE` (from the fast copy) against the fake: `es_url` and `params`.
    fn run(&self, system: &str, file: &str, params: &[(&str, String)]) -> Run {
        let copy = self.d.fast_copy(system, "50ms");
        let mut all = vec![("es_url", self.url())];
        all.extend_from_slice(params);
        self.d.run(&copy.join(file).display().to_string(), &all)
    }

    fn events(&self) -> Vec<Value> {
        self.d
            .read("es/events.log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("the fake writes JSON lines"))
            .collect()
    }

    /// The events as short strings: `persistent cluster.routing.allocation.enable=none`,
    /// `bounce es-1`, `rejoined es-1`, `snapshot NAME`, …
    fn story(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| match e["event"].as_str().unwrap_or_default() {
                "setting" => format!(
                    "{} {}={}",
                    e["kind"].as_str().unwrap_or_default(),
                    e["key"].as_str().unwrap_or_default(),
                    e["value"].as_str().unwrap_or("null")
                ),
                "bounce" | "rejoined" => format!(
                    "{} {}",
                    e["event"].as_str().unwrap_or_default(),
                    e["node"].as_str().unwrap_or_default()
                ),
                other => format!("{other} {}", e["name"].as_str().unwrap_or_default()),
            })
            .collect()
    }
}

/// How many times a polled step was retried before its condition held.
fn polls(run: &Run, id: &str) -> usize {
    run.lines()
        .iter()
        .filter(|l| l.starts_with(&format!("wait {id}: not yet after poll ")))
        .count()
}

#[test]
fn nuvla_repository_setup_verifies_with_a_first_snapshot() {
    let es = Es::start("es-repo-setup", &[]);
    let run = es.run(
        "nuvla",
        "es-repo-setup.yaml",
        &[
            ("bucket", "nuvla-es-backup".to_owned()),
            ("endpoint", "sos-ch-dk-2.exo.io".to_owned()),
            ("timestamp_file", es.d.at("nuvla-es-backup-timestamp")),
        ],
    );
    run.expect_code(0).expect_succeeded(&[
        "register_repository",
        "verify_snapshot.trigger_snapshot",
        "verify_snapshot.wait_snapshot",
        "verify_snapshot.snapshot_succeeded",
        "verify_snapshot.touch_timestamp",
        "list_snapshots",
    ]);
    let events = es.events();
    assert_eq!(
        events[0]["definition"],
        serde_json::json!({"type": "s3", "settings": {"bucket": "nuvla-es-backup", "endpoint": "sos-ch-dk-2.exo.io"}})
    );
    // The snapshot is named from the UTC date, lowercase, and was polled until it finished.
    let name = events[1]["name"].as_str().expect("a snapshot was taken");
    let re = regex::Regex::new(r"^snapshot\.\d{4}-\d\d-\d\dt\d{4}z$").expect("valid regex");
    assert!(re.is_match(name), "{name}");
    assert_eq!(events[2]["state"], "SUCCESS");
    assert!(
        polls(&run, "verify_snapshot.wait_snapshot") >= 2,
        "{}",
        run.stdout
    );
    assert!(es.d.root().join("nuvla-es-backup-timestamp").exists());
}

#[test]
fn nuvla_backup_that_does_not_succeed_reports_failure_and_leaves_the_timestamp() {
    let es = Es::start(
        "es-backup-partial",
        &[
            "--snapshots",
            "s3_backup:snapshot.2024-05-01t0930z:SUCCESS",
            "--snapshot-outcome",
            "PARTIAL",
        ],
    );
    let run = es.run(
        "nuvla",
        "es-backup.yaml",
        &[("timestamp_file", es.d.at("nuvla-es-backup-timestamp"))],
    );
    run.expect_code(1);
    assert_eq!(run.status_of("snapshot_succeeded"), Some("failed"));
    assert_ne!(run.status_of("touch_timestamp"), Some("succeeded"));
    assert!(run.all().contains("FAILURE snapshot."), "{}", run.all());
    assert!(!es.d.root().join("nuvla-es-backup-timestamp").exists());
}

#[test]
fn nuvla_restore_replaces_the_volumes_restores_es_and_rebuilds_zookeeper() {
    let es = Es::start(
        "nuvla-restore",
        &[
            "--indices",
            "",
            "--snapshots",
            "s3_backup:snapshot.2024-05-01t1030z:SUCCESS",
        ],
    );
    let zk_port = es.d.zookeeper();
    // The database services' volumes (removed by the run) and the jobs the rebuild re-creates.
    for v in ["esdata", "zkdata"] {
        std::fs::create_dir_all(es.d.root().join("volumes").join(v)).expect("volume folder");
        std::fs::write(es.d.root().join("volumes").join(v).join("data"), "old").expect("file");
    }
    let export = r#"{"/job": "", "/job/entries": "", "/job/entries/entry-100-0000000003": "job/1d2a", "/job/entries/entry-999-0000000004": "job/9f00"}"#;
    std::fs::write(es.d.root().join("jobs.json"), export).expect("export");
    let run = es.run(
        "nuvla",
        "restore.yaml",
        &[
            ("snapshot", "snapshot.2024-05-01t1030z".to_owned()),
            ("bucket", "nuvla-es-backup".to_owned()),
            ("endpoint", "sos-ch-dk-2.exo.io".to_owned()),
            (
                "db_volumes",
                format!(
                    "[{}, {}]",
                    es.d.at("volumes/esdata"),
                    es.d.at("volumes/zkdata")
                ),
            ),
            ("volume_exists_command", "test -e".to_owned()),
            ("volume_remove_command", "rm -rf --".to_owned()),
            ("network", String::new()),
            (
                "zk_restore_command",
                format!(
                    "python3 {}/zk_tool.py restore --from {}",
                    drills().display(),
                    es.d.at("jobs.json")
                ),
            ),
            ("zk_host", "127.0.0.1".to_owned()),
            ("zk_port", zk_port.to_string()),
            ("es_host", "127.0.0.1".to_owned()),
            ("es_port", es.port.to_string()),
        ],
    );
    run.expect_code(0).expect_succeeded(&[
        "remove_volumes[0]",
        "remove_volumes[1]",
        "register_repository",
        "list_snapshots",
        "snapshot_usable",
        "restore_snapshot",
        "wait_restore",
        "rebuild_zookeeper.restore_jobs",
        "verify_es_health",
        "verify_indices",
    ]);
    assert!(!es.d.root().join("volumes/esdata").exists());
    assert!(!es.d.root().join("volumes/zkdata").exists());
    // Restored indices were red while they initialized, and the run waited for them.
    assert!(polls(&run, "wait_restore") >= 2, "{}", run.stdout);
    assert_eq!(
        es.story(),
        ["repository s3_backup", "restore snapshot.2024-05-01t1030z"]
    );
    // Every job entry is in ZooKeeper again.
    let verify = zk_tool(
        &["verify", "--from", &es.d.at("jobs.json"), "/job"],
        zk_port,
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

fn bounce_command(es: &Es) -> String {
    // The node (name or IP) is appended by the runbook: it becomes `$0` of this script.
    format!("sh -c 'curl -fsS -XPOST {}/_fake/bounce/\"$0\"'", es.url())
}

/// `activedata/es-bounce.yaml` on nodes es-1 and es-2, spot nodes spot-1 and spot-2.
fn bounce(es: &Es) -> Run {
    es.run(
        "activedata",
        "es-bounce.yaml",
        &[
            ("nodes", "[es-1, es-2]".to_owned()),
            ("spot_nodes", "[spot-1, spot-2]".to_owned()),
            ("bounce_command", bounce_command(es)),
        ],
    )
}

#[test]
fn activedata_bounce_drains_spot_nodes_bounces_one_at_a_time_and_undoes_the_settings() {
    let es = Es::start("es-bounce", &[]);
    let run = bounce(&es);
    run.expect_code(0);
    assert!(
        polls(&run, "wait_spot_drained") >= 2,
        "the spot nodes drained over several polls"
    );
    assert_eq!(run.status_of("confirm_spot_drained"), Some("skipped"));
    run.expect_succeeded(&[
        "bounce_nodes[0].wait_rejoined",
        "bounce_nodes[1].wait_rejoined",
        "wait_green",
    ]);
    // One node per batch, the cluster not red before the next.
    for batch in [1, 2] {
        assert!(
            run.all()
                .contains(&format!("ok gate of bounce_nodes after batch {batch}")),
            "{}",
            run.all()
        );
    }
    assert_eq!(
        es.story(),
        [
            "persistent cluster.routing.allocation.exclude.zone=spot",
            "persistent cluster.routing.allocation.enable=none",
            "bounce es-1",
            "rejoined es-1",
            "bounce es-2",
            "rejoined es-2",
            "persistent cluster.routing.allocation.enable=all",
            "persistent cluster.routing.allocation.exclude.zone=",
        ]
    );
}

#[test]
fn activedata_bounce_of_a_node_that_fails_still_undoes_the_temporary_settings() {
    let es = Es::start("es-bounce-fails", &["--fail-node", "es-1"]);
    let run = bounce(&es);
    run.expect_code(1);
    assert_eq!(
        run.status_of("bounce_nodes[0].bounce_with_command"),
        Some("failed")
    );
    // The next node is not bounced while one is down; finally re-enables allocation and the
    // spot zone, and reports instead of waiting hours for a green that cannot come.
    assert_eq!(
        es.story(),
        [
            "persistent cluster.routing.allocation.exclude.zone=spot",
            "persistent cluster.routing.allocation.enable=none",
            "bounce es-1",
            "persistent cluster.routing.allocation.enable=all",
            "persistent cluster.routing.allocation.exclude.zone=",
        ]
    );
    assert_eq!(run.status_of("wait_green"), Some("skipped"));
    assert!(
        run.all().contains("ActiveData ES bounce FAILED"),
        "{}",
        run.all()
    );
}

#[test]
fn activedata_node_change_moves_the_shards_off_the_node_and_allows_them_back() {
    let es = Es::start("es-node-change", &[]);
    let run = es.run(
        "activedata",
        "es-node-change.yaml",
        &[
            ("node_ip", "10.0.0.3".to_owned()),
            ("spot_nodes", "[spot-1, spot-2]".to_owned()),
            ("change_command", bounce_command(&es)),
        ],
    );
    run.expect_code(0);
    assert!(
        polls(&run, "wait_node_drained") >= 2,
        "the node drained over several polls"
    );
    run.expect_succeeded(&["node_known", "change_node_with_command", "wait_node_back"]);
    assert_eq!(run.status_of("change_node"), Some("skipped"));
    assert_eq!(
        es.story(),
        [
            "persistent cluster.routing.allocation.exclude.zone=spot",
            "transient cluster.routing.allocation.exclude._ip=null",
            "persistent cluster.routing.allocation.exclude._ip=10.0.0.3",
            "persistent cluster.routing.allocation.enable=none",
            "bounce es-3",
            "rejoined es-3",
            "persistent cluster.routing.allocation.enable=all",
            "persistent cluster.routing.allocation.exclude._ip=",
            "persistent cluster.routing.allocation.exclude.zone=",
        ]
    );
}
