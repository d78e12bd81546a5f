//! Stage five: what people and machines read — diagnostics, graphs, progress, summaries, and
//! the questions asked at the terminal.

pub mod catalogue;
pub mod estimate;
pub mod evidence;
pub mod gantt;
pub mod graph;
pub mod history;
pub mod html;
pub mod json;
pub mod live;
pub mod markdown;
pub mod prompt;
pub mod screen;
