//! Driving runs: everything between a compiled plan and the executor. Secrets and the checks
//! that must pass before anything runs, the run's lease and first records in its store, the
//! tokio runtime and signals, and the pipeline executor → recorder → reporter. A resume takes
//! the run over in stages (lease, timeline, leftovers, changes, decision, records) so that the
//! command line can speak to the operator between them.

pub mod checks;
pub mod error;
pub mod outcome;
pub mod pipeline;
pub mod resume;
pub mod selection;
pub mod signals;
pub mod start;
pub mod version;

pub use checks::People;
pub use error::DriveError;
pub use outcome::{Outcome, Presentation};
pub use resume::{Continuation, Ready, ResumeOptions, Resumption};
pub use selection::{Choice, Selection, SelectionError, select};
pub use start::{StartRequest, Started, new_run_id, start};
