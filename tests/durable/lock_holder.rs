//! Who holds a run: two processes racing to resume a paused run, the one refused always names
//! the other (pid, user@host, since when); and the staging folders of a process killed while it
//! created a run are cleaned up by the next start.

use std::time::Duration;

use crate::durable_support::Background;
use crate::run_support::Sandbox;

const PAUSED: &str = r#"
name: race
steps:
  - id: gate
    manual: "go on?"
  - id: slow
    needs: [gate]
    run: "sleep 3"
"#;

#[test]
fn a_refused_resume_always_names_the_holder_even_in_a_race() {
    let sb = Sandbox::new();
    sb.runbook(PAUSED);
    for round in 0..8 {
        let id = format!("race{round}");
        sb.run(&["--run-id", &id]).expect_code(3);
        let args = ["resume", id.as_str(), "--approve", "gate", "--no-progress"];
        let racers = [
            Background::start(&sb, &format!("{id}-a"), &args),
            Background::start(&sb, &format!("{id}-b"), &args),
        ];
        let pids = [racers[0].pid(), racers[1].pid()];
        let [first, second] = racers;
        let runs = [
            first.wait(Duration::from_mins(1)),
            second.wait(Duration::from_mins(1)),
        ];
        let refused: Vec<usize> = (0..2).filter(|&i| runs[i].code == 4).collect();
        assert_eq!(
            refused.len(),
            1,
            "round {round}: one drives, one is refused: {:?}",
            runs.iter()
                .map(|r| (r.code, r.stderr.clone()))
                .collect::<Vec<_>>()
        );
        let (loser, winner) = (refused[0], 1 - refused[0]);
        assert_eq!(runs[winner].code, 0, "{}", runs[winner].all());
        let said = &runs[loser].stderr;
        assert!(
            said.contains(&format!("pid {},", pids[winner]))
                && said.contains('@')
                && said.contains(", since "),
            "round {round}: the refusal names the holder: {said}"
        );
    }
}

#[test]
fn staging_folders_left_by_a_killed_start_are_removed_on_the_next_start() {
    let sb = Sandbox::new();
    sb.runbook("name: staged\nsteps:\n  - id: a\n    run: 'true'\n");
    let runs = sb.join(".runbook/runs");
    // A process that died (no such pid) while creating a run, and one that is alive now.
    let dead = runs.join(format!(".new-old-{}", i32::MAX));
    let live = runs.join(format!(".new-busy-{}", std::process::id()));
    for dir in [&dead, &live] {
        std::fs::create_dir_all(dir.join("runbook")).expect("a folder");
        std::fs::write(dir.join("journal.jsonl"), "").expect("a file");
    }
    sb.run(&["--run-id", "next"]).expect_code(0);
    assert!(
        !dead.exists(),
        "the dead process's staging folder was removed"
    );
    assert!(
        live.exists(),
        "a live process's staging folder is left alone"
    );
}
