//! Stage three: the executor. A tokio scheduler runs the plan's graph; each step kind has its
//! module under `step/`; everything that happens is sent as an [`event::Event`].

pub mod approvals;
pub mod attempt;
pub mod context;
pub mod dead_man;
pub mod event;
pub mod fanout;
pub mod hosts;
pub mod notify;
mod process;
pub mod rehearse;
pub mod remote;
pub mod render;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod settings;
pub mod step;
pub mod walk;

pub use dead_man::DeadMan;
pub use event::{Event, Message, RunStatus, Stamped, StepStatus};
pub use runtime::{RunOptions, Runtime};
pub use scheduler::{Settled, SettledSteps, execute, resume};
pub use secrets::Secrets;
