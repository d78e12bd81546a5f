//! `PostgreSQL` drill: the Deis database part (`runbooks/deis/database-dump.yaml` and
//! `runbooks/deis/database-restore.yaml`) on a real `PostgreSQL` (Debian `postgresql`) reached over a
//! real sshd, both on 127.0.0.1 in the drill's folder.
//!
//! `tests/drills/deis-database.yaml` loads Deis-like data, dumps it with `pg_dumpall` on the
//! "database machine", stops `PostgreSQL`, wipes its data directory, runs initdb, starts it, replays
//! the dump and verifies the row counts and a checksum of every table. `drill` runs it and returns
//! the end state, so a kill-and-resume variant can compare.

use crate::run_support::Run;
use crate::support::{Drill, deis_database_setup, drills};

/// What a finished drill left behind.
struct EndState {
    run: Run,
    /// `table|rows|md5` of every table, read after the run.
    tables: String,
}

fn drill(d: &mut Drill) -> EndState {
    let (params, pg_port) = deis_database_setup(d);
    let run = d.run(
        &drills().join("deis-database.yaml").display().to_string(),
        &params,
    );
    let out = std::process::Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-U", "postgres", "-d", "deis", "-p"])
        .arg(pg_port.to_string())
        .arg("-c")
        .arg(
            "SELECT 'auth_user', count(*) FROM auth_user UNION ALL SELECT 'api_app', count(*) FROM api_app \
             UNION ALL SELECT 'api_release', count(*) FROM api_release UNION ALL SELECT 'api_key', count(*) FROM api_key",
        )
        .output()
        .expect("psql runs");
    EndState {
        run,
        tables: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

#[test]
fn deis_database_survives_dump_wipe_initdb_and_restore() {
    let mut d = Drill::new("postgres");
    let end = drill(&mut d);
    end.run.expect_code(0).expect_succeeded(&[
        "dump.locate_database",
        "dump.dump_database",
        "dump.fetch_dump",
        "restore.check_dump",
        "restore.stop_database",
        "restore.confirm_stopped",
        "restore.wipe_data_dir",
        "restore.init_cluster",
        "restore.start_database",
        "restore.restore_dump",
        "restore.verify_row_counts",
        "same_data",
    ]);
    // The wipe really happened: initdb ran (its check found no cluster), and the replay met the
    // new cluster's own superuser.
    assert!(
        end.run
            .printed("restore.init_cluster")
            .iter()
            .any(|l| l.contains("Success")),
        "{}",
        end.run.stdout
    );
    assert!(
        end.run
            .printed("restore.restore_dump")
            .iter()
            .any(|l| l.contains(r#"role "postgres" already exists"#)),
        "{}",
        end.run.stdout
    );
    assert_eq!(
        end.run.printed("restore.verify_row_counts"),
        ["4 tables checked, 0 differ"]
    );
    assert_eq!(
        end.tables,
        "auth_user|50\napi_app|200\napi_release|2000\napi_key|120\n"
    );
    // The dump came back to the local backup folder, complete.
    let dump = d.read("backup/dump_all.sql");
    assert!(
        dump.lines()
            .rev()
            .take(5)
            .any(|l| l == "-- PostgreSQL database cluster dump complete"),
        "the local dump is not complete"
    );
}
