//! The checked-in JSON Schema (`schemas/runbook.schema.json`): in sync with the Rust types that
//! generate it, accepting every runbook we ship, and rejecting the mistakes it is meant to catch.
//!
//! After changing `engine/spec/schema.rs`, regenerate the file with
//!
//! ```sh
//! UPDATE_SCHEMA=1 cargo test --test cli schema::
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use runbook::spec::schema::schema_json;
use serde_json::Value;

const SCHEMA_FILE: &str = "schemas/runbook.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&schema_json()).expect("the generated schema is JSON");
    jsonschema::validator_for(&schema).expect("the generated schema compiles")
}

/// The schema's complaints about a YAML document, one line each (empty: valid).
fn schema_errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let document: Value = match serde_saphyr::from_str(yaml) {
        Ok(document) => document,
        Err(err) => return vec![format!("not YAML: {err}")],
    };
    validator
        .iter_errors(&document)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// Every `.yaml`/`.yml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn checked_in_schema_matches_the_rust_types() {
    let path = root().join(SCHEMA_FILE);
    let generated = schema_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().expect("the schema file has a folder"))
            .expect("create schemas/");
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("failed to read {SCHEMA_FILE} ({e}); generate it with `UPDATE_SCHEMA=1 cargo test --test cli schema::`")
    });
    assert!(
        checked_in == generated,
        "{SCHEMA_FILE} is out of date with engine/spec/schema.rs; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test cli schema::` and commit the result"
    );
}

#[test]
fn schema_is_a_valid_draft_2020_12_schema() {
    let schema: Value = serde_json::from_str(&schema_json()).expect("the generated schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(err) = jsonschema::meta::validate(&schema) {
        panic!("the generated schema breaks the draft 2020-12 meta-schema: {err}");
    }
}

#[test]
fn every_shipped_runbook_matches_the_schema() {
    let validator = validator();
    let mut files = yaml_files(&root().join("runbooks"));
    assert!(!files.is_empty(), "no runbooks found under runbooks/");
    let fixtures = root().join("tests/fixtures/valid");
    if fixtures.is_dir() {
        files.extend(yaml_files(&fixtures));
    }
    let mut failures = String::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", file.display()));
        let errors = schema_errors(&validator, &text);
        if !errors.is_empty() {
            let shown = file.strip_prefix(root()).unwrap_or(file).display();
            let _ = writeln!(failures, "{shown}:");
            for error in errors {
                let _ = writeln!(failures, "  {error}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "runbooks that break {SCHEMA_FILE}:\n{failures}"
    );
}

/// A valid runbook with `step` as its only step.
fn with_step(step: &str) -> String {
    format!(
        "name: probe\nsteps:\n  - {}\n",
        step.replace('\n', "\n    ")
    )
}

#[track_caller]
fn assert_accepted(yaml: &str) {
    let errors = schema_errors(&validator(), yaml);
    assert!(
        errors.is_empty(),
        "the schema rejects\n{yaml}\n{}",
        errors.join("\n")
    );
}

#[track_caller]
fn assert_rejected(yaml: &str, expected: &str) {
    let errors = schema_errors(&validator(), yaml);
    assert!(!errors.is_empty(), "the schema accepts\n{yaml}");
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "the schema rejects\n{yaml}\nbut no error mentions `{expected}`:\n{}",
        errors.join("\n")
    );
}

#[test]
fn accepts_the_spec_example() {
    assert_accepted(
        r#"
name: devicedb-restore
description: Restore a devicedb cluster from one consistent snapshot.
params:
  uuid:  { type: string, required: true, description: snapshot UUID }
  ports: { type: list, default: [8080, 8181, 8282] }
  root:  { type: string, default: /var/lib/devicedb }
secrets:
  s3_key: { env: S3_ACCESS_KEY }
hosts:
  db1: { ssh: "core@db1.example", port: 22 }
env: { LANG: C.UTF-8 }
defaults: { timeout: 10m, shell: bash, max_parallel: 4 }
steps:
  - id: stop
    name: Stop every node
    for_each: "{{ params.ports }}"
    as: port
    run: devicedb-ctl stop --port {{ port }}
  - id: wipe
    destructive: true
    run: rm -rf {{ params.root }}/ddb*
  - id: restore
    run: [tar, xf, "snapshot-{{ params.uuid }}.tar"]
  - id: health
    http: { method: GET, url: "http://localhost:8080/overview", expect: { status: [200, 204] } }
    until: result.status == 200
    interval: 5s
    timeout: 1h30m
finally:
  - id: note
    run: echo "restore of {{ params.uuid }} ended {{ run.status }}"
"#,
    );
}

#[test]
fn rejects_an_unknown_step_key() {
    assert_rejected(
        &with_step("id: stop\nrun: systemctl stop nginx\nretries: 3"),
        "'retries' was unexpected",
    );
}

#[test]
fn rejects_an_unknown_top_level_key() {
    assert_rejected(
        "name: probe\nsteps: []\nstep: []\n",
        "'step' was unexpected",
    );
}

#[test]
fn rejects_a_duration_without_a_unit() {
    assert_rejected(
        &with_step("id: wait\nsleep: \"30\""),
        "\"30\" does not match",
    );
    assert_rejected(
        &with_step("id: wait\nsleep: 5 minutes"),
        "\"5 minutes\" does not match",
    );
    assert_rejected(
        &with_step("id: wait\nsleep: 30"),
        "30 is not of type \"string\"",
    );
}

#[test]
fn rejects_a_kebab_case_step_id() {
    assert_rejected(
        &with_step("id: stop-core\nrun: systemctl stop core"),
        "\"stop-core\" does not match",
    );
    assert_rejected(
        &with_step("id: stop\nrun: \"true\"\nneeds: [stop-core]"),
        "at `/steps/0/needs`",
    );
}

#[test]
fn rejects_a_bad_runbook_name() {
    assert_rejected(
        "name: My Runbook\nsteps: []\n",
        "\"My Runbook\" does not match",
    );
}

#[test]
fn rejects_a_step_with_no_kind_or_two_kinds() {
    assert_rejected(
        &with_step("id: nothing\nname: does nothing"),
        "is not valid under any of the schemas listed in the 'oneOf' keyword",
    );
    assert_rejected(
        &with_step("id: both\nrun: \"true\"\nsleep: 1s"),
        "is valid under more than one of the schemas listed in the 'oneOf' keyword",
    );
}

#[test]
fn rejects_modifiers_without_what_they_modify() {
    assert_rejected(
        &with_step("id: a\nrun: \"true\"\nas: port"),
        "\"for_each\" is a required property",
    );
    assert_rejected(
        &with_step("id: a\nrun: \"true\"\ninterval: 5s"),
        "\"until\" is a required property",
    );
    assert_rejected(
        &with_step("id: a\nrun: \"true\"\nwith: { x: 1 }"),
        "\"call\" is a required property",
    );
}

#[test]
fn rejects_a_param_default_of_the_wrong_type() {
    assert_rejected(
        "name: probe\nparams:\n  port: { type: int, default: eighty }\nsteps: []\n",
        "\"eighty\" is not of type \"integer\"",
    );
    assert_rejected(
        "name: probe\nparams:\n  host: { default: 8080 }\nsteps: []\n",
        "8080 is not of type \"string\"",
    );
    assert_accepted("name: probe\nparams:\n  port: { type: int, default: 8080 }\nsteps: []\n");
}

#[test]
fn rejects_a_required_param_with_a_default() {
    assert_rejected(
        "name: probe\nparams:\n  port: { type: int, required: true, default: 80 }\nsteps: []\n",
        "at `/params/port`",
    );
    assert_accepted(
        "name: probe\nparams:\n  port: { type: int, required: false, default: 80 }\nsteps: []\n",
    );
}

#[test]
fn rejects_a_secret_with_two_sources() {
    assert_rejected(
        "name: probe\nsecrets:\n  key: { env: KEY, file: ./key }\nsteps: []\n",
        "is valid under more than one of the schemas listed in the 'oneOf' keyword",
    );
}

#[test]
fn rejects_a_request_with_two_bodies() {
    assert_rejected(
        &with_step(
            "id: put\nhttp: { method: PUT, url: \"http://x\", json: { a: 1 }, body: \"a=1\" }",
        ),
        "at `/steps/0/http`",
    );
}

#[test]
fn rejects_an_http_status_out_of_range() {
    assert_rejected(
        &with_step("id: get\nhttp: { url: \"http://x\", expect: { status: 42 } }"),
        "at `/steps/0/http/expect/status`: 42 is not valid",
    );
}

/// The names of the properties a `$defs` entry declares.
fn property_names(schema: &Value, definition: &str) -> Vec<String> {
    let mut names: Vec<String> = schema["$defs"][definition]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("$defs/{definition} has properties"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn schema_knows_every_key_the_decoder_knows() {
    let schema: Value = serde_json::from_str(&schema_json()).expect("the generated schema is JSON");
    let mut step_keys: Vec<String> = runbook::spec::step::STEP_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    step_keys.sort();
    assert_eq!(
        property_names(&schema, "Step"),
        step_keys,
        "step keys differ from STEP_KEYS"
    );

    let kinds: Vec<&str> = schema["$defs"]["Step"]["oneOf"]
        .as_array()
        .expect("Step has oneOf")
        .iter()
        .map(|alternative| alternative["required"][0].as_str().expect("a kind key"))
        .collect();
    assert_eq!(
        kinds,
        runbook::spec::step::KINDS,
        "step kinds differ from KINDS"
    );

    let types: Vec<&str> = schema["$defs"]["ParamType"]["oneOf"]
        .as_array()
        .expect("ParamType has oneOf")
        .iter()
        .map(|alternative| alternative["const"].as_str().expect("a type name"))
        .collect();
    assert_eq!(
        types,
        runbook::spec::ParamType::NAMES,
        "param types differ from ParamType::NAMES"
    );
}
