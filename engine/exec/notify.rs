//! `notify:` — the HTTP requests sent when a run ends paused, failed or succeeded, so that a
//! pause at 3 a.m. reaches someone. Each tells the run's id, its status, the manual steps
//! waiting for a person and the command that continues the run. The bodies are masked (no
//! secret leaves in a body; a header may carry one, for authentication). A notification that
//! cannot be rendered or sent is reported and journaled; it never changes the run's status.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::event::{Event, RunStatus};
use super::render::Scope;
use super::runtime::Runtime;
use super::secrets::Secrets;
use super::step::http::{self, Request};
use crate::plan::{NodeId, Plan};
use crate::spec::{HttpBody, Notify, NotifyOn};

/// How long a notification may take when its `http` has no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the notifications of a run need, taken from its plan before the run starts.
#[derive(Debug, Clone)]
pub struct Notices {
    notify: Vec<Notify>,
    runbook: String,
    params: Map<String, Value>,
    secrets: Map<String, Value>,
}

impl Notices {
    /// The root runbook's notifications, with the values their templates read.
    pub fn of(plan: &Plan, secrets: &Secrets) -> Self {
        Self {
            notify: plan.root().notify.clone(),
            runbook: plan.root().name.clone(),
            params: plan.params.clone(),
            secrets: secrets.as_map(),
        }
    }

    /// Sends every notification whose `on` holds `status` (none during a rehearsal), one after
    /// the other, each reported as an event.
    pub async fn send(&self, rt: &Runtime, status: RunStatus, waiting: &[NodeId]) {
        if rt.options.dry_run {
            return;
        }
        let Some(on) = notify_on(status) else {
            return;
        };
        let run = run_facts(&rt.options.run_id, &self.runbook, status, waiting);
        let scope = Scope::new(&json!({
            "params": self.params,
            "secrets": self.secrets,
            "run": run,
        }));
        for notify in self.notify.iter().filter(|n| n.on.contains(&on)) {
            let (url, result) = match request(notify, &scope, &run) {
                Ok(mut req) => {
                    req.json = req.json.map(|j| rt.masker.mask_value(&j));
                    req.body = req.body.map(|b| rt.masker.mask(&b));
                    let url = req.url.clone();
                    (url, http::send(rt, &req).await.map_err(|f| f.message))
                }
                Err(message) => (notify.http.url.text.clone(), Err(message)),
            };
            let (code, error) = match result {
                Ok(response) => (response["status"].as_u64(), None),
                Err(message) => (None, Some(message)),
            };
            rt.checkpoint(Event::Notified {
                on: status,
                url,
                status: code.and_then(|c| u16::try_from(c).ok()),
                error,
            })
            .await;
        }
    }
}

/// The `on:` value a run status is sent on (an interrupted run sends nothing: it was stopped
/// on purpose, and `resume` continues it).
fn notify_on(status: RunStatus) -> Option<NotifyOn> {
    match status {
        RunStatus::Paused => Some(NotifyOn::Paused),
        RunStatus::Failed => Some(NotifyOn::Failed),
        RunStatus::Succeeded => Some(NotifyOn::Succeeded),
        RunStatus::Running | RunStatus::Interrupted => None,
    }
}

/// `run` in a notification's templates, and its default body.
fn run_facts(run_id: &str, runbook: &str, status: RunStatus, waiting: &[NodeId]) -> Value {
    let waiting: Vec<String> = waiting.iter().map(ToString::to_string).collect();
    let resume_command = match status {
        RunStatus::Paused => Value::String(format!(
            "runbook resume {run_id}{}",
            waiting.iter().fold(String::new(), |mut out, w| {
                let _ = write!(out, " --approve {w}");
                out
            })
        )),
        RunStatus::Failed => Value::String(format!("runbook resume {run_id}")),
        _ => Value::Null,
    };
    json!({
        "id": run_id,
        "name": runbook,
        "status": status.as_str(),
        "waiting_for": waiting,
        "resume_command": resume_command,
    })
}

/// The rendered request; without a body, a POST of the run's facts.
fn request(notify: &Notify, scope: &Scope, run: &Value) -> Result<Request, String> {
    let req = &notify.http;
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| {
            scope
                .text(v, &format!("notify.http.headers.{k}"))
                .map(|v| (k.clone(), v))
        })
        .collect::<Result<_, _>>()
        .map_err(|f| f.message)?;
    let (method, json, body) = match &req.body {
        Some(HttpBody::Json(v)) => (
            req.method.clone(),
            Some(scope.value(v, "notify.http.json").map_err(|f| f.message)?),
            None,
        ),
        Some(HttpBody::Text(t)) => (
            req.method.clone(),
            None,
            Some(scope.text(t, "notify.http.body").map_err(|f| f.message)?),
        ),
        None => {
            let method = if req.method == "GET" {
                "POST".to_owned()
            } else {
                req.method.clone()
            };
            let mut facts = run.clone();
            facts["run_id"] = facts["id"].take();
            facts["runbook"] = facts["name"].take();
            if let Value::Object(map) = &mut facts {
                map.remove("id");
                map.remove("name");
            }
            (method, Some(facts), None)
        }
    };
    Ok(Request {
        method,
        url: scope
            .text(&req.url, "notify.http.url")
            .map_err(|f| f.message)?,
        headers,
        json,
        body,
        timeout: req.timeout.unwrap_or(DEFAULT_TIMEOUT),
        insecure: req.insecure,
        expect: req.expect_status.clone(),
        // Sent from where the run runs.
        via: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_run_names_its_waiting_steps_and_how_to_continue() {
        let waiting = [NodeId::parse("approve").expect("an id")];
        let facts = run_facts("r1", "book", RunStatus::Paused, &waiting);
        assert_eq!(facts["waiting_for"], json!(["approve"]));
        assert_eq!(
            facts["resume_command"],
            "runbook resume r1 --approve approve"
        );
        let facts = run_facts("r1", "book", RunStatus::Succeeded, &[]);
        assert_eq!(facts["resume_command"], Value::Null);
        assert_eq!(notify_on(RunStatus::Interrupted), None);
    }
}
