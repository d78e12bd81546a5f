//! What people decide about manual steps, as the executor is told it: who decides in this
//! process, the steps named by `--approve STEP` and `--reject STEP`, `--approve-all`, the values
//! given with `--input STEP.NAME=VALUE` (checked against the steps' declarations before anything
//! runs), and, for a resume, what earlier processes recorded of the steps still waiting.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::plan::{NodeId, Plan};
use crate::spec::{Manual, StepKind};

/// How a decision was taken (journaled with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Answered at the step's terminal prompt.
    Prompt,
    /// `--approve STEP` or `--reject STEP`.
    Option,
    /// `--approve-all`.
    ApproveAll,
    /// `--yes` (a destructive step's confirmation).
    Yes,
}

impl Via {
    /// How it reads after "approved by alice" or "rejected by bob".
    pub fn describe(self, approved: bool) -> &'static str {
        match (self, approved) {
            (Self::Prompt, _) => "at the prompt",
            (Self::Option, true) => "with --approve",
            (Self::Option, false) => "with --reject",
            (Self::ApproveAll, _) => "with --approve-all",
            (Self::Yes, _) => "with --yes",
        }
    }
}

/// A decision given on the command line for a named step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The step as named: a step, an item (`check[1]`), a step of a call (`restore.confirm`);
    /// a fanned-out step names each of its items.
    pub step: NodeId,
    /// Approved (true) or rejected.
    pub approved: bool,
    /// Why (rejections).
    pub reason: Option<String>,
}

/// A value given with `--input STEP.NAME=VALUE`, typed by the step's declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenInput {
    /// The step as named.
    pub step: NodeId,
    /// The input.
    pub name: String,
    /// The value.
    pub value: Value,
}

/// One approval recorded earlier, with the inputs it supplied.
#[derive(Debug, Clone, PartialEq)]
pub struct Given {
    /// Who.
    pub by: String,
    /// How (not recorded by older builds).
    pub via: Option<Via>,
    /// What they supplied.
    pub inputs: Map<String, Value>,
}

/// What earlier processes recorded of a manual step that still waits for a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// When it began to wait (its `timeout` counts from here).
    pub since: Timestamp,
    /// The approvals of this wait so far, in order.
    pub approvals: Vec<Given>,
}

/// Everything the executor is told about people's decisions.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// Who decides in this process (`--as`, else `user@host`).
    pub identity: String,
    /// The machine they decide on.
    pub host: Option<String>,
    /// `--approve-all`: every manual step reached is approved (recorded as such).
    pub all: bool,
    /// `--approve STEP` and `--reject STEP`.
    pub verdicts: Vec<Verdict>,
    /// `--input STEP.NAME=VALUE`.
    pub inputs: Vec<GivenInput>,
    /// Manual steps waiting since an earlier process, by node.
    pub waiting: HashMap<NodeId, Waiting>,
}

impl Approvals {
    /// The decision named for a node: a rejection wins over an approval.
    pub fn verdict(&self, id: &NodeId) -> Option<&Verdict> {
        let named = || self.verdicts.iter().filter(|v| id.is_within(&v.step));
        named()
            .find(|v| !v.approved)
            .or_else(|| named().find(|v| v.approved))
    }

    /// The values given for a node's inputs (the last one given for a name wins).
    pub fn inputs_for(&self, id: &NodeId) -> Map<String, Value> {
        self.inputs
            .iter()
            .filter(|i| id.is_within(&i.step))
            .map(|i| (i.name.clone(), i.value.clone()))
            .collect()
    }
}

/// Why decisions given on the command line cannot be taken (before anything runs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// `--approve STEP` (or `--input STEP.…`) names no manual step of the runbook.
    #[error("`{option} {step}`: {}", if *.exists { "not a manual step".to_owned() } else { format!("the runbook has no step `{step}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()) })]
    NotManual {
        /// The option (`--approve`, `--input`).
        option: &'static str,
        /// The step as given.
        step: String,
        /// Whether the step exists (and is not manual).
        exists: bool,
        /// Did you mean, or the manual steps there are.
        hint: Option<String>,
    },
    /// `--input` that is not `STEP.NAME=VALUE`.
    #[error("`--input {0}` is not `STEP.NAME=VALUE`")]
    Malformed(String),
    /// An input the step does not declare.
    #[error("`--input {given}`: step `{step}` has no input `{name}` ({})", if declared.is_empty() { "it declares none".to_owned() } else { format!("it declares: {}", declared.join(", ")) })]
    UnknownInput {
        /// The argument as given.
        given: String,
        /// The step.
        step: String,
        /// The input as given.
        name: String,
        /// The inputs it declares.
        declared: Vec<String>,
    },
    /// A value of the wrong type, or not one the input takes.
    #[error("`--input {given}`: {problem}")]
    Refused {
        /// The argument as given.
        given: String,
        /// Why.
        problem: String,
    },
}

/// The manual steps of a plan whose id is `step` or within it (its items, the steps of a call),
/// or that contain it (an item of a fan-out expanded only at run time).
fn manual_nodes<'p>(plan: &'p Plan, step: &NodeId) -> Vec<(&'p NodeId, &'p Manual)> {
    plan.graph
        .node_weights()
        .filter(|n| n.id.is_within(step) || step.is_within(&n.id))
        .filter_map(|n| match &n.step.kind {
            StepKind::Manual(manual) => Some((&n.id, manual)),
            _ => None,
        })
        .collect()
}

/// The error for a step named by `option` that is no manual step.
fn not_manual(plan: &Plan, option: &'static str, step: &str) -> ApprovalError {
    let exists = NodeId::parse(step).is_ok_and(|id| {
        plan.graph
            .node_weights()
            .any(|n| n.id.is_within(&id) || id.is_within(&n.id))
    });
    let manual: Vec<&str> = plan
        .graph
        .node_weights()
        .filter(|n| matches!(n.step.kind, StepKind::Manual(_)))
        .map(|n| n.id.as_str())
        .collect();
    let hint = crate::spec::suggest::did_you_mean(step, manual.iter().copied()).or_else(|| {
        Some(if manual.is_empty() {
            "the runbook has no manual step".to_owned()
        } else {
            format!("manual steps: {}", manual.join(", "))
        })
    });
    ApprovalError::NotManual {
        option,
        step: step.to_owned(),
        exists,
        hint: if exists { None } else { hint },
    }
}

/// Checks that each step named with `--approve` is a manual step of the plan.
pub fn check_named(plan: &Plan, named: &[String]) -> Result<Vec<NodeId>, Vec<ApprovalError>> {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for step in named {
        match NodeId::parse(step) {
            Ok(id) if !manual_nodes(plan, &id).is_empty() => ids.push(id),
            _ => errors.push(not_manual(plan, "--approve", step)),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}

/// Reads `--input STEP.NAME=VALUE` arguments: each names a manual step and one of its inputs,
/// and its value has the input's type and is one it takes.
pub fn read_inputs(plan: &Plan, given: &[String]) -> Result<Vec<GivenInput>, Vec<ApprovalError>> {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for text in given {
        match read_input(plan, text) {
            Ok(input) => inputs.push(input),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(inputs)
    } else {
        Err(errors)
    }
}

fn read_input(plan: &Plan, text: &str) -> Result<GivenInput, ApprovalError> {
    let malformed = || ApprovalError::Malformed(text.to_owned());
    let (target, value) = text.split_once('=').ok_or_else(malformed)?;
    let (step, name) = target.trim().rsplit_once('.').ok_or_else(malformed)?;
    let id = NodeId::parse(step).map_err(|_| not_manual(plan, "--input", step))?;
    let nodes = manual_nodes(plan, &id);
    let Some((_, manual)) = nodes.first() else {
        return Err(not_manual(plan, "--input", step));
    };
    let Some(input) = manual.inputs.iter().find(|i| i.name == name) else {
        return Err(ApprovalError::UnknownInput {
            given: text.to_owned(),
            step: step.to_owned(),
            name: name.to_owned(),
            declared: manual.inputs.iter().map(|i| i.name.clone()).collect(),
        });
    };
    let refused = |problem: String| ApprovalError::Refused {
        given: text.to_owned(),
        problem,
    };
    let value = crate::plan::params::parse_text(name, input.ty, value)
        .map_err(|e| refused(e.to_string().replacen("param `", "input `", 1)))?;
    if let Some(problem) = crate::spec::refused_choice(&input.allowed, &value) {
        return Err(refused(problem));
    }
    Ok(GivenInput {
        step: id,
        name: name.to_owned(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK: &str = "\
name: people
steps:
  - id: build
    run: echo build
  - id: confirm
    manual:
      instructions: Check the snapshot
      inputs:
        snapshot: { type: string }
        replicas: { type: int, enum: [1, 3] }
  - id: check
    for_each: [a, b]
    manual: Check {{ item }}
";

    fn plan() -> Plan {
        let file = crate::spec::SourceFile::new("people.yaml", BOOK);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        crate::plan::compile(runbook, None).expect("it compiles")
    }

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).expect("a valid id")
    }

    #[test]
    fn approve_names_manual_steps_and_items_of_them() {
        let plan = plan();
        assert_eq!(
            check_named(&plan, &["confirm".to_owned(), "check".to_owned()]),
            Ok(vec![id("confirm"), id("check")])
        );
        assert!(check_named(&plan, &["check[1]".to_owned()]).is_ok());
        let errors = check_named(&plan, &["build".to_owned(), "confrim".to_owned()]).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "`--approve build`: not a manual step"
        );
        assert!(
            errors[1].to_string().contains("did you mean `confirm`?"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn inputs_are_typed_and_checked_against_their_enum() {
        let plan = plan();
        let read = read_inputs(
            &plan,
            &[
                "confirm.snapshot=nightly-7".to_owned(),
                "confirm.replicas=3".to_owned(),
            ],
        )
        .expect("valid inputs");
        assert_eq!(read[1].value, Value::from(3));
        let errors = read_inputs(
            &plan,
            &[
                "confirm.replicas=2".to_owned(),
                "confirm.replicas=two".to_owned(),
                "confirm.snapshotid=x".to_owned(),
                "confirm=x".to_owned(),
            ],
        )
        .unwrap_err();
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts[0],
            "`--input confirm.replicas=2`: `2` is not one of 1, 3"
        );
        assert!(
            texts[1].contains("input `replicas` is an int"),
            "{}",
            texts[1]
        );
        assert!(
            texts[2].contains("it declares: snapshot, replicas"),
            "{}",
            texts[2]
        );
        assert_eq!(texts[3], "`--input confirm=x` is not `STEP.NAME=VALUE`");
    }

    #[test]
    fn a_rejection_wins_and_a_fan_out_names_its_items() {
        let approvals = Approvals {
            verdicts: vec![
                Verdict {
                    step: id("check"),
                    approved: true,
                    reason: None,
                },
                Verdict {
                    step: id("check[1]"),
                    approved: false,
                    reason: Some("not yet".to_owned()),
                },
            ],
            ..Approvals::default()
        };
        assert_eq!(
            approvals.verdict(&id("check[0]")).map(|v| v.approved),
            Some(true)
        );
        assert_eq!(
            approvals.verdict(&id("check[1]")).map(|v| v.approved),
            Some(false)
        );
        assert_eq!(approvals.verdict(&id("confirm")), None);
    }
}
