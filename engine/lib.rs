//! `runbook`: a declarative runbook engine.
//!
//! The pipeline runs one way: [`spec`] (YAML → validated runbook) → [`plan`] (runbook + params →
//! dependency graph) → [`exec`] (the scheduler) → [`state`] (store, journal, resume) →
//! [`report`] (what people and machines read). [`compile`] and [`drive`] put the stages
//! together for a run; [`cli`] is the command line on top, and nothing depends on it.

pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod drive;
pub mod exec;
pub mod limits;
pub mod plan;
pub mod report;
pub mod spec;
pub mod state;
pub mod template;
