//! `runbook`: a declarative runbook engine.
//!
//! The pipeline runs one way: [`spec`] (YAML → validated runbook) → [`plan`] (runbook + params →
//! dependency graph) → `exec` (the scheduler) → `state` (journal, resume) → [`report`] (what
//! people and machines read).

pub mod cli;
pub mod diagnostic;
pub mod exec;
pub mod limits;
pub mod plan;
pub mod report;
pub mod run;
pub mod spec;
pub mod state;
pub mod template;
