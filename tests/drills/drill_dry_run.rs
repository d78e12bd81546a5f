//! Every shipped runbook's rehearsal (`--dry-run`), snapshot-tested: the order of execution, every
//! command and request fully rendered, the destructive and manual markers, and what the `safe`
//! probes found. Snapshots live in `tests/drills/snapshots/dry_run/` (review changes with `cargo insta
//! review`, or accept them with `INSTA_UPDATE=always` and read the diff).
//!
//! Params are fixed; the safe probes meet a deterministic world: the FAKE Elasticsearch
//! (`tests/drills/fake_es.py`), the FAKE deisctl, backup files made here, and a closed port where a
//! probe would reach a real machine over SSH. What still varies between runs is redacted: the
//! drill folder (`[TMP]`), this checkout (`[REPO]`), ports, times, the UTC-dated snapshot name and
//! the installed s3cmd's version.

use crate::run_support::{free_port, repo, unstamped};
use crate::support::{Drill, drills, set_args};

/// One rehearsal: the runbook (under `runbooks/`), its params, and the values to redact.
struct Rehearsal<'a> {
    d: &'a Drill,
    redact: Vec<(String, String)>,
}

impl<'a> Rehearsal<'a> {
    fn new(d: &'a Drill) -> Self {
        Self {
            d,
            redact: vec![
                (d.root().display().to_string(), "[TMP]".to_owned()),
                (
                    drills().display().to_string(),
                    "[REPO]/tests/drills".to_owned(),
                ),
                (repo().display().to_string(), "[REPO]".to_owned()),
            ],
        }
    }

    fn port(mut self, port: u16, name: &str) -> Self {
        self.redact.push((port.to_string(), format!("[{name}]")));
        self
    }

    /// `runbook run runbooks/FILE --dry-run --no-progress --run-id dry-run …`, redacted, with its
    /// exit code on the first line.
    fn output(&self, file: &str, params: &[(&str, String)]) -> String {
        let runbook = repo().join("runbooks").join(file).display().to_string();
        let mut args: Vec<String> = [
            "run",
            &runbook,
            "--dry-run",
            "--no-progress",
            "--run-id",
            "dry-run",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(set_args(params));
        let run = self.d.run_args(&args);
        let mut text = format!("exit: {}\n", run.code);
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            text.push_str(unstamped(line));
            text.push('\n');
        }
        for (from, to) in &self.redact {
            text = text.replace(from.as_str(), to);
        }
        let times = regex::Regex::new(r"(?m)( in )\d+(?:\.\d+)?(?:ms|s|m)(:|$)").expect("regex");
        let text = times.replace_all(&text, "${1}[T]${2}");
        let dated =
            regex::Regex::new(r"snapshot\.20(?:2[5-9]|[3-9]\d)-\d\d-\d\dt\d{4}z").expect("regex");
        let text = dated.replace_all(&text, "snapshot.[UTC-DATE]");
        let s3cmd = regex::Regex::new(r"(\| s3cmd )\d+\.\d+(?:\.\d+)?").expect("regex");
        s3cmd.replace_all(&text, "${1}[VERSION]").into_owned()
    }
}

fn check(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "snapshots/dry_run",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The rehearsal of `runbooks/FILE` against the fake Elasticsearch (a repository and one good
/// snapshot present) in drill folder NAME: `es_url` and `params`, the fake's port redacted.
fn rehearse_with_es(name: &str, file: &str, params: &[(&str, String)]) -> String {
    let d = Drill::new(name);
    let es = d.fake_http(
        "es",
        "fake_es.py",
        &["--snapshots", "s3_backup:snapshot.2024-05-01t1030z:SUCCESS"],
    );
    let mut all = vec![("es_url", format!("http://127.0.0.1:{es}"))];
    all.extend_from_slice(params);
    Rehearsal::new(&d).port(es, "ES_PORT").output(file, &all)
}

/// The fake deisctl's command with a state file in the drill folder.
fn fake_deisctl(d: &Drill) -> String {
    std::fs::write(
        d.root().join("deisctl.json"),
        r#"{"installed": true, "started": ["store-gateway@1", "database"], "access_key": "AK", "secret_key": "SK", "db_host": "172.17.8.100"}"#,
    )
    .expect("state file");
    format!(
        "python3 {}/fake_deisctl --state {}/deisctl.json",
        drills().display(),
        d.root().display()
    )
}

#[test]
fn nuvla_es_repo_setup() {
    let out = rehearse_with_es(
        "dry-es-repo-setup",
        "nuvla/es-repo-setup.yaml",
        &[
            ("bucket", "nuvla-es-backup".to_owned()),
            ("endpoint", "sos-ch-dk-2.exo.io".to_owned()),
        ],
    );
    check("nuvla-es-repo-setup", &out);
}

#[test]
fn nuvla_es_backup() {
    let out = rehearse_with_es("dry-es-backup", "nuvla/es-backup.yaml", &[]);
    check("nuvla-es-backup", &out);
}

#[test]
fn nuvla_restore() {
    let out = rehearse_with_es(
        "dry-nuvla-restore",
        "nuvla/restore.yaml",
        &[
            ("snapshot", "snapshot.2024-05-01t1030z".to_owned()),
            ("bucket", "nuvla-es-backup".to_owned()),
            ("endpoint", "sos-ch-dk-2.exo.io".to_owned()),
            ("db_volumes", "[nuvla_esdata, nuvla_zkdata]".to_owned()),
            // No Docker here: the rebuild script's help comes from the drill's stand-in.
            ("network", String::new()),
            (
                "zk_restore_command",
                format!(
                    "python3 {}/zk_tool.py restore --from jobs.json",
                    drills().display()
                ),
            ),
        ],
    );
    check("nuvla-restore", &out);
}

#[test]
fn nuvla_zk_rebuild() {
    let d = Drill::new("dry-zk-rebuild");
    let out = Rehearsal::new(&d).output(
        "nuvla/zk-rebuild.yaml",
        &[
            ("network", String::new()),
            (
                "restore_command",
                format!(
                    "python3 {}/zk_tool.py restore --from jobs.json",
                    drills().display()
                ),
            ),
        ],
    );
    check("nuvla-zk-rebuild", &out);
}

#[test]
fn activedata_es_bounce() {
    let out = rehearse_with_es(
        "dry-es-bounce",
        "activedata/es-bounce.yaml",
        &[
            ("nodes", "[es-1, es-2]".to_owned()),
            ("spot_nodes", "[spot-1, spot-2]".to_owned()),
        ],
    );
    check("activedata-es-bounce", &out);
}

#[test]
fn activedata_es_bounce_node() {
    let out = rehearse_with_es(
        "dry-es-bounce-node",
        "activedata/es-bounce-node.yaml",
        &[("node", "es-1".to_owned())],
    );
    check("activedata-es-bounce-node", &out);
}

#[test]
fn activedata_es_node_change() {
    let out = rehearse_with_es(
        "dry-es-node-change",
        "activedata/es-node-change.yaml",
        &[("node_ip", "10.0.0.3".to_owned())],
    );
    check("activedata-es-node-change", &out);
}

#[test]
fn activedata_etl_deploy() {
    let d = Drill::new("dry-etl-deploy");
    let out = Rehearsal::new(&d).output(
        "activedata/etl-deploy.yaml",
        &[
            ("etl_checkout", "/home/ops/ActiveData-ETL".to_owned()),
            ("spotmanager_user", "ubuntu".to_owned()),
            ("spotmanager_host", "10.0.0.5".to_owned()),
            ("spotmanager_checkout", "SpotManager".to_owned()),
        ],
    );
    check("activedata-etl-deploy", &out);
}

#[test]
fn activedata_frontend_deploy() {
    // The status probe is safe, so the rehearsal tries it over SSH: a closed port here.
    let d = Drill::new("dry-frontend-deploy");
    let closed = free_port();
    let out = Rehearsal::new(&d).port(closed, "CLOSED_PORT").output(
        "activedata/frontend-deploy.yaml",
        &[
            ("frontend_user", "ubuntu".to_owned()),
            ("frontend_host", "127.0.0.1".to_owned()),
            ("frontend_ssh_port", closed.to_string()),
        ],
    );
    check("activedata-frontend-deploy", &out);
}

#[test]
fn deis_backup() {
    let d = Drill::new("dry-deis-backup");
    let deisctl = fake_deisctl(&d);
    let out = Rehearsal::new(&d).output(
        "deis/backup.yaml",
        &[
            ("backup_dir", "/backups/deis".to_owned()),
            ("gateway_host", "deis-store.local3.deisapp.com".to_owned()),
            ("store_host", "172.17.8.100".to_owned()),
            ("db_host", "172.17.8.100".to_owned()),
            ("deisctl", deisctl),
        ],
    );
    check("deis-backup", &out);
}

#[test]
fn deis_restore() {
    let d = Drill::new("dry-deis-restore");
    let deisctl = fake_deisctl(&d);
    for dir in [
        "backup/basebackups_005",
        "backup/wal_005",
        "backup/registry",
    ] {
        std::fs::create_dir_all(d.root().join(dir)).expect("backup folder");
    }
    std::fs::write(d.root().join("backup/store_file_backup.tar.gz"), "tarball").expect("tarball");
    let out = Rehearsal::new(&d).output(
        "deis/restore.yaml",
        &[
            ("backup_dir", d.at("backup")),
            ("gateway_host", "deis-store.new.example.com".to_owned()),
            ("store_host", "172.17.8.100".to_owned()),
            ("deisctl", deisctl),
        ],
    );
    check("deis-restore", &out);
}

#[test]
fn deis_database_dump() {
    let d = Drill::new("dry-deis-database-dump");
    let deisctl = fake_deisctl(&d);
    let out = Rehearsal::new(&d).output(
        "deis/database-dump.yaml",
        &[
            ("backup_dir", "/backups/deis".to_owned()),
            ("db_host", "172.17.8.100".to_owned()),
            ("deisctl", deisctl),
        ],
    );
    check("deis-database-dump", &out);
}

#[test]
fn deis_database_restore() {
    let d = Drill::new("dry-deis-database-restore");
    std::fs::create_dir_all(d.root().join("backup")).expect("backup folder");
    std::fs::write(
        d.root().join("backup/dump_all.sql"),
        "--\n-- PostgreSQL database cluster dump\n--\nCREATE ROLE deis;\nCREATE DATABASE deis WITH TEMPLATE = template0 OWNER = deis;\n\\connect deis\nCOPY public.api_app (uuid, id) FROM stdin;\n1\tapp-1\n2\tapp-2\n\\.\n\nCOPY public.auth_user (id, username) FROM stdin;\n1\tadmin\n\\.\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n",
    )
    .expect("dump");
    // The listing probe is safe, so the rehearsal tries it over SSH: a closed port here.
    let closed = free_port();
    let out = Rehearsal::new(&d).port(closed, "CLOSED_PORT").output(
        "deis/database-restore.yaml",
        &[
            ("backup_dir", d.at("backup")),
            ("db_host", "127.0.0.1".to_owned()),
            ("ssh_port", closed.to_string()),
            ("data_dir", "/var/lib/postgresql/9.4/main".to_owned()),
            ("stop_command", "sudo -u postgres /usr/lib/postgresql/9.4/bin/pg_ctl -D /var/lib/postgresql/9.4/main -m fast -w stop".to_owned()),
            ("initdb_command", "sudo -u postgres /usr/lib/postgresql/9.4/bin/initdb -D /var/lib/postgresql/9.4/main -E UTF8".to_owned()),
            ("start_command", "sudo -u postgres /usr/lib/postgresql/9.4/bin/pg_ctl -D /var/lib/postgresql/9.4/main -l /var/log/postgresql/restore.log -w start".to_owned()),
        ],
    );
    check("deis-database-restore", &out);
}

#[test]
fn devicedb_snapshot() {
    let d = Drill::new("dry-devicedb-snapshot");
    let out = Rehearsal::new(&d).output(
        "devicedb/snapshot.yaml",
        &[("download_dir", "/backups/devicedb".to_owned())],
    );
    check("devicedb-snapshot", &out);
}

#[test]
fn devicedb_restore() {
    let d = Drill::new("dry-devicedb-restore");
    let uuid = "19a7e40e-adcc-4cc2-87a7-ae599272b050";
    for n in ["ddb1", "ddb2", "ddb3"] {
        std::fs::write(
            d.root().join(format!("snapshot-{uuid}-{n}.tar")),
            vec![0u8; 305_664],
        )
        .expect("part");
    }
    let out = Rehearsal::new(&d).output(
        "devicedb/restore.yaml",
        &[
            ("uuid", uuid.to_owned()),
            ("snapshot_dir", d.root().display().to_string()),
        ],
    );
    check("devicedb-restore", &out);
}

/// Every shipped runbook (outside `demo/`) has a rehearsal test above.
#[test]
fn every_runbook_is_rehearsed() {
    let this =
        std::fs::read_to_string(repo().join("tests/drills/drill_dry_run.rs")).expect("readable");
    for system in ["nuvla", "activedata", "deis", "devicedb"] {
        for entry in std::fs::read_dir(repo().join("runbooks").join(system))
            .expect("folder")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if std::path::Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
            {
                let file = format!("\"{system}/{name}\"");
                assert!(
                    this.contains(&file),
                    "{file} has no rehearsal snapshot test"
                );
            }
        }
    }
}
