//! Stage four: durable runs. Run folders, the append-only journal (fsync, group commit), the
//! recorder that writes it from the executor's events, the journal read back as a timeline, and
//! what resume needs.

pub mod canonical;
pub mod fingerprint;
pub mod identity;
pub mod journal;
pub mod leftovers;
pub mod recorder;
pub mod resume;
pub mod run_dir;
pub mod timeline;

pub use journal::{JournalError, Record};
pub use recorder::Recorder;
pub use run_dir::{RunDir, RunDirError, RunLock};
pub use timeline::{RunSummary, Timeline};
