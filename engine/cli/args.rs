//! Options several subcommands share: where runs are kept, params, decisions about manual steps,
//! output format.

use std::path::PathBuf;

use crate::drive::People;
use crate::plan::ParamInput;
use crate::state::LocalStore;
use crate::state::local::DEFAULT_STATE_DIR;

use super::error::CliError;

/// Where runs are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// Where runs are kept (journal, logs, copies of the runbook).
    #[arg(
        long,
        env = "RUNBOOK_STATE_DIR",
        default_value = DEFAULT_STATE_DIR,
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
}

impl StateArgs {
    /// The store these options name.
    pub fn store(&self) -> LocalStore {
        LocalStore::new(&self.state_dir)
    }
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
    /// The rehearsal as JSON (with `--dry-run`).
    Json,
}
