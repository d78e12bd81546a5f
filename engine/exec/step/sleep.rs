//! `sleep:` — waits, unless the run is interrupted.

use std::time::Duration;

use serde_json::Value;

use super::Failure;
use crate::exec::runtime::Runtime;

/// Waits for the duration.
pub async fn wait(rt: &Runtime, duration: Duration) -> Result<Value, Failure> {
    tokio::select! {
        () = tokio::time::sleep(duration) => Ok(Value::Null),
        () = rt.cancel.cancelled() => Err(Failure::new("interrupted")),
    }
}
