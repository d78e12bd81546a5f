//! `runbook schema`: the JSON Schema of runbook files.

use std::io::Write as _;

use super::error::CliError;
use crate::drive::Outcome;

/// Prints the schema.
pub fn execute() -> Result<Outcome, CliError> {
    std::io::stdout()
        .write_all(crate::spec::schema::schema_json().as_bytes())
        .map_err(CliError::Output)?;
    Ok(Outcome::Succeeded)
}
