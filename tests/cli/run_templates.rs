//! `runbook run` end to end, templates: shell text passes through them as written.

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
