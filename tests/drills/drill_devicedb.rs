//! devicedb drills: `runbooks/devicedb/snapshot.yaml` and `runbooks/devicedb/restore.yaml` against the
//! FAKE `devicedb` command `tests/drills/fake_devicedb` (devicedb cannot be installed here), which
//! keeps a three-node cluster's state in the drill's folder: nodes' snapshot parts go from
//! processing to completed over several polls, a node can fail its part, a stopped node refuses
//! connections, and `overview` prints the document's Nodes table.
//!
//! The runbooks run from a copy whose poll intervals are milliseconds (`Drill::fast_copy`).

use std::fmt::Write as _;
use std::path::Path;

use crate::run_support::Run;
use crate::support::{Drill, drills};

const NODES: [(&str, u16); 3] = [("ddb1", 8080), ("ddb2", 8181), ("ddb3", 8282)];

/// A drill with the fake cluster: stores seeded, every node running, `devicedb` on PATH.
fn cluster(name: &str, fail_node: Option<&str>) -> Drill {
    let mut d = Drill::new(name);
    let state = d.root().join("devicedb");
    std::fs::create_dir_all(state.join("snapshots")).expect("snapshot store");
    let mut nodes = Vec::new();
    for (i, (name, port)) in NODES.iter().enumerate() {
        let store = d.root().join("var/lib/devicedb").join(name);
        std::fs::create_dir_all(store.join("data")).expect("store");
        std::fs::write(store.join("CURRENT"), format!("MANIFEST-00000{i}\n")).expect("file");
        let data: Vec<u8> = (0..20_000usize)
            .map(|b| u8::try_from((b * 31 + i) % 256).expect("below 256"))
            .collect();
        std::fs::write(store.join("data/000005.ldb"), data).expect("file");
        nodes.push(serde_json::json!({
            "name": name, "host": "localhost", "port": port, "id": format!("{}", 4_678_103_818_387_409_268u64 + u64::from(*port)),
            "store": store, "running": true,
        }));
    }
    let json =
        serde_json::json!({ "nodes": nodes, "replication_factor": 3, "fail_node": fail_node });
    std::fs::write(state.join("cluster.json"), json.to_string()).expect("cluster state");
    let bin = d.root().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let wrapper = bin.join("devicedb");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# FAKE devicedb for this drill (tests/drills/fake_devicedb)\nexec python3 {} --state {} \"$@\"\n",
            drills().join("fake_devicedb").display(),
            state.display()
        ),
    )
    .expect("wrapper");
    set_executable(&wrapper);
    d.prepend_path(bin);
    // The nodes' list as the runbooks take it (a list of maps: a params file).
    let mut params = String::from("nodes:\n");
    for (name, port) in NODES {
        let store = d.root().join("var/lib/devicedb").join(name);
        writeln!(
            params,
            "  - {{ name: {name}, host: localhost, port: {port}, store: {} }}",
            store.display()
        )
        .expect("writing to a String cannot fail");
    }
    std::fs::write(d.root().join("nodes.yaml"), params).expect("params");
    d
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn snapshot(d: &Drill) -> Run {
    let devicedb = d.fast_copy("devicedb", "50ms");
    let nodes = d.at("nodes.yaml");
    d.run_with(
        &devicedb.join("snapshot.yaml").display().to_string(),
        &[("download_dir", d.at("parts"))],
        &["--params", &nodes],
    )
}

/// The UUID the snapshot run reported.
fn uuid_of(run: &Run) -> String {
    run.printed("trigger_snapshot")
        .iter()
        .find_map(|l| l.strip_prefix("uuid = "))
        .expect("the snapshot printed its uuid")
        .trim()
        .to_owned()
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).expect("readable").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("below")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(e.path()).expect("readable")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn devicedb_snapshot_then_restore_returns_every_node_to_the_snapshot() {
    let d = cluster("devicedb", None);
    let run = snapshot(&d);
    run.expect_code(0);
    let uuid = uuid_of(&run);
    // The nodes finished one after the other: the last one was polled several times.
    assert!(
        run.lines()
            .iter()
            .filter(|l| l.starts_with("wait wait_snapshot[2]: not yet after poll "))
            .count()
            >= 2,
        "{}",
        run.stdout
    );
    for (name, _) in NODES {
        assert!(
            d.root()
                .join(format!("parts/snapshot-{uuid}-{name}.tar"))
                .exists()
        );
    }
    let before: Vec<_> = NODES
        .iter()
        .map(|(n, _)| tree(&d.root().join("var/lib/devicedb").join(n)))
        .collect();

    // Data written after the snapshot, which the restore must undo.
    std::fs::write(
        d.root().join("var/lib/devicedb/ddb2/data/000006.ldb"),
        "later",
    )
    .expect("write");
    std::fs::write(
        d.root().join("var/lib/devicedb/ddb1/CURRENT"),
        "MANIFEST-000009\n",
    )
    .expect("write");

    let devicedb = d.fast_copy("devicedb", "50ms");
    let nodes = d.at("nodes.yaml");
    let run = d.run_with(
        &devicedb.join("restore.yaml").display().to_string(),
        &[
            ("uuid", uuid.clone()),
            ("snapshot_dir", d.at("parts")),
            ("snapshot_store", d.at("devicedb/snapshots")),
            ("stop_command", "devicedb fake-stop -port \"$DEVICEDB_PORT\"".to_owned()),
            (
                "start_command",
                format!(
                    "devicedb cluster start -store \"$DEVICEDB_STORE\" -port \"$DEVICEDB_PORT\" -snapshot_store {}",
                    d.at("devicedb/snapshots")
                ),
            ),
        ],
        &["--params", &nodes],
    );
    run.expect_code(0).expect_succeeded(&[
        "confirm_stopped[0]",
        "delete_data[2]",
        "extract_parts[1]",
        "start_nodes_with_command[2]",
        "cluster_overview[0]",
        "overview_consistent",
    ]);
    assert_eq!(run.status_of("stop_nodes"), Some("skipped"));
    let after: Vec<_> = NODES
        .iter()
        .map(|(n, _)| tree(&d.root().join("var/lib/devicedb").join(n)))
        .collect();
    assert!(
        before == after,
        "every node's store is exactly its part of the snapshot"
    );
}

#[test]
fn devicedb_snapshot_with_a_failed_node_fails_and_downloads_nothing() {
    let d = cluster("devicedb-fail", Some("ddb2"));
    let run = snapshot(&d);
    run.expect_code(1);
    assert_eq!(run.status_of("snapshot_completed"), Some("failed"));
    assert!(
        run.all().contains("ddb2"),
        "the failed node is named\n{}",
        run.all()
    );
    assert!(
        run.all()
            .contains("A cluster snapshot needs every node's part"),
        "{}",
        run.all()
    );
    assert!(
        !d.root().join("parts").exists() || crate::support::files_in(&d.root().join("parts")) == 0
    );
}
