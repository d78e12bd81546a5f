//! `runbook report`: the evidence of real runs. The demo drill, run for real with its manual
//! step approved by `resume --approve … --as`, is reported as Markdown (snapshot), as JSON
//! (validated against the shipped `schemas/report.schema.json`) and as HTML, which a real
//! headless Chromium loads and renders to a PNG. Paused, failed and resumed runs are reported
//! too.
//!
//! After changing the report's model (`engine/report/evidence/model.rs`), regenerate the schema
//! with `UPDATE_SCHEMA=1 cargo test --test cli report::`.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

use crate::run_support::{Run, Sandbox, free_port, repo};

const REPORT_SCHEMA: &str = "schemas/report.schema.json";

/// Every step id of the demo drill.
const DRILL_STEPS: [&str; 19] = [
    "prepare",
    "seed_data",
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

const APPROVER: &str = "Alice Auditor";

/// The demo drill, run for real in a sandbox and paused at its manual step, then approved by
/// `resume --approve go_ahead --as "Alice Auditor"`.
///
/// The copy differs from `runbooks/demo/drill.yaml` in one line: `wipe` is not marked
/// destructive. Without a terminal, only `--yes` confirms a destructive step, and `--yes`
/// approves manual steps too (today's engine), so the drill would never pause for a person.
fn drill_approved() -> (Sandbox, String) {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(repo().join("runbooks/demo/drill.yaml"))
        .expect("the demo drill is readable");
    assert!(text.contains("    destructive: true\n"));
    sb.write(
        "drill.yaml",
        &text.replacen("    destructive: true\n", "", 1),
    );
    let workdir = sb.join("work");
    let port = free_port();
    let (workdir, port) = (
        format!("workdir={}", workdir.display()),
        format!("port={port}"),
    );
    let args = ["--run-id", "drill", "--set", &workdir, "--set", &port];
    sb.run_file("drill.yaml", &args).expect_code(3);
    let resumed = sb.cli(&["resume", "drill", "--approve", "go_ahead", "--as", APPROVER]);
    resumed.expect_code(0);
    (sb, "drill".to_owned())
}

fn report(sb: &Sandbox, run: &str, format: &str) -> Run {
    let run = sb.cli(&["report", run, "--format", format]);
    run.expect_code(0);
    run
}

/// The Markdown with what changes from run to run replaced: times, durations, pids, hashes,
/// the sandbox's path, the port, who and where.
fn normalized(text: &str, sb: &Sandbox) -> String {
    // Who started the run and where, as the run recorded them.
    let json: Value =
        serde_json::from_str(&report(sb, "drill", "json").stdout).expect("the report is JSON");
    let user = json["processes"][0]["user"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let host = json["processes"][0]["host"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut text = text.replace(&sb.path().display().to_string(), "<sandbox>");
    for (pattern, with) in [
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "<time>"),
        (r"\b[0-9a-f]{64}\b", "<sha256>"),
        (r"\b[0-9a-f]{40}\b", "<commit>"),
        (r"port \| `\d+`", "port | `<port>`"),
        (
            r"\| (started|resumed) \| ([^|]*) \| ([^|]*) \| \d+ \|",
            "| $1 | $2 | $3 | <pid> |",
        ),
        (r"\b\d+(?:\.\d+)?(?:ms|s|m|h)(?:\d+(?:s|m|h))*\b", "<dur>"),
    ] {
        text = Regex::new(pattern)
            .expect("a valid pattern")
            .replace_all(&text, with)
            .into_owned();
    }
    if !user.is_empty() {
        text = text.replace(&format!("| {user} |"), "| <user> |");
        text = text.replace(&format!("{user}@"), "<user>@");
    }
    if !host.is_empty() {
        text = text.replace(&format!("| {host} |"), "| <host> |");
        text = text.replace(&format!("@{host}"), "@<host>");
    }
    text
}

#[test]
fn the_demo_drill_as_markdown() {
    let (sb, run) = drill_approved();
    let md = report(&sb, &run, "md").stdout;
    for id in DRILL_STEPS {
        assert!(md.contains(&format!("`{id}`")), "{id} missing:\n{md}");
    }
    assert!(md.contains(&format!("| approved | {APPROVER} |")), "{md}");
    assert!(md.contains("`runbook resume --approve`"), "{md}");
    insta::assert_snapshot!(normalized(&md, &sb));
}

fn report_schema() -> Value {
    let text = std::fs::read_to_string(repo().join(REPORT_SCHEMA))
        .unwrap_or_else(|e| panic!("{REPORT_SCHEMA} is readable: {e}"));
    serde_json::from_str(&text).expect("the report schema is JSON")
}

#[test]
fn the_checked_in_report_schema_matches_the_rust_types() {
    let generated = runbook::report::json::schema_json();
    let path = repo().join(REPORT_SCHEMA);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("the schema can be written");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{REPORT_SCHEMA} is out of date; regenerate it with `UPDATE_SCHEMA=1 cargo test --test cli report::`"
    );
}

#[test]
fn the_demo_drill_as_json_follows_the_shipped_schema() {
    let (sb, run) = drill_approved();
    let text = report(&sb, &run, "json").stdout;
    let document: Value = serde_json::from_str(&text).expect("the report is JSON");
    let validator = jsonschema::validator_for(&report_schema()).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    assert_eq!(document["run"]["status"], "succeeded");
    assert_eq!(document["runbook"]["name"], "demo-drill");
    let sha = document["runbook"]["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha.len(), 64, "{sha}");
    let ids: Vec<&str> = document["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, DRILL_STEPS);
    let approvals = document["approvals"].as_array().expect("approvals");
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["step"], "go_ahead");
    assert_eq!(approvals[0]["by"], APPROVER);
    assert_eq!(approvals[0]["decision"], "approved");
    let processes = document["processes"].as_array().expect("processes");
    assert_eq!(
        processes
            .iter()
            .map(|p| p["kind"].as_str())
            .collect::<Vec<_>>(),
        [Some("started"), Some("resumed")]
    );
    let totals = &document["totals"];
    let ttr = totals["time_to_recovery_ms"].as_u64().expect("recovered");
    let waiting = totals["waiting_for_people_ms"].as_u64().unwrap_or_default();
    let elapsed = totals["elapsed_ms"].as_u64().unwrap_or_default();
    assert!(waiting > 0, "the pause is time waiting for a person");
    assert!(ttr >= waiting && ttr <= elapsed, "{totals}");
    assert!(
        totals["polling_ms"].as_u64().unwrap_or_default() > 0,
        "{totals}"
    );
    let go_ahead = document["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "go_ahead"))
        .expect("go_ahead");
    assert_eq!(go_ahead["waiting_ms"].as_u64(), Some(waiting), "{go_ahead}");
    assert_eq!(go_ahead["work_ms"].as_u64(), Some(0), "{go_ahead}");
}

/// The Chromium the distribution ships (`tests/run.sh` installs it).
fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
        .expect("Chromium is installed (tests/run.sh installs it: apt-get install chromium)")
}

/// Chromium, headless, on a page: its stdout and stderr.
fn headless(page: &Path, args: &[&str], profile: &Path) -> (String, String) {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_demo_drill_as_html_loads_in_a_real_browser() {
    let (sb, run) = drill_approved();
    let page = sb.join("drill.html");
    sb.cli(&["report", &run, "-o", page.to_str().expect("a UTF-8 path")])
        .expect_code(0);
    let html = std::fs::read_to_string(&page).expect("the report was written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no script");
    for attribute in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(
            !html.contains(attribute),
            "fetches from the network: {attribute}"
        );
    }

    let profile = sb.join("chromium-profile");
    let (dom, log) = headless(&page, &["--dump-dom"], &profile);
    for id in DRILL_STEPS {
        assert!(dom.contains(id), "{id} not on the page");
    }
    assert!(dom.contains(APPROVER), "the approver is not on the page");
    assert!(dom.contains("time to recovery"), "{dom}");
    let json: Value =
        serde_json::from_str(&report(&sb, &run, "json").stdout).expect("the report is JSON");
    let ttr = json["totals"]["time_to_recovery_ms"]
        .as_u64()
        .expect("recovered");
    let shown = runbook::report::markdown::duration(ttr);
    assert!(
        dom.contains(&shown),
        "time to recovery {shown} not on the page"
    );
    for line in log.lines() {
        assert!(
            !line.contains("CONSOLE") && !line.contains("net::ERR") && !line.contains("Uncaught"),
            "the page logged an error: {line}"
        );
    }

    let png = sb.join("drill.png");
    let (_, log) = headless(
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1800",
            "--hide-scrollbars",
        ],
        &profile,
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "a {}-byte screenshot is blank",
        bytes.len()
    );
    if let Some(dir) = std::env::var_os("RUNBOOK_REPORT_SCREENSHOT") {
        let _ = std::fs::copy(&png, PathBuf::from(dir).join("report.png"));
    }
}

#[test]
fn a_paused_run_reports_who_it_waits_for_and_how_to_continue() {
    let sb = Sandbox::new();
    sb.runbook(
        "name: approve-me\nsecrets:\n  token: { env: REPORT_TOKEN }\nsteps:\n  - id: before\n    run: echo using {{ secrets.token }}\n  - id: approve\n    manual: Check the dashboard\n  - id: after\n    run: echo after\n",
    );
    let mut cmd = sb.command(["run", "runbook.yaml", "--no-progress", "--run-id", "p1"]);
    cmd.env("REPORT_TOKEN", "hunter2-secret");
    let out = cmd.output().expect("runs");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let md = report(&sb, "p1", "md").stdout;
    assert!(md.contains("| status | **paused** |"), "{md}");
    assert!(md.contains("Waiting for a person at: `approve`."), "{md}");
    assert!(
        md.contains("To continue: `runbook resume p1 --approve approve`"),
        "{md}"
    );
    assert!(md.contains("| token | `***` (secret) |"), "{md}");
    for format in ["md", "json", "html"] {
        let text = report(&sb, "p1", format).stdout;
        assert!(
            !text.contains("hunter2-secret"),
            "{format} shows the secret"
        );
    }
}

#[test]
fn a_failed_then_resumed_run_shows_each_process_and_the_failure_log() {
    let sb = Sandbox::new();
    sb.write("fixed", "");
    sb.runbook(
        "name: flaky\nsteps:\n  - id: first\n    run: echo one\n  - id: fragile\n    run: |\n      echo checking the marker\n      test -s fixed || { echo marker empty >&2; exit 7; }\n  - id: last\n    run: echo done\n",
    );
    sb.run(&["--run-id", "f1"]).expect_code(1);
    let md = report(&sb, "f1", "md").stdout;
    assert!(md.contains("| status | **failed** |"), "{md}");
    assert!(md.contains("### `fragile` (failed)"), "{md}");
    assert!(md.contains("marker empty"), "the log's last lines: {md}");
    assert!(md.contains("To continue: `runbook resume f1`"), "{md}");
    assert!(md.contains("| time to recovery | not recovered |"), "{md}");

    sb.write("fixed", "yes");
    sb.cli(&["resume", "f1"]).expect_code(0);
    let json: Value = serde_json::from_str(&report(&sb, "f1", "json").stdout).expect("JSON");
    assert_eq!(json["run"]["status"], "succeeded");
    let outcomes: Vec<&str> = json["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["failed", "succeeded"]);
    let fragile = json["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "fragile"))
        .expect("fragile");
    let processes: Vec<u64> = fragile["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["process"].as_u64())
        .collect();
    assert_eq!(processes, [1, 2], "one attempt in each process");
    let failure = &json["failures"][0];
    assert_eq!(failure["step"], "fragile");
    assert_eq!(failure["status"], "succeeded", "failed, then got through");
    assert!(json["totals"]["time_to_recovery_ms"].as_u64().is_some());
    assert!(json["totals"]["stopped_ms"].as_u64().is_some());

    let html = report(&sb, "f1", "html").stdout;
    assert!(
        html.contains("marker empty"),
        "the failure's log in the page"
    );
}

#[test]
fn an_unknown_run_is_an_error() {
    let sb = Sandbox::new();
    let run = sb.cli(&["report", "nope"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no run `nope`"), "{}", run.stderr);
}
