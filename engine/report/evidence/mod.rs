//! The evidence of one run: one model ([`Evidence`]) gathered from the store, rendered as HTML,
//! Markdown or JSON by `report::{html, markdown, json}`.

pub mod gather;
pub mod model;
pub mod people;
pub mod steps;
pub mod totals;

pub use gather::{Sources, assemble, gather};
pub use model::Evidence;
