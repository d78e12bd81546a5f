//! Stage four: durable runs. Run folders, the append-only journal (fsync, group commit), the
//! recorder that writes it from the executor's events, run history, and what resume needs.

pub mod canonical;
pub mod fingerprint;
pub mod history;
pub mod journal;
pub mod leftovers;
pub mod recorder;
pub mod resume;
pub mod run_dir;

pub use history::{HistoryError, RunRecord, StepRecord};
pub use journal::{JournalError, Record};
pub use recorder::Recorder;
pub use run_dir::{RunDir, RunDirError, RunLock};
