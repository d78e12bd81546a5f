//! What a plan node's templates read, as written: the params and secrets they name. A resume
//! asks only for the secrets the steps still to run read, and refuses a new value for a param
//! that a finished step read. Runbook-level templates (`env`, `hosts`, `defaults.ssh`) count as
//! read by every step of their runbook: better to ask too much than to miss one.

use std::collections::BTreeSet;

use super::model::{Plan, PlanNode};
use super::sites::{self, Site};
use crate::limits;
use crate::template;

/// The names a node's templates read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// `params.<name>` — of the node's own scope (a called runbook's params are its own).
    pub params: BTreeSet<String>,
    /// `secrets.<name>`.
    pub secrets: BTreeSet<String>,
    /// A template reads `params` whole (`params[name]`, `params | items`).
    pub all_params: bool,
    /// A template reads `secrets` whole.
    pub all_secrets: bool,
}

impl Reads {
    /// Whether the node reads param `name`.
    pub fn param(&self, name: &str) -> bool {
        self.all_params || self.params.contains(name)
    }

    /// Whether the node reads secret `name`.
    pub fn secret(&self, name: &str) -> bool {
        self.all_secrets || self.secrets.contains(name)
    }

    fn add(&mut self, site: &Site<'_>) {
        if limits::check(site.text, site.expression).is_err() {
            // Not compiled here (the static checks refused it already); assume it reads all.
            self.all_params = true;
            self.all_secrets = true;
            return;
        }
        let env = template::environment();
        let names = if site.expression {
            env.compile_expression(site.text)
                .map(|e| e.undeclared_variables(true))
        } else if template::has_markup(site.text) {
            env.template_from_str(site.text)
                .map(|t| t.undeclared_variables(true))
        } else {
            return;
        };
        let Ok(names) = names else {
            self.all_params = true;
            self.all_secrets = true;
            return;
        };
        for name in names {
            let mut parts = name.splitn(3, '.');
            match (parts.next(), parts.next()) {
                (Some("params"), Some(p)) => {
                    self.params.insert(p.to_owned());
                }
                (Some("secrets"), Some(s)) => {
                    self.secrets.insert(s.to_owned());
                }
                (Some("params"), None) => self.all_params = true,
                (Some("secrets"), None) => self.all_secrets = true,
                _ => {}
            }
        }
    }
}

/// What a node's templates read: its step's, and its runbook's own (`env`, `hosts`).
pub fn of_node(plan: &Plan, node: &PlanNode) -> Reads {
    let runbook = plan.runbook_of(node);
    let mut reads = Reads::default();
    for site in sites::collect(runbook) {
        let own = site
            .step
            .is_none_or(|s| std::ptr::eq(s, node.step.as_ref()));
        if own {
            reads.add(&site);
        }
    }
    reads
}

/// Whether a node's `params.<name>` are the root runbook's: it is in the root, or in blocks
/// (which share their caller's params) inside it.
pub fn reads_root_params(plan: &Plan, node: &PlanNode) -> bool {
    let mut scope = node.scope;
    loop {
        let s = &plan.scopes[scope];
        match s.caller {
            None => return true,
            Some(caller) if s.block => scope = caller,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK: &str = "\
name: reads
params:
  host: { default: db1 }
  snapshot: { default: s1 }
  unused: { default: x }
secrets:
  key: { env: READS_KEY }
  token: { env: READS_TOKEN }
env:
  HOST: \"{{ params.host }}\"
steps:
  - id: fetch
    run: fetch {{ params.snapshot }} --token {{ secrets.token }}
  - id: check
    when: params.snapshot != ''
    assert: \"true\"
  - id: confirm
    manual: Check {{ steps.fetch.status }}
";

    fn plan() -> Plan {
        let file = crate::spec::SourceFile::new("reads.yaml", BOOK);
        let runbook = crate::spec::from_source(&file).expect("a valid runbook");
        crate::plan::compile(runbook, None).expect("it compiles")
    }

    fn reads(plan: &Plan, id: &str) -> Reads {
        let n = plan.find(id).expect("the node");
        of_node(plan, &plan.graph[n])
    }

    #[test]
    fn a_node_reads_its_own_templates_and_its_runbooks_env() {
        let plan = plan();
        let fetch = reads(&plan, "fetch");
        assert_eq!(
            fetch.params,
            BTreeSet::from(["host".to_owned(), "snapshot".to_owned()])
        );
        assert_eq!(fetch.secrets, BTreeSet::from(["token".to_owned()]));
        assert!(!fetch.secret("key") && !fetch.param("unused"));
        assert!(reads(&plan, "check").param("snapshot"), "`when` is read");
        let confirm = reads(&plan, "confirm");
        assert!(!confirm.param("snapshot") && confirm.secrets.is_empty());
        assert!(reads_root_params(
            &plan,
            &plan.graph[plan.find("fetch").unwrap()]
        ));
    }
}
