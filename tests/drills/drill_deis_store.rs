//! `ssh/S3` drill: the Deis store backup and restore (`runbooks/deis/backup.yaml` and
//! `runbooks/deis/restore.yaml`) on real software on 127.0.0.1 — two S3-protocol servers (moto)
//! for the old and the new cluster's store gateway, Debian's s3cmd, and a real sshd with a
//! throwaway key for the `CoreOS` machine. deisctl is the FAKE `tests/drills/fake_deisctl`.
//!
//! `tests/drills/deis-store.yaml` seeds the old cluster, backs it up, restores onto the new one
//! and compares buckets and store files byte for byte. `drill` runs it and returns the end state,
//! so a kill-and-resume variant can compare.

use crate::run_support::Run;
use crate::support::{Drill, deis_store_setup, drills};

struct EndState {
    run: Run,
    /// The new cluster's objects (`size key` per line, both buckets).
    objects: String,
    /// The new store's listing (type, mode, owner, size, time, path, link).
    store: String,
    /// The calls the restore made to the new cluster's deisctl, in order.
    new_deisctl: Vec<String>,
}

fn drill(d: &mut Drill) -> EndState {
    let params = deis_store_setup(d);
    let run = d.run(
        &drills().join("deis-store.yaml").display().to_string(),
        &params,
    );
    EndState {
        objects: d.read("verify/new-db_wal.listing") + &d.read("verify/new-registry.listing"),
        store: d.read("verify/new-store.listing"),
        new_deisctl: d
            .read("new-cluster.json.log")
            .lines()
            .map(str::to_owned)
            .collect(),
        run,
    }
}

#[test]
fn deis_store_buckets_and_log_data_come_back_byte_for_byte() {
    let mut d = Drill::new("deis-store");
    let end = drill(&mut d);
    end.run.expect_code(0).expect_succeeded(&[
        "backup.configure_s3cmd",
        "backup.sync_db_wal",
        "backup.sync_registry",
        "backup.tar_store_volume",
        "backup.fetch_store_tarball",
        "restore.check_backup_files",
        "restore.make_db_wal_bucket",
        "restore.make_registry_bucket",
        "restore.sync_db_wal[0]",
        "restore.sync_db_wal[1]",
        "restore.sync_registry",
        "restore.upload_store_tarball",
        "restore.extract_store_tarball",
        "compare_buckets",
        "compare_store",
    ]);
    assert_eq!(end.run.status_of("backup.dump_database"), Some("skipped"));
    // The new cluster had no buckets: the restore created them (its `check` found none).
    assert!(!end.run.all().contains("checked restore.make_db_wal_bucket"));

    // The document's order on the new cluster: install, the store components, a router, its
    // body size, the new keys, and only then the rest of the platform.
    assert_eq!(
        end.new_deisctl,
        [
            "install platform",
            "start store-monitor",
            "start store-daemon",
            "start store-metadata",
            "start store-gateway@1",
            "start store-volume",
            "start router@1",
            "config router set bodySize=100m",
            "config store get gateway/accessKey",
            "config store get gateway/secretKey",
            "start platform",
            "list",
        ]
    );

    // Byte for byte: 5 db_wal objects and 4 registry objects, every store entry.
    assert_eq!(end.objects.lines().count(), 10, "{}", end.objects);
    assert!(
        end.objects.contains("3000000 basebackups_005/"),
        "{}",
        end.objects
    );
    assert!(
        end.objects
            .contains("1500000 registry/images/5f1f0e8b/layer"),
        "{}",
        end.objects
    );
    assert!(
        end.store.contains("f 600 "),
        "the private token kept its mode\n{}",
        end.store
    );
    assert!(
        end.store.contains("./current.log logs/deis-controller.log"),
        "{}",
        end.store
    );
    // The gateway keys went into the s3cmd configuration; the shipped runbooks never printed them
    // (the drill's own seed step shows them, in the fake's state file).
    let shipped: Vec<&str> = end
        .run
        .lines()
        .into_iter()
        .filter(|l| l.contains("backup.") || l.contains("restore."))
        .collect();
    for key in [
        "new-secret-key-0002",
        "old-secret-key-0001",
        "NEWACCESSKEY0002",
    ] {
        assert!(!shipped.iter().any(|l| l.contains(key)), "{key} printed");
    }
    assert!(
        d.read("backup/deis-store.s3cfg")
            .contains("secret_key = new-secret-key-0002")
    );
}
