//! Static checks of every template and expression: syntax, what it calls (see `calls`), names
//! that are not in scope, unknown params, steps and outputs, secrets where they would be stored,
//! and regexes.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use super::ancestry::Ancestry;
use super::calls;
use super::sites::{self, Field, Site, locate};
use crate::diagnostic::Diagnostic;
use crate::limits;
use crate::spec::suggest::did_you_mean;
use crate::spec::{Runbook, SourceFile, Step};
use crate::template;

/// Checks every template of a runbook; returns every mistake. `main` and `finally` are the
/// dependencies of its two lists of steps.
pub fn check<'r>(
    runbook: &'r Runbook,
    main: &'r Ancestry<'r>,
    finally: &'r Ancestry<'r>,
) -> Vec<Diagnostic> {
    let checker = Checker::new(runbook, main, finally);
    let mut out = Vec::new();
    for site in &sites::collect(runbook) {
        checker.check_site(site, &mut out);
    }
    out
}

/// The root names an expression uses (`params`, `steps`, …); `None` if it does not parse.
pub fn roots(expr: &str) -> Option<Vec<String>> {
    limits::check(expr, true).ok()?;
    let compiled = template::environment().compile_expression(expr).ok()?;
    let mut names: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|n| !template::GLOBALS.contains(&n.as_str()))
        .collect();
    names.sort();
    Some(names)
}

struct Checker<'r> {
    runbook: &'r Runbook,
    file: &'r Arc<SourceFile>,
    as_names: Vec<(&'r str, &'r str)>,
    /// The dependencies of `steps:` and of `finally:`, for finding steps and the order checks.
    main_order: &'r Ancestry<'r>,
    finally_order: &'r Ancestry<'r>,
}

const ROOTS: [&str; 6] = ["params", "secrets", "env", "steps", "run", "result"];

impl<'r> Checker<'r> {
    fn new(runbook: &'r Runbook, main: &'r Ancestry<'r>, finally: &'r Ancestry<'r>) -> Self {
        Self {
            runbook,
            file: &runbook.file,
            as_names: runbook
                .all_steps()
                .filter_map(|s| {
                    s.for_each
                        .as_ref()
                        .map(|f| (f.as_name.as_str(), s.id.as_str()))
                })
                .collect(),
            main_order: main,
            finally_order: finally,
        }
    }

    /// A step by id: the first one written, main steps before `finally` steps; in a block,
    /// then the steps around it.
    fn step(&self, id: &str) -> Option<&'r Step> {
        let main = self
            .main_order
            .position(id)
            .map(|i| &*self.runbook.steps[i]);
        main.or_else(|| {
            let i = self.finally_order.position(id)?;
            Some(&*self.runbook.finally[i])
        })
        .or_else(|| {
            self.runbook
                .enclosing
                .iter()
                .find(|s| s.id.as_str() == id)
                .map(AsRef::as_ref)
        })
    }

    /// Whether a step is one around the block being checked (its order is the block's).
    fn is_enclosing(&self, target: &Step) -> bool {
        self.runbook
            .enclosing
            .iter()
            .any(|s| std::ptr::eq(s.as_ref(), target))
    }

    fn at(&self, site: &Site<'_>, needle: &str, message: String) -> Diagnostic {
        let offset = find_name(site.text, needle).unwrap_or(0);
        let span = locate(self.file, site.span, site.text, offset, needle.len());
        Diagnostic::new(self.file, span, message)
    }

    fn check_site(&self, site: &Site<'_>, out: &mut Vec<Diagnostic>) {
        if let Err(exceeded) = limits::check(site.text, site.expression) {
            let (offset, len) = exceeded.range();
            let span = locate(self.file, site.span, site.text, offset, len);
            out.push(exceeded.diagnostic(self.file, span));
            return;
        }
        let env = template::environment();
        let names: HashSet<String> = if site.expression {
            match env.compile_expression(site.text) {
                Ok(e) => e.undeclared_variables(true),
                Err(err) => {
                    out.push(self.syntax(site, &err, true));
                    return;
                }
            }
        } else {
            if !template::has_markup(site.text) {
                return;
            }
            match env.template_from_str(site.text) {
                Ok(t) => t.undeclared_variables(true),
                Err(err) => {
                    out.push(self.syntax(site, &err, false));
                    return;
                }
            }
        };
        let calls = calls::check(self.runbook, site);
        for f in calls.findings {
            let span = locate(self.file, site.span, site.text, f.offset, f.len);
            out.push(
                Diagnostic::new(self.file, span, f.message)
                    .label(f.label)
                    .maybe_hint(f.hint),
            );
        }
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| {
                let root = n.split('.').next().unwrap_or_default();
                !calls.unknown_functions.iter().any(|f| f == root)
            })
            .collect();
        names.sort();
        for name in names {
            if let Some(d) = self.check_name(site, &name) {
                out.push(d);
            }
        }
        self.check_regexes(site, out);
    }

    fn syntax(&self, site: &Site<'_>, err: &minijinja::Error, expression: bool) -> Diagnostic {
        let detail = err.detail().unwrap_or("syntax error");
        let (offset, len) = err.range().map_or_else(
            || {
                let line = err.line().unwrap_or(1).saturating_sub(1);
                let offset = site
                    .text
                    .split_inclusive('\n')
                    .take(line)
                    .map(str::len)
                    .sum();
                (offset, 0)
            },
            |r| (r.start.min(site.text.len()), r.len()),
        );
        let what = if expression { "expression" } else { "template" };
        if let Some((tag, at)) =
            unclosed_block(site.text).filter(|_| detail.contains("end of input"))
        {
            let len = site.text[at..].find(tag).map_or(2, |i| i + tag.len());
            let span = locate(self.file, site.span, site.text, at, len);
            return Diagnostic::new(
                self.file,
                span,
                format!("invalid template: `{{% {tag} %}}` is never closed"),
            )
            .label("opened here")
            .hint(format!("close it with `{{% end{tag} %}}`"));
        }
        if let Some((open, close, at)) = unclosed_delimiter(site.text, detail) {
            let span = locate(self.file, site.span, site.text, at, open.len());
            return Diagnostic::new(
                self.file,
                span,
                format!("invalid template: `{open}` is never closed"),
            )
            .label("opened here")
            .hint(format!("close it with `{close}`"));
        }
        let span = locate(self.file, site.span, site.text, offset, len);
        Diagnostic::new(self.file, span, format!("invalid {what}: {detail}"))
            .label("here")
            .maybe_hint(
                if !expression
                    && site.text.trim_start().starts_with('{')
                    && !site.text.contains("}}")
                {
                    Some("a template expression is written `{{ … }}`".to_owned())
                } else {
                    None
                },
            )
    }

    fn check_name(&self, site: &Site<'_>, name: &str) -> Option<Diagnostic> {
        let parts: Vec<&str> = name.split('.').collect();
        let root = parts[0];
        if template::GLOBALS.contains(&root) || root == "loop" {
            return None;
        }
        match root {
            "params" => {
                let param = parts.get(1)?;
                if self.runbook.param(param).is_some() {
                    return None;
                }
                let declared: Vec<&str> = self.runbook.params.iter().map(|p| p.name.as_str()).collect();
                Some(
                    self.at(site, name, format!("unknown param `{param}`"))
                        .label("not declared under `params`")
                        .maybe_hint(did_you_mean(param, declared.iter().copied()).or_else(|| {
                            Some(format!("declare it: `params: {{ {param}: {{ type: string }} }}`"))
                        })),
                )
            }
            "secrets" => {
                let secret = parts.get(1)?;
                if site.field == Field::Output {
                    return Some(
                        self.at(site, name, format!("secret `{secret}` used in `outputs`"))
                            .label("outputs are stored in the run's journal")
                            .hint("secrets are never stored: use the secret where it is needed, not in an output"),
                    );
                }
                if self.runbook.secrets.iter().any(|s| s.name == *secret) {
                    return None;
                }
                let declared: Vec<&str> = self.runbook.secrets.iter().map(|s| s.name.as_str()).collect();
                Some(
                    self.at(site, name, format!("unknown secret `{secret}`"))
                        .label("not declared under `secrets`")
                        .maybe_hint(did_you_mean(secret, declared.iter().copied()).or_else(|| {
                            Some(format!("declare it: `secrets: {{ {secret}: {{ env: {} }} }}`", secret.to_ascii_uppercase()))
                        })),
                )
            }
            "env" if site.field == Field::Notify => Some(
                self.at(site, name, "`env` in a notification".to_owned())
                    .label("not in scope in `notify`")
                    .hint("a notification sees `params`, `secrets` and `run`"),
            ),
            "steps" if site.field == Field::Notify => Some(
                self.at(site, name, "`steps` in a notification".to_owned())
                    .label("not in scope in `notify`")
                    .hint("a notification sees `params`, `secrets` and `run` (`run.waiting_for` names the steps waiting for a person)"),
            ),
            "env" => None,
            "run" => match parts.get(1) {
                None | Some(&("id" | "status" | "name")) => None,
                Some(&("waiting_for" | "resume_command")) if site.field == Field::Notify => None,
                Some(other) => Some(
                    self.at(site, name, format!("unknown field `run.{other}`"))
                        .label("not a field of `run`")
                        .hint("`run` has `id`, `name` and `status`"),
                ),
            },
            "steps" => self.check_step_ref(site, name, &parts),
            "result" => match site.field {
                Field::Output | Field::Until => None,
                _ => Some(
                    self.at(site, "result", "`result` used outside `outputs` and `until`".to_owned())
                        .label("the step has not run yet here")
                        .hint("`result` is the step's own result: read it in `outputs` (then use `steps.<id>.outputs.<name>`) or in `until`"),
                ),
            },
            _ => self.check_other_root(site, name, root),
        }
    }

    fn check_other_root(&self, site: &Site<'_>, name: &str, root: &str) -> Option<Diagnostic> {
        if let Some(step) = site.step
            && let Some(fe) = &step.for_each
            && fe.as_name == root
        {
            if site.field == Field::ForEach {
                return Some(
                    self.at(
                        site,
                        root,
                        format!("`{root}` used in its own `for_each` list"),
                    )
                    .label("the item does not exist yet")
                    .hint("the list is evaluated before any item exists"),
                );
            }
            return None;
        }
        if let Some((_, owner)) = self.as_names.iter().find(|(n, _)| *n == root) {
            return Some(
                self.at(
                    site,
                    root,
                    format!("`{root}` is only in scope inside step `{owner}`"),
                )
                .label("the `as` name of another step")
                .hint(format!(
                    "read another step's items as `steps.{owner}.items`"
                )),
            );
        }
        if site.step.is_some_and(|s| s.for_each.is_some()) && root == "item" {
            return None;
        }
        if site.step.is_some_and(|s| s.on.is_some()) && root == "host" {
            return None;
        }
        if self.runbook.block_items.iter().any(|i| i == root) {
            return None;
        }
        let mut candidates: Vec<&str> = ROOTS.to_vec();
        if let Some(fe) = site.step.and_then(|s| s.for_each.as_ref()) {
            candidates.push(&fe.as_name);
        }
        let _ = name;
        Some(
            self.at(site, root, format!("unknown variable `{root}`"))
                .label("not in scope")
                .maybe_hint(did_you_mean(root, candidates.iter().copied()).or_else(|| {
                    Some("in scope: params, secrets, env, steps, run (and `result` in outputs/until, the `as` name in a for_each step)".to_owned())
                })),
        )
    }

    fn check_step_ref(&self, site: &Site<'_>, name: &str, parts: &[&str]) -> Option<Diagnostic> {
        let id = parts.get(1)?;
        let Some(target) = self.step(id) else {
            let all: Vec<&str> = self.runbook.all_steps().map(|s| s.id.as_str()).collect();
            return Some(
                self.at(site, name, format!("unknown step `{id}`"))
                    .label("no step has this id")
                    .maybe_hint(did_you_mean(id, all.iter().copied())),
            );
        };
        if let Some(d) = self.check_order(site, name, target) {
            return Some(d);
        }
        match parts.get(2) {
            None | Some(&("status" | "items")) => None,
            Some(&"outputs") => {
                let output = parts.get(3)?;
                let declared = target.output_names();
                if declared.contains(output) {
                    return None;
                }
                Some(
                    self.at(site, name, format!("step `{id}` has no output `{output}`"))
                        .label("not declared in that step's `outputs`")
                        .maybe_hint(did_you_mean(output, declared.iter().copied()).or_else(|| {
                            Some(if matches!(target.kind, crate::spec::StepKind::Call(_) | crate::spec::StepKind::Block(_)) {
                                format!("step `{id}` is a group (a call or a block): it has a status, not outputs of its own")
                            } else if declared.is_empty() {
                                format!("step `{id}` declares no outputs; add `outputs: {{ {output}: \"{{{{ result.stdout }}}}\" }}` to it")
                            } else {
                                format!("step `{id}` declares: {}", declared.join(", "))
                            })
                        })),
                )
            }
            Some(other) => Some(
                self.at(
                    site,
                    name,
                    format!("unknown field `{other}` of step `{id}`"),
                )
                .label("not a step field")
                .maybe_hint(
                    did_you_mean(other, ["outputs", "status", "items"])
                        .or_else(|| Some("a step has `outputs`, `status` and `items`".to_owned())),
                ),
            ),
        }
    }

    /// A step may read another step only if that step is sure to have finished before it.
    fn check_order(&self, site: &Site<'_>, name: &str, target: &Step) -> Option<Diagnostic> {
        let step = site.step?;
        if self.is_enclosing(target) {
            return None;
        }
        if step.is_finally && !target.is_finally {
            return None;
        }
        if target.id == step.id {
            let (field, fix) = if site.field == Field::Output || site.field == Field::Until {
                (
                    "its own outputs",
                    "use `result` to read this step's own result",
                )
            } else {
                (
                    "itself",
                    "a step cannot read its own outputs before it has run",
                )
            };
            return Some(
                self.at(site, name, format!("step `{}` refers to {field}", step.id))
                    .label("self-reference")
                    .hint(fix),
            );
        }
        if !step.is_finally && target.is_finally {
            return Some(
                self.at(
                    site,
                    name,
                    format!("step `{}` reads `finally` step `{}`", step.id, target.id),
                )
                .label("finally steps run after every main step")
                .hint("only `finally` steps can read other `finally` steps"),
            );
        }
        let order = if step.is_finally {
            &self.finally_order
        } else {
            &self.main_order
        };
        if order.is_ancestor(target.id.as_str(), step.id.as_str()) {
            return None;
        }
        Some(
            self.at(
                site,
                name,
                format!(
                    "step `{}` reads `{}`, which is not sure to run before it",
                    step.id, target.id
                ),
            )
            .label("no dependency path between the two steps")
            .hint(if matches!(
                (order.position(target.id.as_str()), order.position(step.id.as_str())),
                (Some(later), Some(this)) if later > this
            ) {
                // Adding it to `needs` would close a cycle when it follows this step implicitly.
                format!(
                    "`{0}` is written after `{1}`: move `{0}` above `{1}`, so that `{1}` runs after it",
                    target.id, step.id
                )
            } else {
                format!("add `{}` to the `needs` of `{}`", target.id, step.id)
            }),
        )
    }

    fn check_regexes(&self, site: &Site<'_>, out: &mut Vec<Diagnostic>) {
        static CALL: OnceLock<regex::Regex> = OnceLock::new();
        let call = CALL.get_or_init(|| {
            regex::Regex::new(
                r#"regex_(?:search|capture)\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"#,
            )
            .expect("the pattern is a constant and valid")
        });
        for caps in call.captures_iter(site.text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(2)) else {
                continue;
            };
            if let Err(err) = regex::Regex::new(&unescape(m.as_str())) {
                let reason = err
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid regex")
                    .trim()
                    .to_owned();
                let span = locate(self.file, site.span, site.text, m.start(), m.len());
                out.push(
                    Diagnostic::new(
                        self.file,
                        span,
                        format!("invalid regex: {}", reason.trim_start_matches("error: ")),
                    )
                    .label("this pattern")
                    .hint("patterns use Rust regex syntax; escape a literal `(` as `\\\\(`"),
                );
            }
        }
    }
}

/// The innermost `{% for %}`, `{% if %}`, … block left open at the end of a template: its tag and
/// where its `{%` is.
fn unclosed_block(text: &str) -> Option<(&str, usize)> {
    const BLOCKS: [&str; 7] = ["for", "if", "macro", "filter", "call", "with", "autoescape"];
    let mut open: Vec<(&str, usize)> = Vec::new();
    for (at, _) in text.match_indices("{%") {
        let tag = text[at + 2..]
            .trim_start_matches(['-', '+'])
            .trim_start()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default();
        if let Some(closed) = tag.strip_prefix("end") {
            if open.last().is_some_and(|(t, _)| *t == closed) {
                open.pop();
            }
        } else if let Some(block) = BLOCKS.iter().find(|b| **b == tag) {
            open.push((block, at));
        }
    }
    open.pop()
}

/// The `{{` or `{##` left open at the end of a template, when that is what the parser stopped
/// at: the opening and closing delimiters and where the opening one is.
fn unclosed_delimiter(text: &str, detail: &str) -> Option<(&'static str, &'static str, usize)> {
    let (open, close) = if detail.contains("end of input") && detail.contains("variable block") {
        ("{{", "}}")
    } else if detail.contains("end of comment") {
        ("{##", "##}")
    } else {
        return None;
    };
    let at = text.rfind(open)?;
    (!text[at..].contains(close)).then_some((open, close, at))
}

/// minijinja string-literal escapes, as the template engine will read them.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other @ ('\\' | '\'' | '"' | '/')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The first place `name` is written as a whole name (`result`, not the `result` in `results`).
fn find_name(text: &str, name: &str) -> Option<usize> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name)
        .map(|(i, _)| i)
        .find(|&i| {
            let before = text[..i].chars().next_back();
            let after = text[i + name.len()..].chars().next();
            !before.is_some_and(|c| is_name(c) || c == '.') && !after.is_some_and(is_name)
        })
        .or_else(|| text.find(name))
}
