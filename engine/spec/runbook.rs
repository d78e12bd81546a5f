//! Decoding and validating a whole runbook file: top-level keys, params, secrets, hosts, and the
//! checks that span several steps (duplicate ids, unknown `needs`, unknown hosts).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::decode::Decoder;
use super::model::{
    Defaults, Host, Notify, NotifyOn, OnTargets, Param, ParamType, Pattern, Runbook, Secret,
    SecretSource, SshDefaults, Step, Template, Value,
};
use super::node::{Node, NodeKind};
use super::source::{SourceFile, Span};
use super::suggest::did_you_mean;

const TOP_KEYS: [&str; 10] = [
    "name",
    "description",
    "params",
    "secrets",
    "hosts",
    "env",
    "defaults",
    "steps",
    "finally",
    "notify",
];
const NOTIFY_KEYS: [&str; 2] = ["on", "http"];
const PARAM_KEYS: [&str; 6] = [
    "type",
    "required",
    "default",
    "description",
    "enum",
    "pattern",
];
const HOST_KEYS: [&str; 4] = ["ssh", "port", "identity_file", "options"];
const DEFAULT_KEYS: [&str; 6] = [
    "timeout",
    "shell",
    "max_parallel",
    "retry",
    "interval",
    "ssh",
];

impl Decoder {
    /// Decodes and validates a whole document.
    pub fn runbook(&mut self, root: &Node) -> Option<Runbook> {
        if root.kind == NodeKind::Null {
            let d = self
                .error(Span::default(), "the runbook is empty")
                .hint("a runbook needs at least `name:` and `steps:`");
            self.push(d);
            return None;
        }
        let mut f = self.fields(root, "the runbook")?;
        let name = match f.take("name").and_then(|n| self.string(n, "name")) {
            Some(n) if is_valid_name(&n.value) => Some(n.value),
            Some(n) => {
                let d = self
                    .error(n.span, format!("invalid runbook name `{}`", n.value))
                    .label("names are [a-z0-9][a-z0-9_-]*")
                    .hint(format!(
                        "write `name: {}`",
                        n.value.to_ascii_lowercase().replace([' ', '.'], "-")
                    ));
                self.push(d);
                None
            }
            None => {
                if !f.has("name") {
                    let d = self
                        .error(root.span, "the runbook has no `name`")
                        .hint("add `name: my-procedure` at the top");
                    self.push(d);
                }
                None
            }
        };
        let description = f
            .take("description")
            .and_then(|n| self.string(n, "description"))
            .map(|s| s.value);
        let params = f.take("params").map(|n| self.params(n)).unwrap_or_default();
        let secrets = f
            .take("secrets")
            .map(|n| self.secrets(n))
            .unwrap_or_default();
        let hosts = f.take("hosts").map(|n| self.hosts(n)).unwrap_or_default();
        let env = f.take("env").map(|n| self.env(n)).unwrap_or_default();
        let defaults = f
            .take("defaults")
            .map(|n| self.defaults(n))
            .unwrap_or_default();
        let steps_node = f.take("steps");
        let steps = steps_node.map(|n| self.steps(n, false)).unwrap_or_default();
        let finally = f
            .take("finally")
            .map(|n| self.steps(n, true))
            .unwrap_or_default();
        let notify = f.take("notify").map(|n| self.notify(n)).unwrap_or_default();
        f.finish(self, "the runbook", &TOP_KEYS);
        if steps_node.is_none() {
            let d = self
                .error(root.span, "the runbook has no `steps`")
                .hint("add `steps:` with at least one step");
            self.push(d);
        }
        let runbook = Runbook {
            name: name?,
            description,
            params,
            secrets,
            hosts,
            env,
            defaults,
            steps,
            finally,
            notify,
            file: Arc::clone(&self.file),
            enclosing: Vec::new(),
            block_items: Vec::new(),
        };
        self.cross_step_rules(&runbook);
        self.inputs_are_not_secrets(&runbook.secrets, runbook.all_steps());
        Some(runbook)
    }

    /// A manual step's inputs are journaled, secrets never are: an input may not have a
    /// secret's name (a block's steps are checked too).
    fn inputs_are_not_secrets<'s>(
        &mut self,
        secrets: &[Secret],
        steps: impl Iterator<Item = &'s Step>,
    ) {
        for step in steps {
            match &step.kind {
                super::model::StepKind::Manual(manual) => {
                    for input in &manual.inputs {
                        if secrets.iter().any(|s| s.name == input.name) {
                            let d = self
                                .error(
                                    input.name_span,
                                    format!(
                                        "input `{}` of manual step `{}` has the name of a secret",
                                        input.name, step.id
                                    ),
                                )
                                .label("also declared under `secrets`")
                                .hint("what a person supplies is written to the run's journal, and a secret never is: rename the input");
                            self.push(d);
                        }
                    }
                }
                super::model::StepKind::Block(block) => {
                    let inner = block.steps.iter().chain(&block.finally).map(AsRef::as_ref);
                    self.inputs_are_not_secrets(secrets, inner);
                }
                _ => {}
            }
        }
    }

    /// A list of steps (`steps:`, `finally:`, or those of a `block:`).
    pub fn steps(&mut self, node: &Node, is_finally: bool) -> Vec<Arc<Step>> {
        let field = if is_finally { "finally" } else { "steps" };
        self.items(node, field)
            .iter()
            .filter_map(|n| {
                let step = self.step(n, is_finally);
                self.dropped_steps |= step.is_none();
                step.map(Arc::new)
            })
            .collect()
    }

    /// A string→template mapping (`env`, `headers`).
    pub fn env(&mut self, node: &Node) -> Vec<(String, Template)> {
        self.entries(node, "env")
            .into_iter()
            .filter_map(|(k, v)| self.template(v, &k.value).map(|t| (k.value, t)))
            .collect()
    }

    /// `notify:`: a list of `{on: [paused, failed, succeeded], http: {…}}`.
    fn notify(&mut self, node: &Node) -> Vec<Notify> {
        let mut out = Vec::new();
        for entry in self.items(node, "notify") {
            let Some(mut f) = self.fields(entry, "notify") else {
                continue;
            };
            let on = if let Some(on) = f.take("on") {
                self.notify_on(on)
            } else {
                let d = self
                    .error(entry.span, "a notification has no `on`")
                    .hint("add `on: [paused, failed]`: the run statuses it is sent on");
                self.push(d);
                Vec::new()
            };
            let http = if let Some(h) = f.take("http") {
                self.http(h)
            } else {
                let d = self
                    .error(entry.span, "a notification has no `http`")
                    .hint("add `http: { method: POST, url: \"https://hooks.example/…\" }`");
                self.push(d);
                None
            };
            f.finish(self, "notify", &NOTIFY_KEYS);
            if let Some(http) = http {
                out.push(Notify { on, http });
            }
        }
        out
    }

    /// `on:` of a notification: one status or a list of them.
    fn notify_on(&mut self, node: &Node) -> Vec<NotifyOn> {
        let nodes: Vec<&Node> = if matches!(node.kind, NodeKind::Seq(_)) {
            self.items(node, "on").iter().collect()
        } else {
            vec![node]
        };
        let mut out = Vec::new();
        for n in nodes {
            let Some(text) = self.string(n, "on") else {
                continue;
            };
            match NotifyOn::ALL.iter().find(|(name, _)| *name == text.value) {
                Some((_, on)) if !out.contains(on) => out.push(*on),
                Some(_) => {}
                None => {
                    let d = self
                        .error(text.span, format!("unknown run status `{}`", text.value))
                        .label("not a status a notification is sent on")
                        .hint("one of paused, failed, succeeded");
                    self.push(d);
                }
            }
        }
        out
    }

    #[expect(
        clippy::too_many_lines,
        reason = "every check of one param, in the order of its fields"
    )]
    fn params(&mut self, node: &Node) -> Vec<Param> {
        self.entries(node, "params")
            .into_iter()
            .filter_map(|(name, value)| {
                if !super::step::is_valid_id(&name.value) {
                    let d = self
                        .error(name.span, format!("invalid param name `{}`", name.value))
                        .label("param names are snake_case")
                        .hint(format!("write `{}`", super::step::snake_case(&name.value)));
                    self.push(d);
                }
                let NodeKind::Map(_) = &value.kind else {
                    // `snapshot: string` for `snapshot: { type: string }`. The param stays
                    // declared, so that its uses are not reported as well.
                    let written = value.scalar_text();
                    let ty = ParamType::from_name(&written);
                    let d = self
                        .error(
                            value.span,
                            format!(
                                "param `{}` must be a mapping, found a {}",
                                name.value,
                                value.kind.describe()
                            ),
                        )
                        .label("expected `{ type: …, default: … }`")
                        .hint(if ty.is_some() {
                            format!("write `{}: {{ type: {written} }}`", name.value)
                        } else {
                            format!(
                                "for a default value, write `{}: {{ default: … }}`",
                                name.value
                            )
                        });
                    self.push(d);
                    return Some(Param {
                        name: name.value,
                        ty: ty.unwrap_or(ParamType::String),
                        required: false,
                        default: None,
                        description: None,
                        allowed: Vec::new(),
                        pattern: None,
                        span: name.span,
                    });
                };
                let mut f = self.fields(value, "a param")?;
                let mut type_known = true;
                let ty = match f.take("type").and_then(|n| self.string(n, "type")) {
                    Some(t) => {
                        if let Some(ty) = ParamType::from_name(&t.value) {
                            ty
                        } else {
                            type_known = false;
                            let d = self
                                .error(t.span, format!("unknown param type `{}`", t.value))
                                .label("not a type")
                                .maybe_hint(did_you_mean(&t.value, ParamType::NAMES).or_else(
                                    || Some(format!("one of {}", ParamType::NAMES.join(", "))),
                                ));
                            self.push(d);
                            ParamType::String
                        }
                    }
                    None => ParamType::String,
                };
                let required = f.take("required").and_then(|n| self.boolean(n, "required"));
                let default = f.take("default");
                let description = f
                    .take("description")
                    .and_then(|n| self.string(n, "description"))
                    .map(|s| s.value);
                let owner = format!("param `{}`", name.value);
                let allowed = f
                    .take("enum")
                    .map(|n| self.choices(n, &owner, ty, type_known))
                    .unwrap_or_default();
                let pattern_key = f.key_span("pattern");
                let pattern = f
                    .take("pattern")
                    .and_then(|n| self.pattern(n, &owner, ty, pattern_key));
                f.finish(self, &owner, &PARAM_KEYS);
                if let Some(node) = default {
                    self.default_is_data(&name.value, node);
                }
                let default = default.map(|d| (d.to_json(), d.span));
                // With an unknown type there is nothing to check the default against.
                if let Some((value, span)) = &default
                    && type_known
                    && !ty.accepts(value)
                {
                    let a = if ty == ParamType::Int { "an" } else { "a" };
                    let d = self
                        .error(
                            *span,
                            format!("the default of `{}` is not {a} {}", name.value, ty.name()),
                        )
                        .label(format!("expected {a} {}", ty.name()))
                        .hint(if ty == ParamType::String {
                            "quote it: \"…\""
                        } else {
                            "change the default or the type"
                        });
                    self.push(d);
                }
                if let Some((value, span)) = &default
                    && (!type_known || ty.accepts(value))
                {
                    let param = Param {
                        name: name.value.clone(),
                        ty,
                        required: false,
                        default: None,
                        description: None,
                        allowed: allowed.clone(),
                        pattern: pattern.clone(),
                        span: name.span,
                    };
                    if let Some(why) = param.refuses(value) {
                        let d = self
                            .error(
                                *span,
                                format!("the default of `{}` is not a value it takes", name.value),
                            )
                            .label(why)
                            .hint(if param.allowed.is_empty() {
                                "change the default, or the pattern"
                            } else {
                                "change the default, or add it to `enum`"
                            });
                        self.push(d);
                    }
                }
                if let (Some(r), Some(_)) = (&required, &default)
                    && r.value
                {
                    let d = self
                        .error(
                            r.span,
                            format!("param `{}` is required and has a default", name.value),
                        )
                        .label("never used: a required param is always given")
                        .hint("remove `required: true`, or remove the default");
                    self.push(d);
                }
                Some(Param {
                    name: name.value,
                    ty,
                    required: required.is_some_and(|r| r.value),
                    default: default.map(|(v, _)| v),
                    description,
                    allowed,
                    pattern,
                    span: name.span,
                })
            })
            .collect()
    }

    /// `enum: [...]` of a param or of a manual step's input: a non-empty list of values of the
    /// declared type (with an unknown type, already reported, nothing is checked).
    pub fn choices(
        &mut self,
        node: &Node,
        owner: &str,
        ty: ParamType,
        type_known: bool,
    ) -> Vec<serde_json::Value> {
        let NodeKind::Seq(items) = &node.kind else {
            let d = self
                .error(
                    node.span,
                    format!(
                        "`enum` of {owner} must be a list, found a {}",
                        node.kind.describe()
                    ),
                )
                .label("expected a list of values")
                .hint("e.g. `enum: [staging, production]`");
            self.push(d);
            return Vec::new();
        };
        if items.is_empty() {
            let d = self
                .error(node.span, format!("`enum` of {owner} is empty"))
                .label("no value would be accepted")
                .hint("list the values it may take, or remove `enum`");
            self.push(d);
        }
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let value = item.to_json();
            if type_known && !ty.accepts(&value) {
                let a = if ty == ParamType::Int { "an" } else { "a" };
                let d = self
                    .error(
                        item.span,
                        format!("`enum` of {owner} lists a {}", item.kind.describe()),
                    )
                    .label(format!("expected {a} {}", ty.name()))
                    .hint(if ty == ParamType::String {
                        "quote it: \"…\""
                    } else {
                        "every value of `enum` has the declared type"
                    });
                self.push(d);
                continue;
            }
            values.push(value);
        }
        values
    }

    /// `pattern: REGEX` of a string param: a valid regex (the whole value must match).
    fn pattern(
        &mut self,
        node: &Node,
        owner: &str,
        ty: ParamType,
        key: Option<Span>,
    ) -> Option<Pattern> {
        let text = self.string(node, "pattern")?;
        if ty != ParamType::String {
            let d = self
                .error(
                    key.unwrap_or(text.span),
                    format!(
                        "`pattern` on {owner}, which is {} {}",
                        if ty == ParamType::Int { "an" } else { "a" },
                        ty.name()
                    ),
                )
                .label("only strings are matched against a pattern")
                .hint("list the values it may take with `enum`, or make it a string");
            self.push(d);
            return None;
        }
        match Pattern::new(&text.value) {
            Ok(pattern) => Some(pattern),
            Err(reason) => {
                let d = self
                    .error(
                        text.span,
                        format!("invalid regex in `pattern` of {owner}: {reason}"),
                    )
                    .label("this pattern")
                    .hint("patterns use Rust regex syntax, and the whole value must match");
                self.push(d);
                None
            }
        }
    }

    /// A param's default is data, as a value given with `--set` is: never rendered. A string in
    /// it that is a template would stay as written, so it is a mistake.
    fn default_is_data(&mut self, param: &str, node: &Node) {
        match &node.kind {
            NodeKind::Str(text) if crate::template::is_template(text) => {
                let expr = crate::template::as_expression(text).unwrap_or_else(|| "…".to_owned());
                let d = self
                    .error(node.span, format!("the default of `{param}` is a template"))
                    .label("defaults are not rendered")
                    .hint(format!(
                        "a default is data, like a value given with `--set`: leave it out and \
                         write the template where the param is used, e.g. \
                         `{{{{ params.{param} | default({expr}) }}}}`"
                    ));
                self.push(d);
            }
            NodeKind::Seq(items) => {
                for item in items {
                    self.default_is_data(param, item);
                }
            }
            NodeKind::Map(entries) => {
                for (_, value) in entries {
                    self.default_is_data(param, value);
                }
            }
            _ => {}
        }
    }

    fn secrets(&mut self, node: &Node) -> Vec<Secret> {
        self.entries(node, "secrets")
            .into_iter()
            .filter_map(|(name, value)| {
                // A secret without a usable source (reported) stays declared, so that its uses
                // are not reported as well; the runbook is rejected anyway.
                let unknown = SecretSource::Env(String::new());
                if let NodeKind::Str(text) = &value.kind {
                    let var = text
                        .to_ascii_uppercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                    let d = self
                        .error(
                            value.span,
                            format!(
                                "secret `{}` must say where its value comes from",
                                name.value
                            ),
                        )
                        .label("a mapping: `{ env: … }` or `{ file: … }`")
                        .hint(format!(
                            "secret values are never written in a runbook: \
                             `{}: {{ env: {var} }}` reads an environment variable",
                            name.value
                        ));
                    self.push(d);
                    return Some(Secret {
                        name: name.value,
                        source: unknown,
                        span: name.span,
                    });
                }
                let mut f = self.fields(value, "a secret")?;
                let env = f.take("env").and_then(|n| self.string(n, "env"));
                let file = f.take("file").and_then(|n| self.string(n, "file"));
                f.finish(self, &format!("secret `{}`", name.value), &["env", "file"]);
                let source = match (env, file) {
                    (Some(e), None) => SecretSource::Env(e.value),
                    (None, Some(p)) => SecretSource::File(PathBuf::from(p.value)),
                    _ => {
                        let d = self
                            .error(
                                value.span,
                                format!(
                                    "secret `{}` needs exactly one of `env` or `file`",
                                    name.value
                                ),
                            )
                            .label("where does the value come from?")
                            .hint(
                                "e.g. `{ env: S3_ACCESS_KEY }` or \
                                 `{ file: ./secrets/s3_access_key }`",
                            );
                        self.push(d);
                        unknown
                    }
                };
                Some(Secret {
                    name: name.value,
                    source,
                    span: name.span,
                })
            })
            .collect()
    }

    fn hosts(&mut self, node: &Node) -> Vec<Host> {
        self.entries(node, "hosts")
            .into_iter()
            .filter_map(|(name, value)| {
                let mut f = self.fields(value, "a host")?;
                let ssh = f.take("ssh").and_then(|n| self.template(n, "ssh"));
                let port = f.take("port").and_then(|n| self.port(n));
                let identity_file = f
                    .take("identity_file")
                    .and_then(|n| self.template(n, "identity_file"));
                let options = f
                    .take("options")
                    .map(|n| self.ssh_options(n))
                    .unwrap_or_default();
                let has_ssh = f.has("ssh");
                f.finish(self, &format!("host `{}`", name.value), &HOST_KEYS);
                if !has_ssh {
                    let d = self
                        .error(
                            value.span,
                            format!("host `{}` has no `ssh` target", name.value),
                        )
                        .hint("e.g. `ssh: \"core@db1.example\"`");
                    self.push(d);
                }
                // A host whose `ssh` is missing or wrong (reported) stays declared, so that `on:`
                // naming it is not a second mistake; the runbook is rejected anyway.
                let ssh = ssh.unwrap_or_else(|| Template {
                    text: String::new(),
                    span: value.span,
                });
                Some(Host {
                    name: name.value,
                    ssh,
                    port,
                    identity_file,
                    options,
                    span: name.span,
                })
            })
            .collect()
    }

    /// `options:` of a host or of `defaults.ssh`: ssh `-o` options, each a template.
    fn ssh_options(&mut self, node: &Node) -> Vec<Template> {
        self.strings(node, "options", false)
            .map(|l| {
                l.value
                    .into_iter()
                    .map(|s| Template {
                        text: s.value,
                        span: s.span,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `defaults.ssh: {port, identity_file, options}`.
    fn ssh_defaults(&mut self, node: &Node) -> SshDefaults {
        let Some(mut f) = self.fields(node, "defaults.ssh") else {
            return SshDefaults::default();
        };
        let port = f.take("port").and_then(|n| self.port(n));
        let identity_file = f
            .take("identity_file")
            .and_then(|n| self.template(n, "identity_file"));
        let options = f
            .take("options")
            .map(|n| self.ssh_options(n))
            .unwrap_or_default();
        f.finish(
            self,
            "`defaults.ssh`",
            &["port", "identity_file", "options"],
        );
        SshDefaults {
            port,
            identity_file,
            options,
        }
    }

    /// A port: a number from 1 to 65535, or a template that renders to one at run time.
    fn port(&mut self, node: &Node) -> Option<Template> {
        match &node.kind {
            NodeKind::Int(p) if (1..=65535).contains(p) => Some(Template {
                text: p.to_string(),
                span: node.span,
            }),
            NodeKind::Int(p) => {
                let d = self
                    .error(node.span, format!("{p} is not a port"))
                    .label("ports are 1 to 65535");
                self.push(d);
                None
            }
            NodeKind::Str(s) if s.contains("{{") => self.template(node, "port"),
            _ => {
                let d = self
                    .error(
                        node.span,
                        format!(
                            "`port` must be a number or a template, found a {}",
                            node.kind.describe()
                        ),
                    )
                    .label("expected a port");
                self.push(d);
                None
            }
        }
    }

    fn defaults(&mut self, node: &Node) -> Defaults {
        let Some(mut f) = self.fields(node, "defaults") else {
            return Defaults::default();
        };
        let timeout = f
            .take("timeout")
            .and_then(|n| self.duration(n, "defaults.timeout"))
            .map(|d| d.value);
        let shell = f
            .take("shell")
            .and_then(|n| self.string(n, "defaults.shell"))
            .map(|s| s.value);
        let max_parallel = f
            .take("max_parallel")
            .and_then(|n| self.count(n, "defaults.max_parallel"))
            .map(|c| c.value);
        let retry = f.take("retry").and_then(|n| self.retry(n));
        let interval = f
            .take("interval")
            .and_then(|n| self.duration(n, "defaults.interval"))
            .map(|d| d.value);
        let ssh = f
            .take("ssh")
            .map(|n| self.ssh_defaults(n))
            .unwrap_or_default();
        f.finish(self, "`defaults`", &DEFAULT_KEYS);
        Defaults {
            timeout,
            shell,
            max_parallel,
            retry,
            interval,
            ssh,
        }
    }

    fn cross_step_rules(&mut self, runbook: &Runbook) {
        // A block's own steps follow the same rules among themselves.
        for step in runbook.all_steps() {
            if let super::model::StepKind::Block(_) = &step.kind {
                self.cross_step_rules(&runbook.of_block(step));
            }
        }
        // Each id's first step, and whether a main step has the id (main steps come first, so
        // whether the first one is). One map answers every lookup, so checking stays linear.
        let mut first: HashMap<&str, (Span, bool)> =
            HashMap::with_capacity(runbook.steps.len() + runbook.finally.len());
        let listed = (runbook.steps.iter().map(|s| (s, true)))
            .chain(runbook.finally.iter().map(|s| (s, false)));
        for (step, in_main) in listed {
            if let Some((earlier, _)) = first.get(step.id.as_str()) {
                let (line, _) = self.file.line_col(earlier.offset);
                let d = self
                    .error(step.id_span, format!("duplicate step id `{}`", step.id))
                    .label(format!("first used on line {line}"))
                    .hint("step ids must be unique in a runbook; rename one of them");
                self.push(d);
            } else {
                first.insert(step.id.as_str(), (step.id_span, in_main));
            }
        }
        // Only for hints, so only made when a `needs` is wrong.
        let mut ids: Option<(Vec<&str>, Vec<&str>)> = None;
        for step in runbook.all_steps() {
            for (need, span) in step.needs.iter().flatten() {
                let known = first.get(need.as_str());
                let visible = if step.is_finally {
                    known.is_some()
                } else {
                    known.is_some_and(|(_, in_main)| *in_main)
                };
                if need == &step.id {
                    let d = self
                        .error(*span, format!("step `{}` needs itself", step.id))
                        .label("a step cannot wait for itself");
                    self.push(d);
                } else if !visible {
                    let in_finally = known.is_some();
                    let (main_ids, all_ids) = ids.get_or_insert_with(|| {
                        (
                            runbook.steps.iter().map(|s| s.id.as_str()).collect(),
                            runbook.all_steps().map(|s| s.id.as_str()).collect(),
                        )
                    });
                    let visible = if step.is_finally {
                        &*all_ids
                    } else {
                        &*main_ids
                    };
                    let message = if in_finally {
                        format!("step `{}` needs `finally` step `{need}`", step.id)
                    } else {
                        format!("unknown step `{need}` in `needs` of `{}`", step.id)
                    };
                    let d = self
                        .error(*span, message)
                        .label(if in_finally {
                            "a `finally` step"
                        } else {
                            "no step has this id"
                        })
                        .maybe_hint(if in_finally {
                            Some(
                                "main steps cannot wait for `finally` steps, which run after them"
                                    .to_owned(),
                            )
                        } else {
                            did_you_mean(need.as_str(), visible.iter().copied())
                        });
                    self.push(d);
                }
            }
            self.on_rules(runbook, step);
        }
    }

    /// The literal hosts of a step's `on:`: a declared host, or something that reads as an SSH
    /// destination; the same host twice in one list is a mistake.
    fn on_rules(&mut self, runbook: &Runbook, step: &Step) {
        let Some(on) = &step.on else {
            return;
        };
        let literals: Vec<&Template> = match &on.targets {
            OnTargets::One(t) => vec![t],
            OnTargets::List(items) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Str(t) => Some(t),
                    _ => None,
                })
                .collect(),
        };
        let host_names: Vec<&str> = runbook.hosts.iter().map(|h| h.name.as_str()).collect();
        let mut seen: Vec<&str> = Vec::new();
        for t in literals {
            let host = t.text.trim();
            if host.contains("{{") || host.contains("{%") {
                continue;
            }
            if seen.contains(&host) {
                let d = self
                    .error(
                        t.span,
                        format!("host `{host}` is twice in `on` of `{}`", step.id),
                    )
                    .label("already listed")
                    .hint("each host is one node of the fan-out: list it once");
                self.push(d);
            }
            seen.push(host);
            if host_names.contains(&host) {
                continue;
            }
            let destination = is_destination(host);
            // A bare word names a host. A runbook that declares hosts gets its typos caught;
            // one that declares none may use its caller's hosts, or a name DNS resolves.
            if destination.is_err() || !runbook.hosts.is_empty() && !looks_qualified(host) {
                let d = self
                    .error(
                        t.span,
                        format!("unknown host `{host}` in `on` of `{}`", step.id),
                    )
                    .label(match destination {
                        Err(why) => why,
                        Ok(()) => "not declared under `hosts`",
                    })
                    .maybe_hint(did_you_mean(host, host_names.iter().copied()).or_else(|| {
                        Some(format!(
                            "declare it (`hosts: {{ {host}: {{ ssh: \"user@{host}\" }} }}`), or write an SSH destination such as `core@10.0.0.7`"
                        ))
                    }));
                self.push(d);
            }
        }
    }
}

/// Whether text reads as an SSH destination `[user@]address[:port]`; if not, why.
fn is_destination(text: &str) -> Result<(), &'static str> {
    let address = text.rsplit_once('@').map_or(text, |(_, a)| a);
    if text.is_empty() || address.is_empty() {
        return Err("an empty host");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a host has no spaces");
    }
    if text.contains(['[', ']', '{', '}', '/', '\\', '"', '\'', ',', ';']) {
        return Err("not a host name or an address");
    }
    Ok(())
}

/// Whether a destination names a user, a domain, an address or a port (not a bare word).
fn looks_qualified(text: &str) -> bool {
    text.contains(['@', '.', ':'])
}

/// Whether a runbook name is `[a-z0-9][a-z0-9_-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Reads a runbook from text: syntax errors, then every validation error, all located.
pub fn from_source(file: &Arc<SourceFile>) -> Result<Runbook, Vec<crate::diagnostic::Diagnostic>> {
    from_source_partial(file).map_err(|(diagnostics, _)| diagnostics)
}

/// Like [`from_source`], but a runbook whose steps all decoded is returned with the mistakes,
/// so later checks (templates, references) can still report theirs in the same run.
pub fn from_source_partial(
    file: &Arc<SourceFile>,
) -> Result<Runbook, (Vec<crate::diagnostic::Diagnostic>, Option<Box<Runbook>>)> {
    let root = super::node::parse(file)
        .map_err(|e| {
            vec![
                crate::diagnostic::Diagnostic::new(
                    file,
                    e.span.unwrap_or_default(),
                    format!("invalid YAML: {}", e.message),
                )
                .label("here")
                .maybe_hint(e.hint),
            ]
        })
        .map_err(|d| (d, None))?;
    let mut decoder = Decoder::new(file);
    let runbook = decoder.runbook(&root);
    match runbook {
        Some(r) if decoder.diagnostics.is_empty() => Ok(r),
        Some(r) if !decoder.dropped_steps => Err((decoder.diagnostics, Some(Box::new(r)))),
        _ => Err((decoder.diagnostics, None)),
    }
}
