//! Stage six, the command line: clap definitions, one module per subcommand, and the one place
//! errors and outcomes become exit codes. It depends on the engine; nothing depends on it.

pub mod args;
pub mod command;
pub mod complete;
pub mod error;
pub mod terminal;

mod describe;
mod files;
mod graph;
mod import;
mod list;
mod logs;
mod man;
mod prune;
mod report;
mod resume;
mod run;
mod runs;
mod schema;
mod show;
mod stop;
mod validate;

pub use args::{ParamArgs, RunFormat, StateArgs};
pub use command::{Cli, Command, execute};
pub use error::{CliError, exit_code, report};
pub use resume::ResumeArgs;
pub use run::RunArgs;
