//! The limits on runbook files and templates (`engine/limits.rs`), through the real binary:
//! input that would exhaust a stack, run for hours or fill memory ends in exit 2 and a located
//! diagnostic from `validate` and `run --dry-run` alike (or, for work only a render can measure,
//! in a step failure), never in an abort.

use std::fmt::Write as _;
use std::time::Duration;

use crate::run_support::{Run, Sandbox};

/// The chains the template engine recurses on, `terms` long, as a `when` or `run` value.
fn chains(terms: usize) -> Vec<(&'static str, String)> {
    vec![
        ("not", format!("{}true", "not ".repeat(terms))),
        ("minus", format!("{}1", "- ".repeat(terms))),
        ("and", vec!["true"; terms].join(" and ")),
        ("tilde", vec!["'x'"; terms].join(" ~ ")),
        ("filters", format!("1{}", " | string".repeat(terms))),
    ]
}

/// Asserts an exit code that the process chose (a signal has none).
#[track_caller]
fn exited(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code,
        code,
        "{what}: expected exit {code}, got {} (-1: killed by a signal)\n{}",
        run.code,
        run.stderr.chars().take(2000).collect::<String>()
    );
}

#[test]
fn a_20000_term_chain_is_refused_with_a_location() {
    let sandbox = Sandbox::new();
    for (name, chain) in chains(20_000) {
        sandbox.runbook(&format!(
            "name: t\nsteps:\n  - id: a\n    when: \"{chain}\"\n    run: echo hi\n"
        ));
        let run = sandbox.cli(&["validate", "runbook.yaml"]);
        exited(&run, 2, name);
        // Refused for its operators or, once it is longer than 60 KiB, for its size; either way
        // at its start.
        let header = run.stderr.lines().next().unwrap_or_default();
        assert!(
            header.starts_with("runbook.yaml:4:12: error: ")
                && (header.ends_with("operators; at most 200 are allowed")
                    || header.ends_with("template is larger than 60 KiB")),
            "{name}: {header}"
        );
    }
}

#[test]
fn a_5000_term_chain_is_refused_before_a_dry_run_renders_it() {
    let sandbox = Sandbox::new();
    for (name, chain) in chains(5_000) {
        for (field, value) in [
            ("when", format!("\"{chain}\"\n    run: echo hi")),
            ("assert", format!("\"{chain}\"")),
            ("run", format!("\"echo {{{{ {chain} }}}}\"")),
        ] {
            sandbox.runbook(&format!(
                "name: t\nsteps:\n  - id: a\n    {field}: {value}\n"
            ));
            let run = sandbox.cli(&["run", "runbook.yaml", "--dry-run", "--no-progress"]);
            exited(&run, 2, &format!("{name} in `{field}`"));
            assert!(
                run.stderr.contains(": error: expression has "),
                "{name} in `{field}`"
            );
        }
    }
}

#[test]
fn an_elif_chain_past_the_nesting_limit_is_refused_with_a_location() {
    let sandbox = Sandbox::new();
    for (branches, message) in [
        (3_000, "blocks nest deeper than 32 levels"),
        (20_000, "template is larger than 60 KiB"),
    ] {
        sandbox.runbook(&format!(
            "name: t\nsteps:\n  - id: a\n    run: \"{{% if false %}}{}{{% else %}}x{{% endif %}}\"\n",
            "{% elif false %}".repeat(branches)
        ));
        // The 32nd `elif` is the 33rd level: `{% if false %}` and 31 × `{% elif false %}` before
        // it. A template too large is reported where it starts.
        let column = if branches == 3_000 {
            11 + 14 + 31 * 16
        } else {
            11
        };
        for args in [
            &["validate", "runbook.yaml"][..],
            &["run", "runbook.yaml", "--dry-run", "--no-progress"],
        ] {
            let run = sandbox.cli(args);
            exited(&run, 2, args[0]);
            assert!(
                run.stderr
                    .starts_with(&format!("runbook.yaml:4:{column}: error: {message}")),
                "{}",
                &run.stderr[..run.stderr.len().min(300)]
            );
        }
    }
}

#[test]
fn a_too_long_expression_in_a_called_runbook_is_located_in_that_file() {
    let sandbox = Sandbox::new();
    sandbox.runbook("name: t\nsteps:\n  - id: a\n    for_each: [x, y]\n    call: part.yaml\n");
    sandbox.write(
        "part.yaml",
        &format!(
            "name: part\nsteps:\n  - id: b\n    for_each: \"{}[1]\"\n    run: echo {{{{ item }}}}\n",
            "- ".repeat(5000)
        ),
    );
    let run = sandbox.cli(&["run", "runbook.yaml", "--dry-run", "--no-progress"]);
    exited(&run, 2, "call");
    assert!(
        run.stderr
            .starts_with("part.yaml:4:16: error: expression has 5001 operators"),
        "{}",
        &run.stderr[..run.stderr.len().min(300)]
    );
}

#[test]
fn a_template_past_60_kib_is_refused_at_its_start() {
    let sandbox = Sandbox::new();
    let line = "      echo 'a line of a script that was pasted far too many times'\n";
    sandbox.runbook(&format!(
        "name: t\nsteps:\n  - id: a\n    run: |\n{}",
        // The template is the lines without their indentation.
        line.repeat((60 << 10) / line.trim_start().len() + 1)
    ));
    let run = sandbox.cli(&["validate", "runbook.yaml"]);
    exited(&run, 2, "validate");
    assert!(
        run.stderr
            .starts_with("runbook.yaml:5:7: error: template is larger than 60 KiB"),
        "{}",
        &run.stderr[..run.stderr.len().min(300)]
    );
    assert!(run.stderr.contains("run: bash ./restore.sh"), "the hint");
}

#[test]
fn a_runbook_past_32_mib_is_refused_at_its_first_line() {
    let sandbox = Sandbox::new();
    let comment = format!("# {}\n", "padding ".repeat(12));
    let mut text = String::from("name: big\nsteps: []\n");
    text.push_str(&comment.repeat((32 << 20) / comment.len() + 1));
    sandbox.runbook(&text);
    let run = sandbox.cli(&["run", "runbook.yaml", "--dry-run"]);
    exited(&run, 2, "run");
    assert!(
        run.stderr.starts_with(
            "runbook.yaml:1:1: error: the file is larger than 32 MiB, the most a runbook may be"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`call:`"), "the hint");
}

#[test]
fn a_loop_that_would_run_for_hours_runs_out_of_fuel() {
    let sandbox = Sandbox::new();
    sandbox.runbook(
        "name: t\nsteps:\n  - id: a\n    run: \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x\"\n",
    );
    sandbox.cli(&["validate", "runbook.yaml"]).expect_code(0);
    let run = sandbox.cli(&["run", "runbook.yaml", "--dry-run", "--no-progress"]);
    exited(&run, 1, "run");
    assert!(run.stdout.contains("ran out of fuel"), "{}", run.stdout);
    assert!(run.elapsed < Duration::from_mins(1), "{:?}", run.elapsed);
}

#[test]
fn hundreds_of_mistakes_show_the_first_hundred_and_a_count() {
    let sandbox = Sandbox::new();
    let mut yaml = String::from("name: t\nsteps:\n");
    for i in 0..300 {
        // Writing to a `String` cannot fail.
        let _ = write!(yaml, "  - id: s{i}\n    needs: [nope]\n    run: echo\n");
    }
    sandbox.runbook(&yaml);
    let run = sandbox.cli(&["validate", "runbook.yaml"]);
    exited(&run, 2, "validate");
    assert_eq!(
        run.stderr.matches(": error: unknown step `nope`").count(),
        100
    );
    assert!(
        run.stderr.ends_with(
            "note: 200 more mistakes not shown (the first 100 are)\n\n\
             error: 300 mistakes in 1 of 1 file\n"
        ),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(300)..]
    );
}
