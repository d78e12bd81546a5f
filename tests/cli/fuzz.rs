//! Mutation testing of everything a runbook file goes through before a step runs: reading its
//! bytes, the spec stage, `plan::compile` (static checks, `call:` files, `for_each` expansion)
//! and rendering every template of the plan with a context that answers every name.
//!
//! The property: every input ends in a plan whose templates render (or fail to render) or in
//! located diagnostics, never in a panic, a stack overflow or a hang. Each case is read and
//! checked on a thread with the main thread's 8 MiB stack, as `runbook validate` does, and its
//! templates are rendered on one with the 2 MiB stack of a tokio worker, as a run does.
//!
//! Inputs are the repository's runbooks and fixtures (`runbooks/**`, `tests/fixtures/**`) and
//! the corpus of hostile inputs (`tests/fuzz/corpus/`), each changed by a few byte-level
//! mutations: flipped bits, inserted tokens (template operators, block tags, multi-byte and
//! control characters, byte order marks, invalid UTF-8), a token or slice repeated up to
//! thousands of times, deleted ranges, duplicated lines and chunks spliced from other inputs.
//!
//! In the test suite it runs a fixed number of cases from a fixed seed. `benches/fuzz.sh` runs
//! it for longer; these variables set the run:
//! - `RUNBOOK_FUZZ_CASES`: cases per round (default 600);
//! - `RUNBOOK_FUZZ_SECONDS`: keep starting rounds, each with the next seed, until this many
//!   seconds have passed (default: one round);
//! - `RUNBOOK_FUZZ_SEED`: the first round's seed (default 1).
//!
//! Before each case the input is written to `target/tmp/fuzz-current-input`: after an abort
//! (a stack overflow cannot be caught), that file is the input that caused it. A failure found
//! by the runner is shrunk to fewer mutations and written to `target/tmp/fuzz-failure`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use runbook::diagnostic::Diagnostic;
use runbook::plan::{self, PlanError};
use runbook::spec::{self, LoadError, Runbook, StepKind};

/// Tokens worth inserting: what templates recurse on, what YAML treats specially, and text
/// that is not what it seems.
const TOKENS: &[&[u8]] = &[
    b"not ",
    b"- ",
    b" and x",
    b" or x",
    b" ~ 'x'",
    b" | string",
    b".x",
    b"[0]",
    b"(",
    b")",
    b"[",
    b"]",
    b"{",
    b"}",
    b"{{ ",
    b" }}",
    b"{% if x %}",
    b"{% elif y %}",
    b"{% else %}",
    b"{% endif %}",
    b"{% for i in x %}",
    b"{% endfor %}",
    b"{% set a = 1 %}",
    b"{% raw %}",
    b"{# ",
    b" #}",
    b"{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    b"{{ params.x }}",
    b"{{ steps.a.outputs.b }}",
    b"{{ result.stdout | regex_capture('(x') }}",
    b"'",
    b"\"",
    b"\\",
    b": ",
    b"- ",
    b"# ",
    b"&a ",
    b"*a",
    b"!!str ",
    b"<<: ",
    b"? ",
    b"---\n",
    b"|\n",
    b">-\n",
    b"~",
    b"\n",
    b"\r",
    b"\t",
    b"\0",
    "–".as_bytes(),
    "é".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{feff}".as_bytes(),
    "日本".as_bytes(),
    b"\xFF",
    b"\xE9",
    b"\xC3",
    b"\xFF\xFE",
    b"\xFE\xFF",
    b"99999999999999999999",
    b"-1",
    b"1e309",
    b".inf",
    b"0x",
    b"needs: []\n",
    b"for_each: ",
    b"when: ",
    b"until: ",
    b"assert: ",
    b"outputs: ",
    b"call: ",
    b"with: ",
    b"run: ",
    b"http: ",
    b"check: ",
];

/// One change to an input's bytes; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: u32,
        bits: u8,
    },
    Insert {
        at: u32,
        token: usize,
    },
    InsertRepeated {
        at: u32,
        token: usize,
        times: u16,
    },
    RepeatSlice {
        at: u32,
        len: u8,
        times: u16,
    },
    Delete {
        at: u32,
        len: u16,
    },
    DuplicateLine {
        at: u32,
        times: u8,
    },
    Splice {
        at: u32,
        from: usize,
        start: u32,
        len: u16,
    },
    Truncate {
        at: u32,
    },
}

/// Repetition counts that straddle the limits (200 operators, 32 levels) and go far past them.
fn times() -> impl Strategy<Value = u16> {
    prop_oneof![1..=8u16, 28..=40u16, 190..=210u16, 1000..=6000u16]
}

fn mutation(inputs: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<u32>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        4 => (any::<u32>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        3 => (any::<u32>(), 0..TOKENS.len(), times())
            .prop_map(|(at, token, times)| Mutation::InsertRepeated { at, token, times }),
        2 => (any::<u32>(), 1..=16u8, times())
            .prop_map(|(at, len, times)| Mutation::RepeatSlice { at, len, times }),
        2 => (any::<u32>(), 1..=64u16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<u32>(), 1..=40u8).prop_map(|(at, times)| Mutation::DuplicateLine { at, times }),
        2 => (any::<u32>(), 0..inputs, any::<u32>(), 1..=400u16)
            .prop_map(|(at, from, start, len)| Mutation::Splice { at, from, start, len }),
        1 => any::<u32>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// Inputs past this size are not grown further: the limits are far below it, and a fast case
/// is worth more than a big one.
const MAX_INPUT: usize = 512 << 10;

fn position(at: u32, len: usize) -> usize {
    usize::try_from(at).map_or(0, |at| at % (len + 1))
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>, inputs: &[Input]) {
        let len = bytes.len();
        match *self {
            Self::Flip { at, bits } => {
                if len > 0 {
                    bytes[position(at, len - 1)] ^= bits;
                }
            }
            Self::Insert { at, token } => {
                insert(bytes, position(at, len), TOKENS[token]);
            }
            Self::InsertRepeated { at, token, times } => {
                insert(
                    bytes,
                    position(at, len),
                    &TOKENS[token].repeat(usize::from(times)),
                );
            }
            Self::RepeatSlice {
                at,
                len: width,
                times,
            } => {
                let start = position(at, len);
                let end = (start + usize::from(width)).min(len);
                let slice = bytes[start..end].repeat(usize::from(times));
                insert(bytes, start, &slice);
            }
            Self::Delete { at, len: width } => {
                let start = position(at, len);
                let end = (start + usize::from(width)).min(len);
                bytes.drain(start..end);
            }
            Self::DuplicateLine { at, times } => {
                let start = position(at, len);
                let line_start = bytes[..start]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line_end = bytes[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| start + i + 1);
                let line = bytes[line_start..line_end].repeat(usize::from(times));
                insert(bytes, line_end, &line);
            }
            Self::Splice {
                at,
                from,
                start,
                len: width,
            } => {
                let other = &inputs[from].bytes;
                let start = position(start, other.len());
                let end = (start + usize::from(width)).min(other.len());
                insert(bytes, position(at, len), &other[start..end]);
            }
            Self::Truncate { at } => bytes.truncate(position(at, len)),
        }
    }
}

fn insert(bytes: &mut Vec<u8>, at: usize, what: &[u8]) {
    if bytes.len() + what.len() <= MAX_INPUT {
        bytes.splice(at..at, what.iter().copied());
    }
}

/// One input: a file and its bytes. `call:` paths resolve beside it, as for the real file.
struct Input {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The repository's runbooks and fixtures and the fuzz corpus, in a stable order.
fn inputs() -> Vec<Input> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for folder in ["runbooks", "tests/fixtures", "tests/fuzz/corpus"] {
        files(&root.join(folder), &mut paths);
    }
    paths.retain(|p| {
        p.starts_with(root.join("tests/fuzz/corpus"))
            || p.extension().is_some_and(|e| e == "yaml" || e == "yml")
    });
    paths.sort();
    paths
        .into_iter()
        .map(|path| Input {
            bytes: std::fs::read(&path)
                .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display())),
            path,
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A template context in which every name and attribute exists: the root and each value below
/// it are mappings with two keys, down to a few levels, where the values are text.
#[derive(Debug)]
struct Anything {
    depth: u8,
}

impl Object for Anything {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(if self.depth >= 4 {
            Value::from("1")
        } else {
            Value::from_object(Self {
                depth: self.depth + 1,
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["a", "b"])
    }
}

/// Every template and expression of a step, as the executor renders them.
/// Every template and expression of a runbook (the sites the static checks know), a block's
/// steps included.
fn runbook_templates(runbook: &Runbook) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = plan::sites::collect(runbook)
        .iter()
        .map(|site| (site.text.to_owned(), site.expression))
        .collect();
    for step in runbook.all_steps() {
        if let StepKind::Block(_) = &step.kind {
            out.extend(runbook_templates(&runbook.of_block(step)));
        }
    }
    out
}

/// There are diagnostics, and they render as `runbook validate` shows them: each of those shown
/// starting with its location.
fn located(diagnostics: &[Diagnostic]) -> Result<(), String> {
    if diagnostics.is_empty() {
        return Err("refused without a diagnostic".to_owned());
    }
    let rendered = runbook::diagnostic::render_all(diagnostics, false);
    for d in diagnostics.iter().take(runbook::diagnostic::MAX_SHOWN) {
        if !rendered.contains(&format!("{}: error: {}", d.location(), d.message)) {
            return Err(format!("a diagnostic without its location:\n{d}"));
        }
    }
    Ok(())
}

/// What the engine makes of one input, short of running it.
fn outcome(path: &Path, bytes: Vec<u8>) -> Result<(), String> {
    let runbook = match spec::load_bytes(path, bytes) {
        Ok(runbook) => runbook,
        Err(LoadError::Invalid {
            diagnostics,
            partial,
            ..
        }) => {
            located(&diagnostics)?;
            // As `runbook validate` does: the later checks of what could be read.
            if let Some(partial) = partial {
                let more = plan::static_checks(&partial);
                if !more.is_empty() {
                    located(&more)?;
                }
            }
            return Ok(());
        }
        Err(err @ LoadError::Read { .. }) => return Err(format!("bytes in memory: {err}")),
    };
    let plan = match plan::compile(runbook, None) {
        Ok(plan) => plan,
        Err(PlanError::Invalid(diagnostics)) => return located(&diagnostics),
        Err(PlanError::Params(errors)) if !errors.is_empty() => return Ok(()),
        Err(PlanError::Params(_)) => return Err("refused params without saying why".to_owned()),
    };
    // Steps render on tokio workers, whose stacks are 2 MiB.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(scope, || render_every_template(&plan))
            .map_err(|e| format!("failed to start a thread: {e}"))?
            .join()
            .map_err(|_| "rendering panicked".to_owned())
    })
}

fn render_every_template(plan: &plan::Plan) {
    let ctx = Value::from_object(Anything { depth: 0 });
    for runbook in &plan.runbooks {
        for (text, expression) in runbook_templates(runbook) {
            // Ok or an error: either is an answer. Only getting none is a failure.
            if expression {
                let _ = runbook::template::eval(&text, &ctx);
            } else {
                let _ = runbook::template::render(&text, &ctx);
                let _ = runbook::template::render_text(&text, &ctx);
            }
        }
    }
}

/// Runs one case, with a deadline, on a thread with the stack `runbook validate` has (the main
/// thread's 8 MiB); its templates are rendered on a thread with a worker's stack.
fn run_case(path: &Path, bytes: Vec<u8>, deadline: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let path = path.to_owned();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| outcome(&path, bytes));
            // The receiver is gone only after a deadline passed, which is reported already.
            let _ = tx.send(result);
        })
        .map_err(|e| format!("failed to start a thread: {e}"))?;
    match rx.recv_timeout(deadline) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
        Err(_) => Err(format!("no answer within {deadline:?}: a hang")),
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
    )
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn mutated_runbooks_end_in_a_plan_or_located_diagnostics() {
    let cases = env_number("RUNBOOK_FUZZ_CASES").unwrap_or(600);
    let seconds = env_number("RUNBOOK_FUZZ_SECONDS");
    let first_seed = env_number("RUNBOOK_FUZZ_SEED").unwrap_or(1);
    let inputs = inputs();
    assert!(inputs.len() > 100, "only {} inputs", inputs.len());
    let current = scratch("fuzz-current-input");
    let executions = AtomicUsize::new(0);
    let started = Instant::now();
    let strategy = (
        0..inputs.len(),
        proptest::collection::vec(mutation(inputs.len()), 1..=4),
    );
    let mut seed = first_seed;
    loop {
        let config = Config {
            cases: u32::try_from(cases).expect("a case count that fits in u32"),
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        };
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            config,
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
        );
        let result = runner.run(&strategy, |(index, mutations)| {
            let input = &inputs[index];
            let mut bytes = input.bytes.clone();
            for m in &mutations {
                m.apply(&mut bytes, &inputs);
            }
            // Written first: if this case aborts the process, the file says which input it was.
            std::fs::write(&current, &bytes).expect("the scratch file can be written");
            executions.fetch_add(1, Ordering::Relaxed);
            run_case(&input.path, bytes, Duration::from_secs(20))
                .map_err(|why| TestCaseError::fail(format!("{}: {why}", input.path.display())))
        });
        if let Err(err) = result {
            let failure = scratch("fuzz-failure");
            if let TestError::Fail(_, (index, mutations)) = &err {
                let mut bytes = inputs[*index].bytes.clone();
                for m in mutations {
                    m.apply(&mut bytes, &inputs);
                }
                std::fs::write(&failure, bytes).expect("the scratch file can be written");
            }
            panic!(
                "seed {seed}: {err}\nthe failing input is in {}",
                failure.display()
            );
        }
        let done = seconds.is_none_or(|s| started.elapsed() >= Duration::from_secs(s));
        if done {
            break;
        }
        seed += 1;
    }
    eprintln!(
        "fuzz: {} executions in {:.1}s, seeds {first_seed}..={seed}, no failure",
        executions.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}
