//! Stage five: what people and machines read — diagnostics, graphs, progress, summaries.

pub mod graph;
pub mod history;
pub mod live;
pub mod prompt;
pub mod screen;
