//! Param values checked against the runbook's declarations before anything runs: `enum` and
//! `pattern`, for values given with `--set` (the flag is named) and in `--params` files (the
//! value is pointed at, `file:line:col`).

use crate::run_support::Sandbox;

const CHOICES: &str = r#"
name: choices
params:
  env:
    enum: [staging, production]
    default: staging
  tag:
    pattern: "v[0-9]+"
    default: v1
steps:
  - id: deploy
    run: "echo {{ params.env }} {{ params.tag }} >> deployed"
"#;

#[test]
fn a_set_value_outside_the_params_enum_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.runbook(CHOICES);
    let refused = sb.run(&["--set", "env=prod"]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("param `env` (--set env=prod): `prod` is not one of staging, production"),
        "{}",
        refused.stderr
    );
    assert!(!sb.exists("deployed"), "nothing ran");

    sb.run(&["--set", "env=production", "--set", "tag=v2"])
        .expect_code(0);
    assert_eq!(sb.read("deployed"), "production v2\n");
}

#[test]
fn a_set_value_must_match_the_whole_pattern() {
    let sb = Sandbox::new();
    sb.runbook(CHOICES);
    let refused = sb.run(&["--set", "tag=v2-rc1"]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("(--set tag=v2-rc1): `v2-rc1` does not match its pattern `v[0-9]+`"),
        "{}",
        refused.stderr
    );
    assert!(!sb.exists("deployed"), "nothing ran");
}

#[test]
fn a_params_file_value_outside_the_enum_is_pointed_at() {
    let sb = Sandbox::new();
    sb.runbook(CHOICES);
    sb.write("prod.yaml", "tag: v7\nenv: prod\n");
    let refused = sb.run(&["--params", "prod.yaml"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains(
            "prod.yaml:2:6: error: param `env`: `prod` is not one of staging, production"
        ),
        "located at the value: {}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("`env` takes one of: staging, production"),
        "the hint lists the values: {}",
        refused.stderr
    );
    assert!(!sb.exists("deployed"), "nothing ran");
}

#[test]
fn an_unknown_name_in_a_params_file_is_pointed_at_with_a_suggestion() {
    let sb = Sandbox::new();
    sb.runbook(CHOICES);
    sb.write("prod.yaml", "tag: v7\nevn: staging\n");
    let refused = sb.run(&["--params", "prod.yaml"]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("prod.yaml:2:1: error: unknown param `evn`"),
        "located at the name: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("did you mean `env`?"),
        "{}",
        refused.stderr
    );
    assert!(!sb.exists("deployed"), "nothing ran");
}
