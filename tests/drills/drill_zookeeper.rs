//! `ZooKeeper` drill: the "rebuild `ZooKeeper`" part of the Nuvla restore
//! (`runbooks/nuvla/zk-rebuild.yaml`) on a real `ZooKeeper` (Debian `zookeeper`) on 127.0.0.1.
//!
//! `tests/drills/nuvla-zk.yaml` populates Nuvla-like znodes with `zkCli`, exports them, stops
//! `ZooKeeper`, wipes its data, starts it fresh, calls the shipped zk-rebuild runbook with the
//! stand-in restore script, and verifies every znode and value (with the drill's client and with
//! `zkCli`). `drill` runs it and returns the end state, so a kill-and-resume variant can compare.

use crate::run_support::{Run, free_port};
use crate::support::{Drill, drills, nuvla_zk_params, zk_tree};

/// What a finished drill left behind.
struct EndState {
    run: Run,
    /// `ZooKeeper's` port.
    port: u16,
    /// The rebuilt tree under `/job` and `/nuvla`, as `zk_tool` exports it.
    tree: String,
    /// The export taken before the wipe.
    export: String,
}

/// Starts nothing itself: the drill runbook starts and restarts `ZooKeeper`; `Drill` stops it.
fn drill(d: &Drill) -> EndState {
    let port = free_port();
    let run = d.run(
        &drills().join("nuvla-zk.yaml").display().to_string(),
        &nuvla_zk_params(d, port),
    );
    let tree = if run.code == 0 {
        zk_tree(port)
    } else {
        String::new()
    };
    EndState {
        run,
        port,
        tree,
        export: d.read("export.json"),
    }
}

#[test]
fn zookeeper_is_rebuilt_with_every_znode_and_value() {
    let d = Drill::new("zookeeper");
    let end = drill(&d);
    end.run.expect_code(0);

    // Every step of the story ran, in the document's order, and the shipped runbook did the rebuild.
    end.run.expect_succeeded(&[
        "populate",
        "export",
        "stop_zookeeper",
        "wipe_data",
        "start_fresh",
        "rebuild.show_help",
        "rebuild.restore_jobs",
        "verify_export",
        "verify_with_zkcli",
    ]);
    assert_eq!(
        end.run.status_of("rebuild.inspect_network"),
        Some("skipped")
    );
    assert_eq!(
        end.run.printed("confirm_empty"),
        ["0"],
        "the new ZooKeeper started empty"
    );
    assert_eq!(
        end.run.printed("rebuild.restore_jobs"),
        [format!(
            "Re-created 46 znodes (0 already present) on 127.0.0.1:{}",
            end.port
        )]
    );
    assert_eq!(
        end.run.printed("verify_with_zkcli"),
        ["zkCli: 46 znodes, every value as populated"]
    );

    // The end state is the state before the disaster: the live tree is the export, byte for byte.
    assert!(
        end.export.contains("\"/job/entries/entry-"),
        "{}",
        end.export
    );
    assert_eq!(end.tree, end.export);
}
