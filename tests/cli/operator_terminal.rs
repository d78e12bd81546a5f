//! The operator at a real terminal (a pseudo-terminal): prompts read whole lines typed after
//! they are shown, a destructive step is confirmed by typing its id, and `TERM=dumb` gets no
//! colour.

use std::time::Duration;

use crate::pty::Terminal;
use crate::run_support::Sandbox;

const PROMPTS: &str = r"
name: prompts
steps:
  - id: ready
    manual: Take the node out of the pool.
  - id: wipe
    destructive: true
    run: touch wiped
";

const SHOWN: Duration = Duration::from_secs(20);

fn at_terminal(sb: &Sandbox, args: &[&str]) -> Terminal {
    let mut cmd = sb.command(args);
    cmd.env("TERM", "xterm");
    Terminal::start(cmd)
}

#[test]
fn a_keystroke_meant_for_one_prompt_never_answers_the_next() {
    let sb = Sandbox::new();
    sb.runbook(PROMPTS);
    let mut term = at_terminal(&sb, &["run", "runbook.yaml", "--no-progress"]);
    term.wait_for("Approve? [yes/no]", 1, SHOWN);
    // One answer, and the same keys again by mistake before the next prompt is shown.
    term.type_keys("y\ny\n");
    term.wait_for("Type `wipe` (or yes) to confirm", 1, SHOWN);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        term.running(),
        "the destructive prompt waits:\n{}",
        term.screen()
    );
    assert!(!sb.exists("wiped"));
    assert!(
        !term.screen().contains("not confirmed"),
        "{}",
        term.screen()
    );

    // A single key does not confirm a destructive step: it asks again.
    term.type_keys("y\n");
    term.wait_for("`y` does not confirm", 1, SHOWN);
    std::thread::sleep(Duration::from_millis(300));
    assert!(term.running(), "{}", term.screen());
    assert!(!sb.exists("wiped"));

    term.type_keys("wipe\n");
    let (code, screen) = term.finish(SHOWN);
    assert_eq!(code, 0, "{screen}");
    assert!(sb.exists("wiped"), "{screen}");
    assert!(screen.contains("succeeded"), "{screen}");
}

#[test]
fn an_empty_line_is_no_answer_and_no_refuses() {
    let sb = Sandbox::new();
    sb.runbook(PROMPTS);
    let mut term = at_terminal(&sb, &["run", "runbook.yaml", "--no-progress"]);
    term.wait_for("Approve? [yes/no]", 1, SHOWN);
    term.type_keys("\n");
    term.wait_for("please answer yes or no", 1, SHOWN);
    std::thread::sleep(Duration::from_millis(300));
    assert!(term.running(), "{}", term.screen());
    term.type_keys("no\n");
    let (code, screen) = term.finish(SHOWN);
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("rejected by") && screen.contains("at the prompt"),
        "{screen}"
    );
    assert!(!sb.exists("wiped"));
}

const FAILS: &str = r"
name: colours
steps:
  - id: fine
    run: echo fine
  - id: broken
    run: exit 3
";

fn screen_with_term(term: &str) -> String {
    let sb = Sandbox::new();
    sb.runbook(FAILS);
    let mut cmd = sb.command(["run", "runbook.yaml"]);
    cmd.env_remove("NO_COLOR").env("TERM", term);
    let (code, screen) = Terminal::start(cmd).finish(SHOWN);
    assert_eq!(code, 1, "{screen}");
    screen
}

#[test]
fn term_dumb_gets_no_colour() {
    let colourful = screen_with_term("xterm-256color");
    assert!(
        colourful.contains("\u{1b}["),
        "a terminal that can colour gets colour (the check below can see it): {colourful}"
    );
    let dumb = screen_with_term("dumb");
    assert!(
        !dumb.contains("\u{1b}["),
        "TERM=dumb gets neither colour nor redrawn lines: {dumb:?}"
    );
    assert!(dumb.contains("FAILED broken"), "{dumb}");
}
