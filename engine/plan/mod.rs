//! Stage two: a validated runbook and its params → a petgraph [`Plan`] (`for_each` expanded,
//! `call:` inlined, templates and references checked, cycles named).

pub mod ancestry;
pub mod build;
pub mod callables;
pub mod calls;
pub mod hosts;
pub mod model;
pub mod node_id;
pub mod order;
pub mod params;
pub mod reads;
pub mod references;
pub mod sites;

pub use build::{PlanError, compile, static_checks};
pub use model::{Phase, Plan, PlanNode, Role, Scope};
pub use node_id::{ItemKey, NodeId};
pub use params::{ParamError, ParamInput};
