//! One module per step kind, and [`perform`]: the one place a side effect happens. (Whether it
//! may happen at all in a rehearsal is decided before, in `exec::rehearse`.)

pub mod assert;
pub mod command;
pub mod http;
pub mod manual;
pub mod sleep;

use serde_json::Value;

use super::runtime::Runtime;
use crate::exec::remote::UploadSource;
use crate::plan::NodeId;

/// A failed attempt, with the step's result when there is one (a non-zero exit, an HTTP 500).
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// `result`, when the attempt produced one.
    pub result: Option<Value>,
}

impl Failure {
    /// A failure without a result.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            result: None,
        }
    }

    /// A failure that still produced a result (which `until` may inspect).
    pub fn with_result(message: String, result: Value) -> Self {
        Self {
            message,
            result: Some(result),
        }
    }
}

/// A step's side effect, fully rendered.
#[derive(Debug, Clone)]
pub enum Action {
    /// A command, on this machine or on a host (`on:`).
    Command {
        /// What runs.
        line: command::CommandLine,
        /// Where: `None` on this machine.
        host: Option<crate::exec::hosts::HostTarget>,
    },
    /// A request.
    Http(http::Request),
    /// A wait.
    Sleep(std::time::Duration),
    /// A file moved to or from a host.
    Transfer(Transfer),
}

/// A rendered `upload` or `download`.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Which way.
    pub direction: Direction,
    /// The host.
    pub host: crate::exec::hosts::HostTarget,
    /// The local side: a path (or, for an upload of `content`, none).
    pub local: Option<String>,
    /// Content rendered here (an upload of `content`).
    pub content: Option<String>,
    /// The path on the host.
    pub remote: String,
    /// Permissions of what is written.
    pub mode: Option<u32>,
}

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To the host.
    Upload,
    /// From the host.
    Download,
}

impl Transfer {
    /// Moves the file over the host's connection: `{changed, sha256}`.
    async fn perform(&self, rt: &Runtime, id: &NodeId) -> Result<Value, Failure> {
        match self.direction {
            Direction::Upload => {
                let source = match (&self.local, &self.content) {
                    (Some(path), _) => UploadSource::Path(path.into()),
                    (None, content) => {
                        UploadSource::Content(content.clone().unwrap_or_default().into_bytes())
                    }
                };
                rt.remote
                    .upload(rt, id, &self.host, &source, &self.remote, self.mode)
                    .await
            }
            Direction::Download => {
                let dest = self.local.as_deref().unwrap_or_default();
                rt.remote
                    .download(rt, id, &self.host, &self.remote, std::path::Path::new(dest))
                    .await
            }
        }
    }

    /// What a person reads.
    pub fn description(&self) -> String {
        let host = &self.host.key;
        match self.direction {
            Direction::Upload => {
                let what = self
                    .local
                    .clone()
                    .unwrap_or_else(|| "rendered content".to_owned());
                let mode = self
                    .mode
                    .map(|m| format!(" (mode {m:04o})"))
                    .unwrap_or_default();
                format!("upload {what} to {host}:{}{mode}", self.remote)
            }
            Direction::Download => format!(
                "download {host}:{} to {}",
                self.remote,
                self.local.as_deref().unwrap_or_default()
            ),
        }
    }
}

impl Action {
    /// What a person reads.
    pub fn description(&self) -> String {
        match self {
            Self::Command { line, host: None } => line.description.clone(),
            Self::Command {
                line,
                host: Some(host),
            } => format!("[{}] {}", host.label(), line.description),
            Self::Http(req) => req.description(),
            Self::Sleep(d) => format!("sleep {}", crate::spec::duration::Human(*d)),
            Self::Transfer(t) => t.description(),
        }
    }
}

/// Starts what an action runs ahead of its journaled start, held before any side effect: a
/// local script's shell ([`command::hold`]). `None`: the action starts in [`perform`].
pub fn hold(rt: &Runtime, id: &NodeId, action: &Action) -> Option<command::Held> {
    match action {
        Action::Command { line, host: None } => command::hold(rt, id, line),
        _ => None,
    }
}

/// [`perform`], releasing what [`hold`] started when there is one.
pub async fn perform_held(
    rt: &Runtime,
    id: &NodeId,
    action: &Action,
    held: Option<command::Held>,
    timeout: Option<std::time::Duration>,
) -> Result<Value, Failure> {
    match (held, action) {
        (Some(held), Action::Command { .. }) => command::run_held(rt, id, timeout, held).await,
        _ => perform(rt, id, action, timeout).await,
    }
}

/// Carries out an action: the one place a side effect happens.
pub async fn perform(
    rt: &Runtime,
    id: &NodeId,
    action: &Action,
    timeout: Option<std::time::Duration>,
) -> Result<Value, Failure> {
    match action {
        Action::Command { line, host: None } => command::run(rt, id, line, timeout).await,
        Action::Command {
            line,
            host: Some(host),
        } => rt.remote.run(rt, id, host, line, timeout).await,
        Action::Http(req) => match timeout {
            // A poll's remaining time bounds the request too.
            Some(limit) if limit < req.timeout => {
                let bounded = http::Request {
                    timeout: limit,
                    ..req.clone()
                };
                http::send(rt, &bounded).await
            }
            _ => http::send(rt, req).await,
        },
        Action::Sleep(d) => sleep::wait(rt, *d).await,
        Action::Transfer(t) => match timeout {
            Some(limit) => tokio::time::timeout(limit, t.perform(rt, id))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(format!(
                        "timed out after {}; the destination was left as it was",
                        crate::spec::duration::Human(limit)
                    )))
                }),
            None => t.perform(rt, id).await,
        },
    }
}
