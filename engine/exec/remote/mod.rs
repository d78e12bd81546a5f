//! Remote execution: a run's SSH connections to its hosts (one multiplexed master per host),
//! commands run and stopped on a host, and file transfers over the same connections. Step kinds
//! call [`Remote`]; nothing else starts `ssh`.
//!
//! The system's OpenSSH client is driven directly (`connection.rs` builds every ssh command
//! line): the engine needs a host's `options` passed as they are, its own supervision of the
//! master, commands whose text travels over the connection instead of a command line, and
//! remote process-group kills, which a wrapper crate over `ssh` would not give it.

mod command;
mod connection;
mod digest;
mod forward;
mod hosts;
mod target;
mod transfer;

pub use connection::ConnectError;
pub use hosts::Remote;
pub use target::{DEFAULT_PORT, HostTarget};
pub use transfer::UploadSource;
