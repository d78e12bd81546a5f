//! Runs kept in `PostgreSQL` (`--state postgres://…`, `RUNBOOK_STATE`): the second
//! [`crate::state::Store`], shared by a team.

mod connect;
mod error;
mod journal;
mod lock;
mod open;
mod schema;
mod session;
mod store;
mod summary;
mod target;
mod tls;
mod worker;

pub use error::PgError;
pub use store::{DEFAULT_PATIENCE, PgStore};
pub use target::is_postgres_url;
