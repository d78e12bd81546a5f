//! How a local `run:` script reaches its process. A simple command (`/bin/true`,
//! `systemctl restart nginx`) is executed directly, as the shell would have executed it after
//! splitting it into words: one exec instead of two. Any other script reaches its shell without
//! its text on the command line, where every local user could read it (`ps`,
//! `/proc/PID/cmdline`) for as long as it runs.

use std::path::{Path, PathBuf};

/// The environment variable that carries a script to its shell (set for that child only).
pub const SCRIPT_VAR: &str = "RUNBOOK_SCRIPT";

/// What a POSIX shell runs to read its script from [`SCRIPT_VAR`]. The variable is expanded
/// into `eval`'s argument before anything runs, and the first thing evaluated unsets it, so the
/// script's own commands neither see it nor pass it on to what they start. (Stdin was the other
/// way, but a step's commands own their stdin: a `read` or `cat` there would consume the rest of
/// the script. A temporary file would put the script on the disk.)
const EVAL: &str = r#"eval "unset RUNBOOK_SCRIPT; $RUNBOOK_SCRIPT""#;

/// [`EVAL`] for a shell started before its step's start is durable: it first waits for a line
/// on its stdin (the engine writes one once the start is journaled; at the end of input, the
/// engine gone or the start not stored, it exits without running anything), then takes
/// `/dev/null` as its stdin, as every script does.
const HELD_EVAL: &str =
    r#"read -r _ || exit 125; exec </dev/null; eval "unset RUNBOOK_SCRIPT; $RUNBOOK_SCRIPT""#;

/// Shells that run nothing of their own when started as `SHELL -c` (no startup file for a shell
/// that is not interactive; bash reads `$BASH_ENV`, so it is held only without one): these may
/// be started before a step's start is durable, and held before the script.
const QUIET_SHELLS: [&str; 7] = ["sh", "dash", "bash", "ash", "ksh", "mksh", "busybox"];

/// Shells whose `-c` and `eval` read POSIX shell: only these get the script through
/// [`SCRIPT_VAR`], and only their simple commands are run without them.
const POSIX_SHELLS: [&str; 8] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"];

/// Words a shell runs itself (builtins and reserved words), or that change what follows: a
/// command starting with one of them goes through the shell.
const SHELL_WORDS: &[&str] = &[
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "newgrp",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

/// How a script is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Executed directly: the program found (the first word, or where `PATH` has it) and the
    /// words as the shell would have passed them (`argv[0]` as written).
    Direct {
        /// The file executed.
        program: PathBuf,
        /// The words.
        argv: Vec<String>,
    },
    /// `SHELL -c 'eval …'`, with the script in [`SCRIPT_VAR`].
    Hidden {
        /// The shell's argv.
        argv: Vec<String>,
        /// The script.
        script: String,
    },
    /// `SHELL -c SCRIPT`: a shell that is not a POSIX shell gets the text as it expects it.
    Argument {
        /// The shell's argv.
        argv: Vec<String>,
    },
}

/// How `script` for `shell` starts. `keep_shell`: never executed directly (its text holds a
/// secret value, whose words would be on a command line; or exec refused the program). `path`:
/// the `PATH` the child gets, where its program is looked up.
pub fn launch(shell: &str, script: &str, keep_shell: bool, path: Option<&str>) -> Launch {
    if !posix(shell) {
        return Launch::Argument {
            argv: vec![shell.to_owned(), "-c".to_owned(), script.to_owned()],
        };
    }
    if !keep_shell
        && let Some(words) = simple_command(script)
        && let Some(program) = find(words[0], path)
    {
        return Launch::Direct {
            program,
            argv: words.into_iter().map(str::to_owned).collect(),
        };
    }
    Launch::Hidden {
        argv: vec![shell.to_owned(), "-c".to_owned(), EVAL.to_owned()],
        script: script.to_owned(),
    }
}

/// Whether `shell` reads POSIX shell (by its file name: `/bin/bash` is `bash`).
fn posix(shell: &str) -> bool {
    POSIX_SHELLS.contains(&file_name(shell))
}

fn file_name(shell: &str) -> &str {
    Path::new(shell)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(shell)
}

/// Whether a script launched as `launch` may start before its step's start is durable, held
/// until then by [`held`]: a script for a shell that runs nothing before it (`bash_env`: whether
/// the child would have `BASH_ENV`).
pub fn can_hold(launch: &Launch, bash_env: bool) -> bool {
    match launch {
        Launch::Hidden { argv, .. } => {
            let name = file_name(&argv[0]);
            QUIET_SHELLS.contains(&name) && !(name == "bash" && bash_env)
        }
        Launch::Direct { .. } | Launch::Argument { .. } => false,
    }
}

/// A hidden launch whose shell waits for a line on its stdin before it runs the script.
pub fn held(launch: Launch) -> Launch {
    match launch {
        Launch::Hidden { mut argv, script } => {
            if let Some(last) = argv.last_mut() {
                HELD_EVAL.clone_into(last);
            }
            Launch::Hidden { argv, script }
        }
        other => other,
    }
}

/// The words of a script that is one simple command the shell would only split at spaces:
/// plain words (letters, digits and `-_./:=,+@%`), no quoting, expansion, glob, redirection,
/// operator or comment; a first word that is not an assignment, a builtin or a reserved word.
fn simple_command(script: &str) -> Option<Vec<&str>> {
    let text = script.trim_matches([' ', '\n']);
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@% ".contains(c);
    if text.is_empty() || !text.chars().all(plain) {
        return None;
    }
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let first = words[0];
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(words)
}

/// The file the shell would execute for `program`: itself when it names a path, else the first
/// executable file of that name in `PATH`. `None`: the shell is left to say it is not found.
pub fn find(program: &str, path: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        return executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    path?
        .split(':')
        // An empty entry means the current folder, as for the shell.
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|candidate| executable(candidate))
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: Option<&str> = Some("/usr/bin:/bin");

    #[test]
    fn a_simple_command_is_executed_directly() {
        let Launch::Direct { program, argv } = launch("sh", "/bin/true\n", false, PATH) else {
            panic!("not direct");
        };
        assert_eq!(
            (program.as_path(), argv),
            (Path::new("/bin/true"), vec!["/bin/true".to_owned()])
        );
        let Launch::Direct { argv, .. } = launch("bash", "  env  A=b  -u X ", false, PATH) else {
            panic!("not direct");
        };
        assert_eq!(argv, ["env", "A=b", "-u", "X"]);
    }

    #[test]
    fn anything_the_shell_would_interpret_goes_through_the_shell() {
        for script in [
            "true",
            "echo hi",
            "A=b env",
            "ls *.txt",
            "echo $HOME",
            "cat <in",
            "a && b",
            "printf 'x'",
            "ls ~",
            "ls # comment",
            "/bin/true\n/bin/false",
            "ls\tx",
            "no-such-program-anywhere x",
            "./not-here",
            "",
        ] {
            assert!(
                matches!(launch("sh", script, false, PATH), Launch::Hidden { .. }),
                "{script:?}"
            );
        }
    }

    #[test]
    fn a_script_holding_a_secret_is_never_on_a_command_line() {
        let Launch::Hidden { argv, script } = launch("sh", "/bin/echo s3cr3t-value", true, PATH)
        else {
            panic!("not hidden");
        };
        assert!(argv.iter().all(|a| !a.contains("s3cr3t")), "{argv:?}");
        assert_eq!(script, "/bin/echo s3cr3t-value");
    }

    #[test]
    fn another_shell_gets_its_script_as_it_expects_it() {
        assert_eq!(
            launch("python3", "print(1)", false, PATH),
            Launch::Argument {
                argv: vec!["python3".into(), "-c".into(), "print(1)".into()]
            }
        );
        assert!(matches!(
            launch("/usr/bin/bash", "echo $x", false, PATH),
            Launch::Hidden { .. }
        ));
    }

    /// A held shell as the engine starts it: `sh -c HELD_EVAL`, the script in its environment,
    /// its stdin the pipe the engine releases it through.
    fn held_shell(script: &str, dir: &Path) -> (std::process::Child, std::io::PipeWriter) {
        let Launch::Hidden { argv, script } = held(launch("sh", script, true, PATH)) else {
            panic!("a hidden launch");
        };
        let (wait, go) = std::io::pipe().unwrap();
        let child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env(SCRIPT_VAR, script)
            .current_dir(dir)
            .stdin(wait)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (child, go)
    }

    #[test]
    fn a_held_shell_runs_its_script_only_once_released_and_with_no_input() {
        let dir = tempfile::tempdir().unwrap();
        let (child, mut go) = held_shell("touch ran; read x || echo no-input", dir.path());
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !dir.path().join("ran").exists(),
            "nothing runs before the release"
        );
        std::io::Write::write_all(&mut go, b"\n").unwrap();
        drop(go);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(dir.path().join("ran").exists());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "no-input\n");
    }

    #[test]
    fn a_held_shell_never_released_exits_without_running_its_script() {
        let dir = tempfile::tempdir().unwrap();
        let (child, go) = held_shell("touch ran", dir.path());
        drop(go);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(125));
        assert!(!dir.path().join("ran").exists());
    }

    #[test]
    fn only_shells_that_run_nothing_before_the_script_are_held() {
        let hidden = |shell: &str| launch(shell, "echo $x", true, PATH);
        assert!(can_hold(&hidden("sh"), false));
        assert!(can_hold(&hidden("/bin/bash"), false));
        assert!(
            !can_hold(&hidden("bash"), true),
            "bash reads $BASH_ENV first"
        );
        assert!(!can_hold(&hidden("zsh"), false), "zsh reads .zshenv first");
        assert!(!can_hold(&launch("sh", "/bin/true", false, PATH), false));
        assert!(!can_hold(
            &launch("python3", "print(1)", false, PATH),
            false
        ));
    }
}
