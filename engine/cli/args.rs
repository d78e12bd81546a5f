//! Options several subcommands share: where runs are kept, params, decisions about manual steps,
//! output format, how much a run tells.

use std::path::PathBuf;

use crate::compile::CompileError;
use crate::drive::People;
use crate::plan::{ParamError, ParamInput};
use crate::report::live::Verbosity;
#[cfg(feature = "postgres")]
use crate::state::postgres::PgStore;
use crate::state::{LocalStore, Store};

use super::error::CliError;

/// Where runs are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// Where runs are kept (journal, logs, copies of the runbook). Default: the nearest
    /// `.runbook` folder in the current directory or above it (as git finds `.git`), else
    /// `./.runbook`.
    #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep runs in a `PostgreSQL` database shared by a team instead of the state dir
    /// (`postgres://user@host/db?sslmode=require`; the password from the URL or PGPASSWORD).
    #[arg(long, env = "RUNBOOK_STATE", value_name = "URL")]
    pub state: Option<String>,
}

impl StateArgs {
    /// The store these options name: the database `--state` names, else `--state-dir`, else
    /// the state dir found from the current directory up.
    pub fn store(&self) -> Result<Box<dyn Store>, CliError> {
        match self.state.as_deref().filter(|url| !url.is_empty()) {
            None => Ok(Box::new(self.local())),
            Some(url) => postgres(url),
        }
    }

    /// The state dir these options name (`--state` aside).
    pub fn local(&self) -> LocalStore {
        match &self.state_dir {
            Some(dir) => LocalStore::new(dir),
            None => std::env::current_dir().map_or_else(
                |_| LocalStore::new(crate::state::local::DEFAULT_STATE_DIR),
                |cwd| LocalStore::discover(&cwd),
            ),
        }
    }
}

#[cfg(feature = "postgres")]
fn postgres(url: &str) -> Result<Box<dyn Store>, CliError> {
    let mut store = PgStore::open(url).map_err(|e| CliError::Store(e.into()))?;
    // How long a run waits for a database that went away (the drills shorten it).
    if let Some(seconds) = std::env::var("RUNBOOK_STATE_PATIENCE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
    {
        store = store.with_patience(std::time::Duration::from_secs_f64(seconds));
    }
    Ok(Box::new(store))
}

#[cfg(not(feature = "postgres"))]
fn postgres(_url: &str) -> Result<Box<dyn Store>, CliError> {
    Err(CliError::Usage(
        "--state needs a runbook built with the `postgres` feature; use --state-dir DIR".to_owned(),
    ))
}

/// Values for the runbook's params.
#[derive(Debug, Clone, clap::Args)]
pub struct ParamArgs {
    /// Set a param (`name=value`; lists as `[a, b]`, maps as `{k: v}`); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Read params from a YAML file (repeatable; `--set` wins).
    #[arg(long = "params", value_name = "FILE")]
    pub params: Vec<PathBuf>,
}

impl ParamArgs {
    /// Reads `--params` files and keeps `--set` arguments.
    pub fn input(&self) -> Result<ParamInput, CliError> {
        let mut input = ParamInput {
            files: Vec::new(),
            sets: self.sets.clone(),
        };
        for file in &self.params {
            let read = ParamInput::read_file(file).map_err(|e| CliError::params(&[e]))?;
            input.files.push(read);
        }
        Ok(input)
    }

    /// Whether any param was given.
    pub fn given(&self) -> bool {
        !(self.sets.is_empty() && self.params.is_empty())
    }

    /// What did not compile, shown: a param's mistake in a `--params` file is located there
    /// (`prod.yaml:3:7: error: …`), and a `--set` without `=` is not also reported missing.
    pub fn compile_error(&self, err: CompileError) -> CliError {
        let CompileError::Params(mut errors) = err else {
            return CliError::compile(err);
        };
        let malformed: Vec<String> = errors
            .iter()
            .filter_map(|e| match e {
                ParamError::Malformed { text } => Some(text.trim().to_owned()),
                _ => None,
            })
            .collect();
        errors
            .retain(|e| !matches!(e, ParamError::Missing { name, .. } if malformed.contains(name)));
        CliError::params(&errors)
    }
}

/// Decisions about manual steps (`run` and `resume`). `--yes` never approves one.
#[derive(Debug, Clone, clap::Args)]
pub struct PeopleArgs {
    /// Approve a manual step (repeatable; a fan-out's name approves each item). On `run`, it is
    /// approved when it is reached; on `resume`, a step waiting for approval.
    #[arg(long, value_name = "STEP")]
    pub approve: Vec<String>,
    /// Approve every manual step reached (each approval is recorded as made by --approve-all).
    #[arg(long)]
    pub approve_all: bool,
    /// Who approves or rejects, as recorded (default: user@hostname).
    #[arg(long = "as", value_name = "NAME")]
    pub approver: Option<String>,
    /// A value for a manual step's input (`STEP.NAME=VALUE`, typed like --set); repeatable.
    #[arg(long = "input", value_name = "STEP.NAME=VALUE")]
    pub inputs: Vec<String>,
}

impl PeopleArgs {
    /// What the engine is told.
    pub fn people(&self) -> People {
        People {
            identity: self.approver.clone(),
            approve_all: self.approve_all,
            inputs: self.inputs.clone(),
        }
    }
}

/// How `run --dry-run`, `runs` and `show` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunFormat {
    /// Human-readable lines.
    Text,
    /// JSON, for programs.
    Json,
}

/// How much a run tells while it goes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct VerbosityArgs {
    /// Tell only failures, questions, pauses and the verdict.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also show what each `check` and each poll printed, and why a poll has not held yet
    /// (always in the step's log: `runbook logs RUN STEP`).
    #[arg(short, long)]
    pub verbose: bool,
}

impl VerbosityArgs {
    /// The level asked for.
    pub fn level(self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// Reads a duration as runbooks write them (`90s`, `12h`, `30d`).
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    crate::spec::duration::parse(text).map_err(|e| e.to_string())
}
