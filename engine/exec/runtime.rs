//! What every running step shares: options, the event channel, the masker, HTTP clients and
//! the cancellation token.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::approvals::{Approvals, Via};
use super::event::{Answer, AskedInput, Event, Message, PersonQuestion, Question, Stamped};
use super::remote::Remote;
use super::secrets::Masker;
use crate::plan::NodeId;

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id.
    pub run_id: String,
    /// Rehearse: only `safe` steps execute.
    pub dry_run: bool,
    /// Confirm destructive steps without asking (never a manual step: see `approvals`).
    pub yes: bool,
    /// Who decides manual steps, and what was decided on the command line and before.
    pub approvals: Approvals,
    /// Whether a person can be asked (a terminal is attached).
    pub interactive: bool,
    /// Steps at once (`--max-parallel`, else `defaults.max_parallel`, else 4).
    pub max_parallel: usize,
    /// Wait between SIGTERM and SIGKILL when a step's process group is stopped.
    pub kill_grace: Duration,
    /// How much of each output stream is kept for `result`.
    pub capture_limit: usize,
    /// Attempts each step made while earlier processes drove the run (a resume): this
    /// process numbers a step's attempts after them, so attempts count across processes.
    pub earlier_attempts: HashMap<NodeId, u32>,
    /// Environment variables secrets were read from, removed from every command's environment.
    pub secret_sources: Vec<String>,
    /// Stops the steps' process groups if this process dies without stopping them.
    pub dead_man: Option<std::sync::Arc<super::DeadMan>>,
}

impl RunOptions {
    /// Options for a run with the given id and everything else at its default.
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            dry_run: false,
            yes: false,
            approvals: Approvals::default(),
            interactive: false,
            max_parallel: 4,
            kill_grace: Duration::from_secs(5),
            capture_limit: 1 << 20,
            earlier_attempts: HashMap::new(),
            secret_sources: Vec::new(),
            dead_man: None,
        }
    }

    /// The number of a step's first attempt in this process.
    pub fn first_attempt(&self, id: &NodeId) -> u32 {
        self.earlier_attempts
            .get(id)
            .copied()
            .unwrap_or(0)
            .saturating_add(1)
    }
}

/// Shared by every step task of one run.
#[derive(Debug)]
pub struct Runtime {
    /// The run's options.
    pub options: RunOptions,
    /// Masks secrets in everything emitted.
    pub masker: Masker,
    /// Where events go.
    tx: UnboundedSender<Message>,
    /// Cancelled on Ctrl-C: every step stops.
    pub cancel: CancellationToken,
    /// Cancelled on a second Ctrl-C: stopped process groups get SIGKILL without a grace period.
    pub hurry: CancellationToken,
    /// HTTP clients (verifying TLS, and for `insecure: true`), built on first use: loading the
    /// system's certificates costs more than starting a short run without HTTP steps.
    http: [OnceLock<reqwest::Client>; 2],
    /// The run's SSH connections to its hosts (one master per host, opened on first use).
    pub remote: Remote,
    /// HTTP clients sending through a host's proxy, by proxy and `insecure`.
    http_via: std::sync::Mutex<std::collections::HashMap<(String, bool), reqwest::Client>>,
}

impl Runtime {
    /// Builds the shared runtime.
    pub fn new(
        options: RunOptions,
        masker: Masker,
        tx: UnboundedSender<Message>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            remote: Remote::new(options.run_id.clone()).withholding(&options.secret_sources),
            options,
            masker,
            tx,
            cancel,
            hurry: CancellationToken::new(),
            http: [OnceLock::new(), OnceLock::new()],
            http_via: std::sync::Mutex::default(),
        }
    }

    /// The HTTP client (`insecure`: one that skips TLS verification).
    pub fn http(&self, insecure: bool) -> &reqwest::Client {
        self.http[usize::from(insecure)].get_or_init(|| {
            reqwest::Client::builder()
                .danger_accept_invalid_certs(insecure)
                .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
    }

    /// The HTTP client sending through `proxy` (a host's, see `Remote::proxy_through`).
    pub fn http_via(&self, proxy: &str, insecure: bool) -> Result<reqwest::Client, String> {
        let mut clients = self
            .http_via
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&(proxy.to_owned(), insecure)) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
            .proxy(reqwest::Proxy::all(proxy).map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| e.to_string())?;
        clients.insert((proxy.to_owned(), insecure), client.clone());
        Ok(client)
    }

    /// Sends an event (consumers that went away are not an error: the run goes on).
    pub fn emit(&self, event: Event) {
        let _ = self
            .tx
            .send(Message::Event(Stamped::now(event.masked(&self.masker))));
    }

    /// Sends an event and waits until it is durable (the journal synced it). `false`: it could
    /// not be stored, and the run must not go on.
    pub async fn checkpoint(&self, event: Event) -> bool {
        match self.send_checkpoint(event) {
            Some(done) => done.await.is_ok(),
            None => false,
        }
    }

    /// Sends an event to be made durable and returns at once; the receiver answers once it is
    /// (an error: it could not be stored). `None`: nobody records the run any more.
    pub fn send_checkpoint(&self, event: Event) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.tx
            .send(Message::Checkpoint(
                Stamped::now(event.masked(&self.masker)),
                ack,
            ))
            .ok()
            .map(|()| done)
    }

    /// Asks a person to confirm a destructive step (by typing its id); `false` when nobody
    /// can answer.
    async fn ask_destructive(&self, id: &NodeId, prompt: String) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let question = Question {
            id: id.to_owned(),
            prompt: self.masker.mask(&prompt),
            reply,
        };
        if self.tx.send(Message::Ask(question)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Confirms a destructive step before its side effect: `--yes`, else the person at the
    /// terminal (with nobody to ask, it is not confirmed). A decision someone made is journaled
    /// with who made it and how, like an approval; the time the question took is kept apart.
    pub async fn confirm_destructive(&self, id: &NodeId, question: String) -> Confirmation {
        let (confirmed, via, waited) = if self.options.yes {
            (true, Via::Yes, Duration::ZERO)
        } else if self.options.interactive {
            let asked = std::time::Instant::now();
            let confirmed = self.ask_destructive(id, question).await;
            (confirmed, Via::Prompt, asked.elapsed())
        } else {
            return Confirmation {
                confirmed: false,
                recorded: true,
                waited: Duration::ZERO,
            };
        };
        let people = &self.options.approvals;
        let recorded = self
            .checkpoint(Event::Decided {
                id: id.to_owned(),
                approved: confirmed,
                by: people.identity.clone(),
                host: people.host.clone(),
                via,
                reason: None,
                inputs: serde_json::Map::new(),
            })
            .await;
        Confirmation {
            confirmed,
            recorded,
            waited,
        }
    }

    /// Asks a person to decide a manual step (and for its inputs); no answer by `deadline`,
    /// or nobody to ask, is [`Answer::Unanswered`].
    pub async fn ask_person(
        &self,
        id: &NodeId,
        prompt: &str,
        inputs: Vec<AskedInput>,
        deadline: Option<jiff::Timestamp>,
    ) -> Answer {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let question = PersonQuestion {
            id: id.to_owned(),
            prompt: self.masker.mask(prompt),
            inputs,
            deadline,
            reply,
        };
        if self.tx.send(Message::AskPerson(question)).is_err() {
            return Answer::Unanswered;
        }
        answer.await.unwrap_or(Answer::Unanswered)
    }
}

/// How a destructive step's confirmation went.
#[derive(Debug, Clone, Copy)]
pub struct Confirmation {
    /// Confirmed (`--yes`, or "yes" at the prompt).
    pub confirmed: bool,
    /// The decision is in the journal (a journal that cannot take it stops the step).
    pub recorded: bool,
    /// How long the person took to answer.
    pub waited: Duration,
}

impl Confirmation {
    /// Why the step may not go on, if it may not.
    pub fn refused(&self) -> Option<&'static str> {
        if !self.recorded {
            Some("the journal could not record the confirmation")
        } else if !self.confirmed {
            Some("destructive step not confirmed (answer yes at the prompt, or pass --yes)")
        } else {
            None
        }
    }
}
