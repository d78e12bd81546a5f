//! Remote execution through the library (`runbook::exec::remote::Remote`) against a real fleet:
//! one sshd serving `node1`…`node3` on 127.0.0.2… (`services.sh fleet-start`). The hosts are this
//! machine, so what runs "on a host" is visible in `/proc` here: the tests look there for
//! processes a stopped command must not leave, for ssh masters, and for secrets on command lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::exec::event::{Event, Message, Stream};
use runbook::exec::remote::{HostTarget, Remote, UploadSource};
use runbook::exec::secrets::Masker;
use runbook::exec::step::command::CommandLine;
use runbook::exec::{RunOptions, Runtime};
use runbook::plan::NodeId;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::run_support::unique;
use crate::support::{Drill, current_user};

/// A fleet of three nodes and a run's connections to it.
struct Fleet {
    drill: Drill,
    port: u16,
    remote: Remote,
    rt: Arc<Runtime>,
    events: UnboundedReceiver<Message>,
}

impl Fleet {
    fn new(name: &str) -> Self {
        Self::with_grace(name, Duration::from_secs(5))
    }

    fn with_grace(name: &str, kill_grace: Duration) -> Self {
        let mut drill = Drill::new(name);
        let port = drill.fleet(3);
        let run_id = format!("remote-{name}-{}", unique());
        let mut options = RunOptions::new(run_id.clone());
        options.kill_grace = kill_grace;
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let rt = Arc::new(Runtime::new(
            options,
            Masker::default(),
            tx,
            CancellationToken::new(),
        ));
        Self {
            drill,
            port,
            remote: Remote::new(run_id),
            rt,
            events,
        }
    }

    fn dir(&self) -> PathBuf {
        self.drill.root().join("fleet")
    }

    /// `nodeI` as the engine reaches it: address, port, key and known hosts of the fleet.
    fn node(&self, i: u8) -> HostTarget {
        HostTarget::new(
            format!("node{i}"),
            format!("{}@127.0.0.{}", current_user(), i + 1),
        )
        .with_port(self.port)
        .with_identity_file(self.dir().join("client_key"))
        .with_option("IdentitiesOnly=yes")
        .with_option(format!(
            "UserKnownHostsFile={}",
            self.dir().join("known_hosts").display()
        ))
        .with_option("StrictHostKeyChecking=yes")
    }

    /// `Remote::upload` with this fleet's runtime.
    async fn upload(
        &self,
        id: &NodeId,
        host: &HostTarget,
        source: &UploadSource,
        dest: &str,
        mode: Option<u32>,
    ) -> Result<Value, runbook::exec::step::Failure> {
        self.remote
            .upload(&self.rt, id, host, source, dest, mode)
            .await
    }

    /// `Remote::download` with this fleet's runtime.
    async fn download(
        &self,
        id: &NodeId,
        host: &HostTarget,
        src: &str,
        dest: &Path,
    ) -> Result<Value, runbook::exec::step::Failure> {
        self.remote.download(&self.rt, id, host, src, dest).await
    }

    async fn run(
        &self,
        id: &str,
        host: &HostTarget,
        script: &str,
        timeout: Option<Duration>,
    ) -> Result<Value, String> {
        self.remote
            .run(
                &self.rt,
                &NodeId::step(id),
                host,
                &CommandLine::script("sh", script),
                timeout,
            )
            .await
            .map_err(|f| f.message)
    }

    /// The output lines emitted so far for a node.
    fn output(&mut self, id: &str) -> Vec<(Stream, String)> {
        let mut lines = Vec::new();
        while let Ok(message) = self.events.try_recv() {
            if let Message::Event(stamped) = message
                && let Event::Output {
                    id: of,
                    stream,
                    line,
                } = stamped.event
                && of.as_str() == id
            {
                lines.push((stream, line));
            }
        }
        lines
    }

    /// The live ssh masters of this run's connections.
    fn masters(&self) -> Vec<String> {
        let Some(dir) = self.remote.control_dir() else {
            return Vec::new();
        };
        let dir = dir.display().to_string();
        processes(|cmd| cmd.contains("ControlMaster=yes") && cmd.contains(&dir))
    }
}

/// Command lines (arguments joined by spaces) of live processes other than this one for which
/// `pick` holds. A zombie has no command line, so it never counts.
fn processes(pick: impl Fn(&str) -> bool) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmd.is_empty() && pick(&cmd) {
            found.push(format!("{name} {}", cmd.trim_end()));
        }
    }
    found
}

/// Waits up to `limit` for no process to match; returns those still there.
async fn gone(pick: impl Fn(&str) -> bool, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes(&pick);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to `limit` for some process to match.
async fn appears(pick: impl Fn(&str) -> bool, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let found = processes(&pick);
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stdout(result: &Value) -> &str {
    result["stdout"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_runs_on_its_node_and_streams_its_output() {
    let mut fleet = Fleet::new("remote-run");
    let node3 = fleet.node(3);
    let result = fleet
        .run(
            "hello",
            &node3,
            "echo \"on $FLEET_NODE in $(pwd)\"; echo warn >&2; printf '{\"n\": 3}'",
            None,
        )
        .await
        .expect("the command succeeds on node3");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(stdout(&result), format!("on node3 in {home}\n{{\"n\": 3}}"));
    assert_eq!(result["stderr"], "warn");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(
        result["json"],
        Value::Null,
        "two lines are not one JSON value"
    );
    let output = fleet.output("hello");
    assert!(
        output.contains(&(Stream::Stdout, format!("on node3 in {home}"))),
        "{output:?}"
    );
    assert!(
        output.contains(&(Stream::Stderr, "warn".to_owned())),
        "{output:?}"
    );
    assert_eq!(
        output.len(),
        3,
        "the wrapper's own lines are not output: {output:?}"
    );

    // cwd, env and an argv command, and a failing exit with its result.
    let mut cmd = CommandLine::argv(vec![
        "sh".into(),
        "-c".into(),
        "pwd; echo \"$GREETING\"; exit 3".into(),
    ]);
    cmd.cwd = Some("/tmp".into());
    cmd.env
        .push(("GREETING".into(), "it's a \"quoted\" $value".into()));
    let failure = fleet
        .remote
        .run(&fleet.rt, &NodeId::step("fails"), &node3, &cmd, None)
        .await
        .expect_err("exit 3 fails the step");
    assert_eq!(failure.message, "exited with code 3");
    let result = failure.result.expect("a failed command keeps its result");
    assert_eq!(stdout(&result), "/tmp\nit's a \"quoted\" $value");
    assert_eq!(result["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_to_one_host_share_one_connection() {
    let fleet = Fleet::new("remote-mux");
    let node1 = fleet.node(1);
    // Ten steps start on a new host at once: one connection is opened, and all use it.
    let runs = (0..10).map(|i| {
        let fleet = &fleet;
        let node1 = &node1;
        async move {
            fleet
                .run(&format!("step{i}"), node1, "echo $SSH_CONNECTION", None)
                .await
        }
    });
    let results: Vec<_> = futures_join(runs).await;
    let mut client_ports = std::collections::BTreeSet::new();
    for result in &results {
        let result = result.as_ref().expect("each command succeeds");
        // `SSH_CONNECTION`: client address and port, server address and port.
        let fields: Vec<&str> = stdout(result).split_whitespace().collect();
        assert_eq!(fields.get(2), Some(&"127.0.0.2"), "{fields:?}");
        client_ports.insert(fields[1].to_owned());
    }
    assert_eq!(
        client_ports.len(),
        1,
        "every session came over one TCP connection: {client_ports:?}"
    );
    assert_eq!(fleet.masters().len(), 1, "{:?}", fleet.masters());
    for i in 0..5 {
        fleet
            .run(&format!("later{i}"), &node1, "true", None)
            .await
            .expect("a later command succeeds");
    }
    assert_eq!(fleet.masters().len(), 1, "{:?}", fleet.masters());
    // Another host has a connection of its own; a target naming node1 differently shares it.
    fleet
        .run("other", &fleet.node(2), "true", None)
        .await
        .expect("node2 answers");
    let mut renamed = node1.clone();
    renamed.key = "db-primary".into();
    fleet
        .run("renamed", &renamed, "true", None)
        .await
        .expect("node1 answers under another name");
    assert_eq!(fleet.masters().len(), 2, "{:?}", fleet.masters());

    fleet.remote.close().await;
    assert!(fleet.masters().is_empty(), "{:?}", fleet.masters());
    assert!(fleet.remote.control_dir().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_command_is_killed_on_the_host() {
    let fleet = Fleet::with_grace("remote-timeout", Duration::from_secs(1));
    let node2 = fleet.node(2);
    let marker = unique() % 100_000 + 600_000;
    // A member that ignores SIGTERM gets the SIGKILL after the grace period.
    let script = format!("sleep {marker} & trap '' TERM; sleep {}", marker + 1);
    let started = Instant::now();
    let failure = fleet
        .run("slow", &node2, &script, Some(Duration::from_secs(2)))
        .await
        .expect_err("the timeout fails the step");
    assert_eq!(
        failure,
        "timed out after 2s; its process group on node2 was killed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let left = gone(
        |cmd| {
            cmd.contains(&format!("sleep {marker}"))
                || cmd.contains(&format!("sleep {}", marker + 1))
        },
        Duration::from_secs(3),
    )
    .await;
    assert!(left.is_empty(), "still running on the host: {left:?}");
    // The connection survives and serves the next step.
    assert_eq!(
        stdout(
            &fleet
                .run("next", &node2, "echo ok", None)
                .await
                .expect("next runs")
        ),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_command_is_stopped_on_the_host() {
    let fleet = Fleet::new("remote-cancel");
    let node1 = fleet.node(1);
    let marker = unique() % 100_000 + 700_000;
    let script = format!("sleep {marker}");
    let sleeping = format!("sleep {marker}");
    let cancel = fleet.rt.cancel.clone();
    let stopper = async {
        let found = appears(|cmd| cmd.contains(&sleeping), Duration::from_secs(20)).await;
        assert!(!found.is_empty(), "the command started on the host");
        cancel.cancel();
    };
    let (failure, ()) = tokio::join!(fleet.run("long", &node1, &script, None), stopper);
    assert_eq!(
        failure.expect_err("cancellation fails the step"),
        "interrupted; its process group on node1 was stopped"
    );
    let left = gone(|cmd| cmd.contains(&sleeping), Duration::from_secs(3)).await;
    assert!(left.is_empty(), "still running on the host: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_right_after_the_start_still_reaches_the_host() {
    let fleet = Fleet::new("remote-early-cancel");
    let node1 = fleet.node(1);
    // Connected first, so that the cancellation lands while the command is being started.
    fleet
        .run("warm", &node1, "true", None)
        .await
        .expect("node1 answers");
    let marker = unique() % 100_000 + 800_000;
    let sleeping = format!("sleep {marker}");
    let cancel = fleet.rt.cancel.clone();
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        cancel.cancel();
    };
    let (failure, ()) = tokio::join!(fleet.run("early", &node1, &sleeping, None), stopper);
    assert!(
        failure
            .expect_err("cancellation fails the step")
            .starts_with("interrupted"),
    );
    let left = gone(|cmd| cmd.contains(&sleeping), Duration::from_secs(3)).await;
    assert!(left.is_empty(), "still running on the host: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_on_purpose_outlives_its_step() {
    let fleet = Fleet::new("remote-daemon");
    let node2 = fleet.node(2);
    let marker = unique() % 100_000 + 900_000;
    let (quiet, chatty) = (format!("sleep {marker}"), format!("sleep {}", marker + 1));
    let started = Instant::now();
    // One daemon detached properly; one that keeps the step's output open.
    let result = fleet
        .run(
            "start_daemons",
            &node2,
            &format!("setsid {quiet} >/dev/null 2>&1 </dev/null & nohup {chatty} & echo started"),
            None,
        )
        .await
        .expect("the step ends normally");
    assert_eq!(stdout(&result), "started");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = processes(|cmd| cmd.contains(&quiet) || cmd.contains(&chatty));
    for pid in running
        .iter()
        .filter_map(|p| p.split(' ').next()?.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(running.len(), 2, "both daemons still run: {running:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_fails_with_unreachable_and_sshs_reason() {
    let fleet = Fleet::new("remote-unreachable");
    let refused = HostTarget::ad_hoc("127.0.0.1", Some(1)).with_option("BatchMode=yes");
    assert_eq!(refused.key, "127.0.0.1:1");
    let failure = fleet
        .run("refused", &refused, "true", None)
        .await
        .expect_err("nothing listens on port 1");
    assert!(failure.starts_with("unreachable: "), "{failure}");
    assert!(
        failure.contains("connect to host 127.0.0.1 port 1: Connection refused"),
        "{failure}"
    );

    // Reached, but the key is not accepted.
    let stranger = fleet
        .node(3)
        .with_identity_file(fleet.dir().join("host_key"));
    let failure = fleet
        .run("refused_key", &stranger, "true", None)
        .await
        .expect_err("the host key is not an authorized client key");
    assert!(failure.starts_with("unreachable: "), "{failure}");
    assert!(failure.contains("Permission denied"), "{failure}");
    assert!(
        failure.contains("127.0.0.4"),
        "the reason names the host: {failure}"
    );

    // A name that does not resolve.
    let nowhere = HostTarget::ad_hoc("no-such-host.invalid", None);
    let failure = fleet
        .run("nowhere", &nowhere, "true", None)
        .await
        .expect_err("the name does not resolve");
    assert!(failure.starts_with("unreachable: "), "{failure}");
    assert!(failure.contains("no-such-host.invalid"), "{failure}");
    assert!(fleet.masters().is_empty(), "{:?}", fleet.masters());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_command_line_on_either_side() {
    let fleet = Fleet::new("remote-secret");
    let node1 = fleet.node(1);
    let (in_script, in_env) = (
        format!("scriptcanary{}", unique()),
        format!("envcanary{}", unique()),
    );
    let mut cmd = CommandLine::script(
        "sh",
        &format!("token={in_script}; echo \"${{#token}} $TOKEN\"; sleep 3"),
    );
    cmd.env.push(("TOKEN".into(), in_env.clone()));
    let canaries = [in_script.clone(), in_env.clone()];
    let watcher = async {
        let mut seen = Vec::new();
        let mut looked = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            seen.extend(processes(|c| canaries.iter().any(|k| c.contains(k))));
            // The command runs: its shell is there, with the secret in its environment only.
            looked += usize::from(!processes(|c| c.contains("/dev/fd/3")).is_empty());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (seen, looked)
    };
    let id = NodeId::step("secret");
    let (result, (seen, looked)) = tokio::join!(
        fleet.remote.run(&fleet.rt, &id, &node1, &cmd, None),
        watcher
    );
    let result = result.expect("the command succeeds");
    assert_eq!(stdout(&result), format!("{} {in_env}", in_script.len()));
    assert!(looked > 10, "the command was seen running ({looked} looks)");
    assert!(seen.is_empty(), "a secret on a command line: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one transfer scenario told in order: while it runs, the same again, into a folder"
)]
async fn an_upload_is_never_a_half_file_and_is_not_sent_twice() {
    let fleet = Fleet::new("remote-upload");
    let node2 = fleet.node(2);
    let id = NodeId::step("upload");
    let source = fleet.drill.root().join("big.bin");
    let big = pattern(48 << 20, 2_654_435_761);
    std::fs::write(&source, &big).expect("the source can be written");
    let target_dir = fleet.drill.root().join("on-node2");
    std::fs::create_dir(&target_dir).expect("a folder on the host");
    let dest = target_dir.join("big.bin");
    std::fs::write(&dest, b"the old version").expect("an old version");
    let old_len = 15;
    let dest_text = dest.display().to_string();

    // While the upload runs, `dest` is the old file or the whole new one, never anything else.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = Arc::clone(&watching);
        let dest = dest.clone();
        let new_len = big.len() as u64;
        std::thread::spawn(move || {
            let mut sizes = std::collections::BTreeSet::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(meta) = std::fs::metadata(&dest) {
                    sizes.insert(meta.len());
                }
            }
            sizes.retain(|&s| s != old_len && s != new_len);
            sizes
        })
    };
    let upload = fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Path(source.clone()),
            &dest_text,
            Some(0o640),
        )
        .await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let odd_sizes = watcher.join().expect("the watcher ends");
    let result = upload.expect("the upload succeeds");
    assert!(
        odd_sizes.is_empty(),
        "dest had a partial size: {odd_sizes:?}"
    );
    let sha = sha256_of(&big);
    assert_eq!(result, serde_json::json!({"changed": true, "sha256": sha}));
    assert_eq!(std::fs::read(&dest).expect("dest is there"), big);
    assert_eq!(mode_of(&dest), 0o640);
    assert_eq!(
        std::fs::read_dir(&target_dir).expect("listable").count(),
        1,
        "no temporary file is left beside dest"
    );

    // The same again: nothing is sent, nothing is written.
    let inode = inode_of(&dest);
    let again = fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Path(source.clone()),
            &dest_text,
            Some(0o640),
        )
        .await
        .expect("the second upload succeeds");
    assert_eq!(again, serde_json::json!({"changed": false, "sha256": sha}));
    assert_eq!(inode_of(&dest), inode, "dest was not replaced");

    // Into a folder, under the source's name; content; a missing folder is not created.
    let into = fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Content(b"port = 5432\n".to_vec()),
            &format!("{}/app.conf", target_dir.display()),
            None,
        )
        .await
        .expect("content is uploaded");
    assert_eq!(into["changed"], true);
    assert_eq!(into["sha256"], sha256_of(b"port = 5432\n"));
    assert_eq!(
        std::fs::read_to_string(target_dir.join("app.conf")).expect("written"),
        "port = 5432\n"
    );
    let same = fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Content(b"port = 5432\n".to_vec()),
            &format!("{}/app.conf", target_dir.display()),
            None,
        )
        .await
        .expect("identical content");
    assert_eq!(same["changed"], false);
    let small = fleet.drill.root().join("small.txt");
    std::fs::write(&small, "small\n").expect("written");
    fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Path(small),
            &format!("{}/", target_dir.display()),
            None,
        )
        .await
        .expect("uploaded into the folder");
    assert_eq!(
        std::fs::read_to_string(target_dir.join("small.txt")).expect("written"),
        "small\n"
    );
    let missing = fleet
        .upload(
            &id,
            &node2,
            &UploadSource::Content(b"x".to_vec()),
            &format!("{}/no/such/app.conf", target_dir.display()),
            None,
        )
        .await
        .expect_err("the folder does not exist");
    assert!(missing.message.contains("no folder"), "{}", missing.message);
    assert!(missing.message.contains("node2"), "{}", missing.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_never_a_half_file_and_is_not_fetched_twice() {
    let fleet = Fleet::new("remote-download");
    let node3 = fleet.node(3);
    let id = NodeId::step("download");
    let on_host = fleet.drill.root().join("remote.bin");
    let data = pattern(32 << 20, 40_503);
    std::fs::write(&on_host, &data).expect("written");
    let here = fleet.drill.root().join("here");
    std::fs::create_dir(&here).expect("a folder");
    let dest = here.join("copy.bin");
    std::fs::write(&dest, b"stale").expect("a stale copy");

    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = Arc::clone(&watching);
        let dest = dest.clone();
        let new_len = data.len() as u64;
        std::thread::spawn(move || {
            let mut sizes = std::collections::BTreeSet::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(meta) = std::fs::metadata(&dest) {
                    sizes.insert(meta.len());
                }
            }
            sizes.retain(|&s| s != 5 && s != new_len);
            sizes
        })
    };
    let download = fleet
        .download(&id, &node3, &on_host.display().to_string(), &dest)
        .await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let odd = watcher.join().expect("the watcher ends");
    let result = download.expect("the download succeeds");
    assert!(odd.is_empty(), "dest had a partial size: {odd:?}");
    assert_eq!(
        result,
        serde_json::json!({"changed": true, "sha256": sha256_of(&data)})
    );
    assert_eq!(std::fs::read(&dest).expect("there"), data);
    assert_eq!(std::fs::read_dir(&here).expect("listable").count(), 1);

    let inode = inode_of(&dest);
    let again = fleet
        .download(&id, &node3, &on_host.display().to_string(), &dest)
        .await
        .expect("the second download succeeds");
    assert_eq!(again["changed"], false);
    assert_eq!(inode_of(&dest), inode);

    let missing = fleet
        .remote
        .download(&fleet.rt, &id, &node3, "/no/such/file", &here.join("x"))
        .await
        .expect_err("nothing to download");
    assert!(
        missing.message.contains("no such file or folder"),
        "{}",
        missing.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_travel_whole_both_ways() {
    let fleet = Fleet::new("remote-folders");
    let node1 = fleet.node(1);
    let id = NodeId::step("folders");
    let tree = fleet.drill.root().join("conf.d");
    std::fs::create_dir_all(tree.join("sub")).expect("folders");
    std::fs::write(tree.join("a.conf"), "a\n").expect("written");
    std::fs::write(tree.join("sub/b.conf"), "b\n").expect("written");
    let on_host = fleet.drill.root().join("etc");
    std::fs::create_dir_all(on_host.join("conf.d")).expect("folders");
    std::fs::write(on_host.join("conf.d/obsolete.conf"), "old\n").expect("written");

    let up = fleet
        .upload(
            &id,
            &node1,
            &UploadSource::Path(tree.clone()),
            &format!("{}/", on_host.display()),
            None,
        )
        .await
        .expect("the folder is uploaded");
    assert_eq!(up["changed"], true);
    assert_eq!(
        std::fs::read_to_string(on_host.join("conf.d/sub/b.conf")).expect("there"),
        "b\n"
    );
    assert!(
        !on_host.join("conf.d/obsolete.conf").exists(),
        "the folder was replaced whole"
    );
    assert_eq!(std::fs::read_dir(&on_host).expect("listable").count(), 1);
    let again = fleet
        .upload(
            &id,
            &node1,
            &UploadSource::Path(tree.clone()),
            &format!("{}/", on_host.display()),
            None,
        )
        .await
        .expect("identical");
    assert_eq!(again["changed"], false);
    assert_eq!(again["sha256"], up["sha256"]);

    let back = fleet.drill.root().join("back");
    std::fs::create_dir(&back).expect("a folder");
    let down = fleet
        .download(
            &id,
            &node1,
            &on_host.join("conf.d").display().to_string(),
            &back.join("conf.d"),
        )
        .await
        .expect("the folder is downloaded");
    assert_eq!(down["changed"], true);
    assert_eq!(down["sha256"], up["sha256"]);
    assert_eq!(
        std::fs::read_to_string(back.join("conf.d/a.conf")).expect("there"),
        "a\n"
    );
    let again = fleet
        .download(
            &id,
            &node1,
            &on_host.join("conf.d").display().to_string(),
            &back.join("conf.d"),
        )
        .await
        .expect("identical");
    assert_eq!(again["changed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_remote_leaves_no_connection_behind() {
    let fleet = Fleet::new("remote-drop");
    let dir = {
        let remote = Remote::new("remote-drop-run");
        remote
            .run(
                &fleet.rt,
                &NodeId::step("one"),
                &fleet.node(1),
                &CommandLine::script("sh", "true"),
                None,
            )
            .await
            .expect("node1 answers");
        remote
            .control_dir()
            .expect("a control folder while connected")
    };
    let dir_text = dir.display().to_string();
    let left = gone(
        |cmd| cmd.contains("ControlMaster=yes") && cmd.contains(&dir_text),
        Duration::from_secs(3),
    )
    .await;
    assert!(left.is_empty(), "a master outlived its Remote: {left:?}");
    assert!(!dir.exists(), "the control folder is removed");
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// `len` bytes that do not repeat in any short cycle (a transfer cannot pass by luck).
fn pattern(len: u32, factor: u32) -> Vec<u8> {
    (0..len)
        .map(|i| i.wrapping_mul(factor).rotate_right(13).to_le_bytes()[0])
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("there").permissions().mode() & 0o7777
}

fn inode_of(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).expect("there").ino()
}

/// Runs futures together, in order of their results.
async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none()
                && let std::task::Poll::Ready(out) = f.as_mut().poll(cx)
            {
                outputs[i] = Some(out);
            }
        }
        if outputs.iter().all(Option::is_some) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
