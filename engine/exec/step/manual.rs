//! `manual:` — a person's step. People decide it: at its terminal prompt, with `--approve STEP`
//! or `--approve-all` (never `--yes`), or they reject it. With `approvers: N` it needs N
//! approvals by distinct people; with `timeout`, no decision in time fails it (fail closed);
//! its `inputs` are values the approvers supply. When nobody can decide now, the run pauses.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::exec::approvals::{Given, Via, Waiting};
use crate::exec::event::{Answer, AskedInput, Event};
use crate::exec::runtime::Runtime;
use crate::plan::NodeId;
use crate::spec::Manual;
use crate::spec::duration::Human;

/// What became of a manual step.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Approved by enough people, with every input supplied.
    Approved {
        /// How it reads: who approved, and how.
        reason: String,
        /// The inputs, merged from every approval (a later one wins).
        inputs: Map<String, Value>,
    },
    /// Someone said no.
    Rejected(String),
    /// Nobody decided within its `timeout`.
    TimedOut(Duration),
    /// Nobody can decide now: the run pauses. What it still waits for, and the inputs nobody
    /// has supplied.
    Pause(String, Vec<String>),
    /// The run was interrupted while a person was asked, or a decision could not be journaled.
    Stopped(&'static str),
}

/// The wait of one manual step: where it stands, and what it needs.
struct Wait<'a> {
    rt: &'a Runtime,
    id: &'a NodeId,
    manual: &'a Manual,
    /// When it began to wait.
    since: Timestamp,
    /// The approvals it has (earlier ones first).
    approvals: Vec<Given>,
}

/// Decides a manual step whose wait began at `since` (`earlier`: what earlier processes of the
/// run recorded of that wait).
pub async fn decide(
    rt: &Runtime,
    id: &NodeId,
    manual: &Manual,
    instructions: &str,
    earlier: Option<&Waiting>,
    since: Timestamp,
) -> Decision {
    let mut wait = Wait {
        rt,
        id,
        manual,
        since,
        approvals: earlier.map(|w| w.approvals.clone()).unwrap_or_default(),
    };
    if let Some(limit) = wait.timed_out() {
        return Decision::TimedOut(limit);
    }
    let people = &rt.options.approvals;
    let given = people.inputs_for(id);
    let named = people
        .verdict(id)
        .map(|v| (v.approved, v.reason.clone(), Via::Option))
        .or_else(|| people.all.then_some((true, None, Via::ApproveAll)));
    let recorded = match named {
        Some((false, reason, via)) => return wait.rejected(via, reason).await,
        Some((true, _, via)) => wait.approve(via, given).await,
        None => true,
    };
    if !recorded {
        return Decision::Stopped("the journal could not record the approval");
    }
    if let Some(done) = wait.complete() {
        return done;
    }
    if rt.options.interactive && !wait.approved_by(&people.identity) {
        let question = format!("{instructions}{}", wait.needs_line());
        let answer = tokio::select! {
            answer = rt.ask_person(id, &question, wait.asked_inputs(), wait.deadline()) => answer,
            () = until(wait.deadline()) => Answer::Unanswered,
            () = rt.cancel.cancelled() => return Decision::Stopped("interrupted"),
        };
        match answer {
            Answer::Approved(inputs) => {
                if !wait.approve(Via::Prompt, inputs).await {
                    return Decision::Stopped("the journal could not record the approval");
                }
            }
            Answer::Rejected => return wait.rejected(Via::Prompt, None).await,
            Answer::Unanswered => {
                if let Some(limit) = wait.timed_out() {
                    return Decision::TimedOut(limit);
                }
            }
        }
        if let Some(done) = wait.complete() {
            return done;
        }
    }
    let missing = wait.missing().into_iter().map(str::to_owned).collect();
    Decision::Pause(wait.waits_for(), missing)
}

/// Sleeps until `deadline` (forever without one).
async fn until(deadline: Option<Timestamp>) {
    match deadline {
        Some(at) => {
            let left = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
            tokio::time::sleep(left).await;
        }
        None => std::future::pending().await,
    }
}

impl Wait<'_> {
    /// When no decision fails the step.
    fn deadline(&self) -> Option<Timestamp> {
        let limit = jiff::SignedDuration::try_from(self.manual.timeout?).ok()?;
        self.since.checked_add(limit).ok()
    }

    /// The step's `timeout`, once it has passed.
    fn timed_out(&self) -> Option<Duration> {
        let deadline = self.deadline()?;
        (Timestamp::now() >= deadline)
            .then_some(self.manual.timeout)
            .flatten()
    }

    /// Whether `who` has approved this wait already.
    fn approved_by(&self, who: &str) -> bool {
        self.approvals.iter().any(|a| a.by == who)
    }

    /// The distinct people who approved, in order.
    fn approvers(&self) -> Vec<&str> {
        let mut people: Vec<&str> = Vec::new();
        for a in &self.approvals {
            if !people.contains(&a.by.as_str()) {
                people.push(&a.by);
            }
        }
        people
    }

    /// The inputs supplied so far (a later approval's value wins).
    fn inputs(&self) -> Map<String, Value> {
        let mut merged = Map::new();
        for a in &self.approvals {
            merged.extend(a.inputs.clone());
        }
        merged
    }

    /// Declared inputs nobody has supplied yet.
    fn missing(&self) -> Vec<&str> {
        let have = self.inputs();
        self.manual
            .inputs
            .iter()
            .filter(|i| !have.contains_key(&i.name))
            .map(|i| i.name.as_str())
            .collect()
    }

    /// The inputs a prompt asks for: those still missing.
    fn asked_inputs(&self) -> Vec<AskedInput> {
        let missing = self.missing();
        self.manual
            .inputs
            .iter()
            .filter(|i| missing.contains(&i.name.as_str()))
            .map(|i| AskedInput {
                name: i.name.clone(),
                ty: i.ty,
                description: i.description.clone(),
                allowed: i.allowed.clone(),
            })
            .collect()
    }

    /// Records an approval by this process's person (durable before the run goes on). The same
    /// person approving again counts once; it is recorded only when it supplies inputs.
    async fn approve(&mut self, via: Via, inputs: Map<String, Value>) -> bool {
        let people = &self.rt.options.approvals;
        if self.approved_by(&people.identity) && inputs.is_empty() {
            return true;
        }
        let recorded = self
            .rt
            .checkpoint(Event::Decided {
                id: self.id.clone(),
                approved: true,
                by: people.identity.clone(),
                host: people.host.clone(),
                via,
                reason: None,
                inputs: inputs.clone(),
            })
            .await;
        self.approvals.push(Given {
            by: people.identity.clone(),
            via: Some(via),
            inputs,
        });
        recorded
    }

    /// Records a rejection: the step fails.
    async fn rejected(&self, via: Via, reason: Option<String>) -> Decision {
        let people = &self.rt.options.approvals;
        let recorded = self
            .rt
            .checkpoint(Event::Decided {
                id: self.id.clone(),
                approved: false,
                by: people.identity.clone(),
                host: people.host.clone(),
                via,
                reason: reason.clone(),
                inputs: Map::new(),
            })
            .await;
        if !recorded {
            return Decision::Stopped("the journal could not record the rejection");
        }
        Decision::Rejected(format!(
            "rejected by {} {}{}",
            people.identity,
            via.describe(false),
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ))
    }

    /// Approved, when enough distinct people have approved and every input has a value.
    fn complete(&self) -> Option<Decision> {
        let needed = usize::try_from(self.manual.approvers).unwrap_or(usize::MAX);
        if self.approvers().len() < needed || !self.missing().is_empty() {
            return None;
        }
        let mut by: Vec<String> = Vec::new();
        for person in self.approvers() {
            let via = self
                .approvals
                .iter()
                .find(|a| a.by == person)
                .and_then(|a| a.via);
            by.push(match via {
                Some(via) => format!("{person} {}", via.describe(true)),
                None => person.to_owned(),
            });
        }
        Some(Decision::Approved {
            reason: format!("approved by {}", by.join(", ")),
            inputs: self.inputs(),
        })
    }

    /// What a prompt adds under the instructions: approvals still needed, and the time left.
    fn needs_line(&self) -> String {
        let mut lines = String::new();
        if self.manual.approvers > 1 {
            let so_far = self.approvers();
            let _ = write!(
                lines,
                "\n({} approvals by different people are needed{})",
                self.manual.approvers,
                if so_far.is_empty() {
                    String::new()
                } else {
                    format!("; approved so far by {}", so_far.join(", "))
                }
            );
        }
        if let Some(deadline) = self.deadline() {
            let _ = write!(
                lines,
                "\n(no decision by {} fails this step)",
                deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        lines
    }

    /// What the paused step waits for, and how to give it.
    fn waits_for(&self) -> String {
        let needed = usize::try_from(self.manual.approvers).unwrap_or(usize::MAX);
        let so_far = self.approvers();
        let mut needs = Vec::new();
        if so_far.len() < needed {
            needs.push(if so_far.is_empty() {
                if needed == 1 {
                    "an approval".to_owned()
                } else {
                    format!("{needed} approvals by different people")
                }
            } else {
                let more = needed - so_far.len();
                format!(
                    "{more} more approval{} by {} (approved so far by {}; {needed} needed)",
                    if more == 1 { "" } else { "s" },
                    if more == 1 {
                        "another person"
                    } else {
                        "other people"
                    },
                    so_far.join(", ")
                )
            });
        }
        let missing = self.missing();
        if !missing.is_empty() {
            needs.push(format!(
                "input{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut text = needs.join(" and ");
        if let Some(deadline) = self.deadline() {
            let _ = write!(
                text,
                "; no decision by {} ({} after it began to wait) fails it",
                deadline.strftime("%Y-%m-%d %H:%M:%S UTC"),
                Human(self.manual.timeout.unwrap_or_default())
            );
        }
        text
    }
}
