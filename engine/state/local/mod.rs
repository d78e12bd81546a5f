//! Runs kept in local folders: the run folder, its journal file, its lock, and the store over
//! them.

pub mod journal;
pub mod lease;
pub mod run_dir;
pub mod store;
pub mod writer;

pub use store::{DEFAULT_STATE_DIR, LocalStore};
