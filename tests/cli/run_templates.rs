//! `runbook run` end to end, templates: shell text passes through them as written, and a value
//! that is undefined at run time is named, with the reason.

use crate::run_support::Sandbox;

#[test]
fn shell_length_expansions_pass_through_templates() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: lengths
steps:
  - id: count
    shell: bash
    env: { WORD: "${#HOME}" }
    run: 'a=(1 2 3); w=abcd; echo ${#a[@]} ${#w} {## not printed ##}; echo "$WORD"'
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(0);
    assert_eq!(run.printed("count"), ["3 4", "${#HOME}"], "{}", run.stdout);
}

#[test]
fn an_output_of_a_skipped_step_is_named_as_undefined_with_the_reason() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: undefined-output
steps:
  - id: probe
    when: "false"
    run: echo 200
    outputs:
      code: "{{ result.stdout }}"
  - id: report
    needs: [probe]
    run: echo "status {{ steps.probe.outputs.code }}"
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.all().contains(
            "in `run`: `steps.probe.outputs.code` is undefined: \
             step `probe` has no output `code`: it was skipped"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_param_without_a_value_is_named_as_undefined_with_the_reason() {
    let sb = Sandbox::new();
    sb.runbook(
        r#"
name: undefined-param
params:
  snapshot: { type: string }
steps:
  - id: restore
    outputs:
      name: "{{ params.snapshot }}"
    run: echo restoring
"#,
    );
    let run = sb.run(&[]);
    run.expect_code(1);
    assert!(
        run.all().contains(
            "in `outputs.name`: `params.snapshot` is undefined: \
             param `snapshot` has no value: it has no default and was not given"
        ),
        "{}",
        run.all()
    );
}
