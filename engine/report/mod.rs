//! Stage five: what people and machines read — diagnostics, graphs, progress, summaries, and
//! the questions asked at the terminal.

pub mod catalogue;
pub mod graph;
pub mod history;
pub mod live;
pub mod order;
pub mod prompt;
