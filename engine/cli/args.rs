//! Options several subcommands share: where runs are kept, params, output format.

use std::path::PathBuf;

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
            let map = ParamInput::read_file(file).map_err(|e| CliError::params(&[e]))?;
            input.files.push(map);
        }
        Ok(input)
    }

    /// Whether any param was given.
    pub fn given(&self) -> bool {
        !(self.sets.is_empty() && self.params.is_empty())
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
