//! Commands for finding and checking runbooks: `list`, `describe`, `validate --format
//! json|github`, shell completions and the manual page.

use crate::run_support::Sandbox;

const RESTORE: &str = r"
name: restore
description: Restore a cluster from one snapshot.
params:
  uuid: { type: string, required: true, description: snapshot UUID }
  ports: { type: list, default: [8080, 8181] }
steps:
  - id: stop
    name: Stop every node
    for_each: params.ports
    as: port
    run: echo stop {{ port }}
  - id: wipe
    destructive: true
    run: echo wipe
  - id: grouped
    block:
      - id: inner
        run: echo inner
finally:
  - id: note
    run: echo note
";

fn catalogue() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("ops/restore.yaml", RESTORE);
    sb.write("ops/params/prod.yaml", "uuid: abc\n");
    sb.write(
        "ops/broken.yaml",
        "name: broken\nsteps:\n  - id: a\n    needs: [nope]\n    run: x\n",
    );
    sb.write("docker-compose.yml", "services:\n  web: { image: nginx }\n");
    sb.write(".runbook/runs/r1/runbook/copy.yaml", RESTORE);
    sb
}

#[test]
fn list_shows_the_runbooks_found_with_their_params() {
    let sb = catalogue();
    let listed = sb.cli(&["list"]);
    listed.expect_code(0);
    let out = &listed.stdout;
    assert!(out.contains("ops/restore.yaml  restore\n"), "{out}");
    assert!(
        out.contains("    Restore a cluster from one snapshot.\n"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("uuid")
            && l.contains("required")
            && l.contains("snapshot UUID")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("ports")
            && l.contains("list")
            && l.contains("default [8080,8181]")),
        "{out}"
    );
    assert!(
        out.contains("ops/broken.yaml  (1 mistake: runbook validate ops/broken.yaml)"),
        "{out}"
    );
    for absent in ["prod.yaml", "docker-compose", "copy.yaml"] {
        assert!(
            !out.contains(absent),
            "{absent} is no runbook of this folder: {out}"
        );
    }

    let json = sb.cli(&["list", "ops", "--format", "json"]);
    json.expect_code(0);
    let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let restore = list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["name"] == "restore"))
        .expect("restore is listed");
    assert_eq!(restore["params"][0]["name"], "uuid");
    assert_eq!(
        restore["params"][1]["default"],
        serde_json::json!([8080, 8181])
    );

    let nowhere = sb.cli(&["list", "no-such-folder"]);
    nowhere.expect_code(2);
    assert!(
        nowhere.stderr.contains("No such file or directory"),
        "{}",
        nowhere.stderr
    );
}

#[test]
fn describe_shows_one_runbooks_steps_with_their_names() {
    let sb = catalogue();
    let described = sb.cli(&["describe", "ops/restore.yaml"]);
    described.expect_code(0);
    let out = &described.stdout;
    assert!(out.starts_with("restore (ops/restore.yaml)\n"), "{out}");
    assert!(out.contains("Stop every node"), "{out}");
    let stop = out.find(" 1. stop").expect("stop is first");
    let wipe = out.find(" 2. wipe").expect("wipe is second");
    let inner = out.find(" 1. inner").expect("the block's step");
    let note = out.find("finally:").expect("finally");
    assert!(stop < wipe && wipe < inner && inner < note, "{out}");
    assert!(out.contains("DESTRUCTIVE"), "{out}");
    assert!(out.contains("for each port in params.ports"), "{out}");

    let broken = sb.cli(&["describe", "ops/broken.yaml"]);
    broken.expect_code(2);
    assert!(
        broken.stderr.contains("broken.yaml:4:"),
        "{}",
        broken.stderr
    );
}

#[test]
fn validate_speaks_json_and_github_annotations_for_ci() {
    let sb = catalogue();
    let json = sb.cli(&[
        "validate",
        "ops/broken.yaml",
        "ops/restore.yaml",
        "--format",
        "json",
    ]);
    json.expect_code(2);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["valid"], false);
    assert_eq!(document["mistakes"], 1);
    let files = document["files"].as_array().expect("files");
    let broken = files
        .iter()
        .find(|f| f["path"] == "ops/broken.yaml")
        .expect("the broken file");
    let mistake = &broken["mistakes"][0];
    assert_eq!(
        (mistake["line"].as_u64(), mistake["column"].as_u64()),
        (Some(4), Some(13))
    );
    assert!(
        mistake["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope"))
    );
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "ops/restore.yaml" && f["valid"] == true)
    );
    assert!(json.stderr.is_empty(), "JSON only: {}", json.stderr);

    let github = sb.cli(&["validate", "ops/broken.yaml", "--format", "github"]);
    github.expect_code(2);
    let line = github.stdout.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("::error file=ops/broken.yaml,line=4,col=13,title=runbook validate::"),
        "{}",
        github.stdout
    );
    let good = sb.cli(&["validate", "ops/restore.yaml", "--format", "github"]);
    good.expect_code(0);
    assert!(good.stdout.is_empty(), "{}", good.stdout);
}

/// Asks bash to complete `words` (the last one being typed) with the script of `completions
/// bash`; the words it offers.
fn bash_completes(sb: &Sandbox, words: &[&str]) -> Vec<String> {
    let script = sb.cli(&["completions", "bash"]);
    script.expect_code(0);
    sb.write("completion.bash", &script.stdout);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let test = format!(
        "source ./completion.bash\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n_clap_complete_runbook runbook '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(test)
        .current_dir(sb.path())
        .env("RUNBOOK_STATE_DIR", sb.join(".runbook"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_subcommands_options_and_run_ids() {
    let sb = Sandbox::new();
    let offered = bash_completes(&sb, &["runbook", "re"]);
    assert!(offered.iter().any(|w| w == "resume"), "{offered:?}");
    assert!(!offered.iter().any(|w| w == "show"), "{offered:?}");

    let options = bash_completes(&sb, &["runbook", "run", "--dry"]);
    assert_eq!(options, ["--dry-run"]);

    sb.runbook("name: c\nsteps:\n  - id: a\n    run: echo a\n");
    sb.run(&["--run-id", "drill-1"]).expect_code(0);
    for command in ["resume", "show", "logs", "stop"] {
        let ids = bash_completes(&sb, &["runbook", command, ""]);
        assert!(
            ids.iter().any(|w| w == "drill-1") && ids.iter().any(|w| w == "latest"),
            "{command}: {ids:?}"
        );
    }
}

#[test]
fn completions_for_zsh_and_fish_and_the_manual_page_are_printed() {
    let sb = Sandbox::new();
    for shell in ["zsh", "fish"] {
        let script = sb.cli(&["completions", shell]);
        script.expect_code(0);
        assert!(
            script.stdout.contains("COMPLETE="),
            "{shell}: {}",
            script.stdout
        );
    }
    let unknown = sb.cli(&["completions", "tcsh"]);
    unknown.expect_code(2);

    let page = sb.cli(&["man"]);
    page.expect_code(0);
    assert!(page.stdout.contains(".TH runbook"), "{}", page.stdout);
    assert!(page.stdout.contains("resume"), "{}", page.stdout);
    let pages = sb.cli(&["man", "--out-dir", "."]);
    pages.expect_code(0);
    assert!(sb.exists("runbook.1") && sb.exists("runbook-run.1"));
    // A folder not there yet is made; nested subcommands get their page.
    sb.cli(&["man", "--out-dir", "man/man1"]).expect_code(0);
    assert!(sb.exists("man/man1/runbook-state-import.1"));
}
