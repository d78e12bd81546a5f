//! Stage four: durable runs. The store where runs are kept ([`store::Store`], with local folders
//! as [`local::LocalStore`]), the journal's records, the recorder that writes them from the
//! executor's events, the journal read back as a timeline, and what resume needs.

pub mod canonical;
pub mod chronicle;
pub mod fingerprint;
pub mod identity;
pub mod journal;
pub mod leftovers;
pub mod local;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod recorder;
pub mod resume;
pub mod runbook_copy;
pub mod store;
pub mod timeline;

pub use journal::{JournalError, Record};
pub use local::LocalStore;
pub use recorder::Recorder;
pub use runbook_copy::RunbookCopy;
pub use store::{Holder, Lease, RunJournal, Store, StoreError};
pub use timeline::{RunSummary, Timeline};
