//! Decoding and validating one step: its kind, its modifiers and the rules that tie them.

use super::decode::{Decoder, Fields, Spanned};
use super::model::{
    Block, Call, Command, Download, FanPolicy, ForEach, ForEachItems, Gate, HttpBody, HttpRequest,
    Input, Manual, On, OnTargets, Output, ParamType, Poll, Probe, ProbeKind, Retry, Step, StepId,
    StepKind, Upload, UploadSource,
};
use super::node::{Node, NodeKind};
use super::source::Span;
use super::suggest::did_you_mean;

/// The keys that choose a step's kind.
pub const KINDS: [&str; 9] = [
    "run", "http", "manual", "assert", "sleep", "call", "upload", "download", "block",
];

/// Every key a step may have.
pub const STEP_KEYS: [&str; 38] = [
    "id",
    "name",
    "description",
    "run",
    "http",
    "manual",
    "assert",
    "sleep",
    "call",
    "upload",
    "download",
    "block",
    "finally",
    "with",
    "needs",
    "when",
    "for_each",
    "as",
    "max_parallel",
    "batch",
    "max_failures",
    "gate",
    "outputs",
    "until",
    "fail_when",
    "interval",
    "delay",
    "timeout",
    "retry",
    "allow_failure",
    "destructive",
    "idempotent",
    "check",
    "safe",
    "on",
    "env",
    "cwd",
    "shell",
];

const GATE_KEYS: [&str; 6] = ["run", "http", "on", "until", "interval", "timeout"];
const UPLOAD_KEYS: [&str; 4] = ["src", "content", "dest", "mode"];
const DOWNLOAD_KEYS: [&str; 2] = ["src", "dest"];
const HOST_MAP_KEYS: [&str; 4] = ["ssh", "port", "identity_file", "options"];
const HTTP_KEYS: [&str; 8] = [
    "method", "url", "headers", "json", "body", "timeout", "insecure", "expect",
];
const RETRY_KEYS: [&str; 4] = ["attempts", "delay", "backoff", "max_delay"];
const MANUAL_KEYS: [&str; 4] = ["instructions", "timeout", "approvers", "inputs"];
const INPUT_KEYS: [&str; 3] = ["type", "description", "enum"];
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Whether an id is `[a-z][a-z0-9_]*`.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `snake_case` form of an id (`stop-core` → `stop_core`).
pub fn snake_case(id: &str) -> String {
    let mut out = String::new();
    for c in id.chars() {
        match c {
            'A'..='Z' => {
                if !out.is_empty() && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            'a'..='z' | '0'..='9' | '_' => out.push(c),
            _ => {
                if !out.ends_with('_') {
                    out.push('_');
                }
            }
        }
    }
    let trimmed = out.trim_matches('_').to_owned();
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("step_{trimmed}")
    } else {
        trimmed
    }
}

/// A step's fields as taken from its mapping, before the rules between them are checked.
struct Taken<'n> {
    fields: Fields<'n>,
}

impl Decoder {
    /// Decodes one step. `None` when it is too broken to take part in later checks.
    #[expect(
        clippy::too_many_lines,
        reason = "a step's fields decoded one after the other, a few lines each"
    )]
    pub fn step(&mut self, node: &Node, is_finally: bool) -> Option<Step> {
        let fields = self.fields(node, "a step")?;
        let mut t = Taken { fields };
        let step_span = node.span;

        let id = if let Some(n) = t.fields.take("id") {
            self.step_id(n)
        } else {
            let kind = KINDS.iter().find(|k| t.fields.has(k)).copied();
            let d = self
                .error(step_span, "step has no `id`")
                .label("this step")
                .hint(format!(
                    "every step needs an id, e.g. `id: {}`",
                    kind.map_or("stop_service", |k| if k == "run" {
                        "run_command"
                    } else {
                        k
                    })
                ));
            self.push(d);
            None
        };
        let (name, name_span) = t
            .fields
            .take("name")
            .and_then(|n| self.string(n, "name"))
            .map(|s| (Some(s.value), Some(s.span)))
            .unwrap_or_default();
        let description = t
            .fields
            .take("description")
            .and_then(|n| self.string(n, "description"))
            .map(|s| s.value);
        let kind = self.step_kind(&mut t, step_span, id.as_ref());

        let needs = t
            .fields
            .take("needs")
            .and_then(|n| self.strings(n, "needs", true))
            .map(|list| {
                list.value
                    .into_iter()
                    .map(|s| (StepId(s.value), s.span))
                    .collect::<Vec<_>>()
            });
        let when = t.fields.take("when").and_then(|n| self.expr(n, "when"));
        let for_each = self.for_each(&mut t);
        let fan = self.fan_policy(&mut t);
        let outputs = self.outputs(&mut t);
        let until = t.fields.take("until").and_then(|n| self.expr(n, "until"));
        let fail_when = t
            .fields
            .take("fail_when")
            .and_then(|n| self.expr(n, "fail_when"));
        let interval = t
            .fields
            .take("interval")
            .and_then(|n| self.duration_setting(n, "interval"));
        let delay = t
            .fields
            .take("delay")
            .and_then(|n| self.duration(n, "delay"))
            .map(|d| d.value);
        let timeout = t
            .fields
            .take("timeout")
            .and_then(|n| self.duration_setting(n, "timeout"));
        let retry = t.fields.take("retry").and_then(|n| self.retry(n));
        let allow_failure = self.flag(&mut t, "allow_failure");
        let destructive = self.flag(&mut t, "destructive");
        let idempotent = self.flag(&mut t, "idempotent");
        let safe = self.flag(&mut t, "safe");
        let check = t.fields.take("check").and_then(|n| self.probe(n));
        let on = t.fields.take("on").and_then(|n| self.on(n));
        let env = t
            .fields
            .take("env")
            .map(|n| self.env(n))
            .unwrap_or_default();
        let cwd = t.fields.take("cwd").and_then(|n| self.template(n, "cwd"));
        let shell = t
            .fields
            .take("shell")
            .and_then(|n| self.string(n, "shell"))
            .map(|s| s.value);
        let spans = Spans::of(&t.fields);
        t.fields.finish(self, "a step", &STEP_KEYS);

        let (id, id_span) = id?;
        let (kind, kind_span) = kind?;
        let has_interval = interval.is_some();
        let has_fail_when = fail_when.is_some();
        let step = Step {
            id,
            id_span,
            name,
            name_span,
            description,
            kind,
            kind_span,
            needs,
            when,
            for_each,
            fan,
            outputs,
            poll: until.map(|until| Poll {
                until,
                fail_when,
                interval,
            }),
            timeout,
            delay,
            retry,
            allow_failure: allow_failure.is_some_and(|f| f.value),
            destructive: destructive.is_some_and(|f| f.value),
            idempotent: idempotent.is_none_or(|f| f.value),
            safe: safe.is_some_and(|f| f.value),
            check,
            on,
            env,
            cwd,
            shell,
            is_finally,
        };
        self.step_rules(&step, &spans, has_interval, has_fail_when);
        Some(step)
    }

    fn step_id(&mut self, node: &Node) -> Option<(StepId, Span)> {
        let s = self.string(node, "id")?;
        if !is_valid_id(&s.value) {
            let fixed = snake_case(&s.value);
            let d = self
                .error(s.span, format!("invalid step id `{}`", s.value))
                .label("ids are snake_case: [a-z][a-z0-9_]*")
                .hint(format!(
                    "a template names a step as `steps.<id>`, so ids are snake_case: write `{fixed}`"
                ));
            self.push(d);
            return None;
        }
        Some((StepId(s.value), s.span))
    }

    fn step_kind(
        &mut self,
        t: &mut Taken<'_>,
        step_span: Span,
        id: Option<&(StepId, Span)>,
    ) -> Option<(StepKind, Span)> {
        let present: Vec<(&str, Span)> = KINDS
            .iter()
            .filter_map(|k| t.fields.key_span(k).map(|s| (*k, s)))
            .collect();
        let who = id.map_or_else(|| "step".to_owned(), |(id, _)| format!("step `{id}`"));
        match present.as_slice() {
            [] => {
                let d = self
                    .error(
                        id.map_or(step_span, |(_, s)| *s),
                        format!("{who} has no kind"),
                    )
                    .label("what does this step do?")
                    .hint("give exactly one of `run`, `http`, `manual`, `assert`, `sleep`, `call`");
                self.push(d);
                None
            }
            [(key, key_span)] => {
                let node = t.fields.take(key)?;
                let with = t.fields.take("with");
                let finally = t.fields.take("finally");
                if let (Some(f), false) = (finally, *key == "block") {
                    let d = self
                        .error(
                            t.fields.key_span("finally").unwrap_or(f.span),
                            "`finally` beside a step is only for `block`",
                        )
                        .label("not a block")
                        .hint("a block's `finally:` runs when the block ends; a runbook's `finally:` is written at the top level");
                    self.push(d);
                }
                let kind = if *key == "block" {
                    Some(StepKind::Block(Block {
                        steps: self.steps(node, false),
                        finally: finally.map(|f| self.steps(f, true)).unwrap_or_default(),
                    }))
                } else {
                    self.kind_value(key, node, with)
                }?;
                Some((kind, *key_span))
            }
            [(first, _), (second, second_span), ..] => {
                let d = self
                    .error(
                        *second_span,
                        format!("{who} has two kinds: `{first}` and `{second}`"),
                    )
                    .label("second kind")
                    .hint("a step does one thing: split it into two steps");
                self.push(d);
                for (k, _) in &present {
                    t.fields.take(k);
                }
                None
            }
        }
    }

    fn kind_value(&mut self, key: &str, node: &Node, with: Option<&Node>) -> Option<StepKind> {
        if let (Some(with), false) = (with, key == "call") {
            let d = self
                .error(with.span, "`with` is only for `call` steps")
                .label("no runbook is called here");
            self.push(d);
        }
        match key {
            "run" => self.command(node, "run").map(StepKind::Run),
            "http" => self.http(node).map(StepKind::Http),
            "manual" => self.manual(node).map(StepKind::Manual),
            "assert" => {
                let list = self.strings(node, "assert", true)?;
                let exprs = list
                    .value
                    .into_iter()
                    .map(|s| super::model::Expr {
                        text: super::values::strip_braces(&s.value).to_owned(),
                        span: s.span,
                    })
                    .collect();
                Some(StepKind::Assert(exprs))
            }
            "sleep" => self
                .duration(node, "sleep")
                .map(|d| StepKind::Sleep(d.value)),
            "upload" => self.upload(node).map(StepKind::Upload),
            "download" => self.download(node).map(StepKind::Download),
            "call" => {
                let path = self.string(node, "call")?;
                let with = with.map_or_else(Vec::new, |w| {
                    self.entries(w, "with")
                        .into_iter()
                        .map(|(k, v)| {
                            let value = super::values::template_value(v);
                            (k.value, value, k.span)
                        })
                        .collect()
                });
                Some(StepKind::Call(Call {
                    path: path.value,
                    path_span: path.span,
                    with,
                }))
            }
            _ => None,
        }
    }

    /// `manual:` — instructions, or the long form `{instructions, timeout, approvers, inputs}`.
    fn manual(&mut self, node: &Node) -> Option<Manual> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            return self.template(node, "manual").map(|instructions| Manual {
                instructions,
                timeout: None,
                approvers: 1,
                inputs: Vec::new(),
            });
        }
        let mut f = self.fields(node, "manual")?;
        let instructions = f
            .take("instructions")
            .and_then(|n| self.template(n, "manual.instructions"));
        let timeout = f
            .take("timeout")
            .and_then(|n| self.duration(n, "manual.timeout"))
            .map(|d| d.value);
        let approvers = f
            .take("approvers")
            .and_then(|n| self.count(n, "manual.approvers"))
            .map_or(1, |c| u32::try_from(c.value).unwrap_or(u32::MAX));
        let inputs = f.take("inputs").map(|n| self.inputs(n)).unwrap_or_default();
        let has_instructions = f.has("instructions");
        f.finish(self, "`manual`", &MANUAL_KEYS);
        if !has_instructions {
            let d = self
                .error(node.span, "`manual` has no `instructions`")
                .label("what is the person asked to do?")
                .hint("e.g. `manual: { instructions: \"Check the snapshot\", timeout: 30m }`");
            self.push(d);
        }
        Some(Manual {
            instructions: instructions?,
            timeout,
            approvers,
            inputs,
        })
    }

    /// `inputs:` of a manual step: `name: {type, description, enum}`.
    fn inputs(&mut self, node: &Node) -> Vec<Input> {
        self.entries(node, "manual.inputs")
            .into_iter()
            .filter_map(|(name, value)| {
                if !is_valid_id(&name.value) {
                    let d = self
                        .error(name.span, format!("invalid input name `{}`", name.value))
                        .label("input names are snake_case")
                        .hint(format!("write `{}`", snake_case(&name.value)));
                    self.push(d);
                    return None;
                }
                let owner = format!("input `{}`", name.value);
                let mut f = self.fields(value, "an input")?;
                let mut type_known = true;
                let ty = match f.take("type").and_then(|n| self.string(n, "type")) {
                    Some(t) => ParamType::from_name(&t.value).unwrap_or_else(|| {
                        type_known = false;
                        let d = self
                            .error(t.span, format!("unknown input type `{}`", t.value))
                            .label("not a type")
                            .maybe_hint(did_you_mean(&t.value, ParamType::NAMES).or_else(|| {
                                Some(format!("one of {}", ParamType::NAMES.join(", ")))
                            }));
                        self.push(d);
                        ParamType::String
                    }),
                    None => ParamType::String,
                };
                let description = f
                    .take("description")
                    .and_then(|n| self.string(n, "description"))
                    .map(|s| s.value);
                let allowed = f
                    .take("enum")
                    .map(|n| self.choices(n, &owner, ty, type_known))
                    .unwrap_or_default();
                f.finish(self, &owner, &INPUT_KEYS);
                Some(Input {
                    name: name.value,
                    name_span: name.span,
                    ty,
                    description,
                    allowed,
                })
            })
            .collect()
    }

    /// `run:` as a script or an argv list.
    pub fn command(&mut self, node: &Node, field: &str) -> Option<Command> {
        if let NodeKind::Seq(items) = &node.kind {
            if items.is_empty() {
                let d = self
                    .error(node.span, format!("`{field}` is an empty argument list"))
                    .label("no program")
                    .hint("name the program first: `[systemctl, stop, nginx]`");
                self.push(d);
                return None;
            }
            let argv = items
                .iter()
                .filter_map(|i| self.template(i, field))
                .collect();
            Some(Command::Argv(argv))
        } else {
            let script = self.template(node, field)?;
            if script.text.trim().is_empty() {
                let d = self
                    .error(node.span, format!("`{field}` is empty"))
                    .label("nothing to run");
                self.push(d);
                return None;
            }
            Some(Command::Script(script))
        }
    }

    /// `http:` request.
    pub fn http(&mut self, node: &Node) -> Option<HttpRequest> {
        let mut f = self.fields(node, "http")?;
        let method = match f.take("method").and_then(|n| self.string(n, "method")) {
            Some(m) if METHODS.contains(&m.value.to_ascii_uppercase().as_str()) => {
                m.value.to_ascii_uppercase()
            }
            Some(m) => {
                let d = self
                    .error(m.span, format!("unknown HTTP method `{}`", m.value))
                    .label("not a method")
                    .hint(format!("one of {}", METHODS.join(", ")));
                self.push(d);
                "GET".to_owned()
            }
            None => "GET".to_owned(),
        };
        let url = f.take("url").and_then(|n| self.template(n, "url"));
        if url.is_none() && !f.has("url") {
            let d = self
                .error(node.span, "`http` has no `url`")
                .label("where should the request go?")
                .hint("add `url: \"http://localhost:9200/_cluster/health\"`");
            self.push(d);
        }
        let headers = f.take("headers").map(|n| self.env(n)).unwrap_or_default();
        let json = f.take("json").map(super::values::template_value);
        let text = f.take("body").and_then(|n| self.template(n, "body"));
        if let (Some(_), Some(b)) = (&json, &text) {
            let d = self
                .error(b.span, "`http` has both `json` and `body`")
                .label("second body")
                .hint("send either `json` (encoded for you) or `body` (sent as written)");
            self.push(d);
        }
        let timeout = f
            .take("timeout")
            .and_then(|n| self.duration(n, "timeout"))
            .map(|d| d.value);
        let insecure = f
            .take("insecure")
            .and_then(|n| self.boolean(n, "insecure"))
            .is_some_and(|b| b.value);
        let expect_status = f.take("expect").map(|n| self.expect(n)).unwrap_or_default();
        f.finish(self, "`http`", &HTTP_KEYS);
        Some(HttpRequest {
            method,
            url: url?,
            headers,
            body: json.map(HttpBody::Json).or(text.map(HttpBody::Text)),
            timeout,
            insecure,
            expect_status,
        })
    }

    fn expect(&mut self, node: &Node) -> Vec<u16> {
        let Some(mut f) = self.fields(node, "expect") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(status) = f.take("status") {
            let items: Vec<Node> = match &status.kind {
                NodeKind::Seq(items) => items.clone(),
                _ => vec![status.clone()],
            };
            for item in &items {
                if let Some(code) = self.integer(item, "expect.status") {
                    match u16::try_from(code.value) {
                        Ok(c) if (100..=599).contains(&c) => out.push(c),
                        _ => {
                            let d = self
                                .error(code.span, format!("{} is not an HTTP status", code.value))
                                .label("statuses are 100 to 599");
                            self.push(d);
                        }
                    }
                }
            }
        }
        f.finish(self, "`expect`", &["status"]);
        out
    }

    fn for_each(&mut self, t: &mut Taken<'_>) -> Option<ForEach> {
        let node = t.fields.take("for_each");
        let as_node = t.fields.take("as");
        let Some(node) = node else {
            if let Some(n) = as_node {
                let d = self
                    .error(
                        t.fields.key_span("as").unwrap_or(n.span),
                        "`as` without `for_each`",
                    )
                    .label("nothing to fan out over")
                    .hint("add `for_each: <list>` to this step, or remove this key");
                self.push(d);
            }
            return None;
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => {
                ForEachItems::List(items.iter().map(super::values::template_value).collect())
            }
            // A list that cannot be read (reported) still brings the `as` name into scope, so
            // that the step's templates are not reported as well.
            _ => self
                .expr(node, "for_each")
                .map_or(ForEachItems::List(Vec::new()), ForEachItems::Expr),
        };
        let as_name = match as_node.and_then(|n| self.string(n, "as")) {
            Some(s) if is_valid_id(&s.value) => s.value,
            Some(s) => {
                let d = self
                    .error(s.span, format!("`as: {}` is not a valid name", s.value))
                    .label("a template variable name")
                    .hint(format!("write `as: {}`", snake_case(&s.value)));
                self.push(d);
                "item".to_owned()
            }
            None => "item".to_owned(),
        };
        Some(ForEach {
            items,
            as_name,
            span: node.span,
        })
    }

    /// `max_parallel`, `batch`, `max_failures` and `gate` (whether the step fans out is checked
    /// with the other rules between fields).
    fn fan_policy(&mut self, t: &mut Taken<'_>) -> FanPolicy {
        FanPolicy {
            max_parallel: t
                .fields
                .take("max_parallel")
                .and_then(|n| self.count_setting(n, "max_parallel", false)),
            batch: t
                .fields
                .take("batch")
                .and_then(|n| self.batch_setting(n, "batch")),
            max_failures: t
                .fields
                .take("max_failures")
                .and_then(|n| self.count_setting(n, "max_failures", true)),
            gate: t.fields.take("gate").and_then(|n| self.gate(n)),
        }
    }

    /// `gate: {run | http, until, interval, timeout}`.
    fn gate(&mut self, node: &Node) -> Option<Gate> {
        let mut f = self.fields(node, "gate")?;
        let run = f.take("run");
        let http = f.take("http");
        let on = f.take("on").and_then(|n| self.template(n, "gate.on"));
        let until = f.take("until").and_then(|n| self.expr(n, "gate.until"));
        let interval = f
            .take("interval")
            .and_then(|n| self.duration(n, "gate.interval"))
            .map(|d| d.value);
        let timeout = f
            .take("timeout")
            .and_then(|n| self.duration(n, "gate.timeout"))
            .map(|d| d.value);
        let has_until = f.has("until");
        f.finish(self, "`gate`", &GATE_KEYS);
        let probe = match (run, http) {
            (Some(r), None) => Some(ProbeKind::Run(self.command(r, "gate.run")?)),
            (None, Some(h)) => Some(ProbeKind::Http(self.http(h)?)),
            _ => {
                let d = self
                    .error(node.span, "`gate` needs exactly one of `run` or `http`")
                    .label("a probe")
                    .hint("e.g. `gate: { http: { url: \"http://localhost:9200/_cluster/health\" }, until: result.json.status == \"green\", timeout: 15m }`");
                self.push(d);
                None
            }
        };
        if !has_until {
            let d = self
                .error(node.span, "`gate` has no `until`")
                .label("when does the gate hold?")
                .hint("a gate is polled until its condition holds, e.g. `until: result.json.status == \"green\"`");
            self.push(d);
        }
        Some(Gate {
            probe: probe?,
            on,
            until: until?,
            interval,
            timeout,
            span: node.span,
        })
    }

    /// `on:` — a host, a destination, a template, or a list of them (maps for ad-hoc hosts).
    fn on(&mut self, node: &Node) -> Option<On> {
        let targets = match &node.kind {
            NodeKind::Seq(items) => OnTargets::List(
                items
                    .iter()
                    .filter_map(|item| match &item.kind {
                        NodeKind::Map(_) => self.host_map(item),
                        _ => self.template(item, "on").map(super::model::Value::Str),
                    })
                    .collect(),
            ),
            NodeKind::Map(_) => OnTargets::List(vec![self.host_map(node)?]),
            _ => OnTargets::One(self.template(node, "on")?),
        };
        Some(On {
            targets,
            span: node.span,
        })
    }

    /// A host given in place in `on:`: `{ssh, port, identity_file, options}`.
    fn host_map(&mut self, node: &Node) -> Option<super::model::Value> {
        let mut f = self.fields(node, "a host in `on`")?;
        for key in HOST_MAP_KEYS {
            f.take(key);
        }
        let has_ssh = f.has("ssh");
        f.finish(self, "a host in `on`", &HOST_MAP_KEYS);
        if !has_ssh {
            let d = self
                .error(node.span, "a host in `on` has no `ssh`")
                .label("which host?")
                .hint("e.g. `{ ssh: \"core@10.0.0.7\", port: 2222 }`");
            self.push(d);
            return None;
        }
        Some(super::values::template_value(node))
    }

    /// `upload: {src | content, dest, mode}`.
    fn upload(&mut self, node: &Node) -> Option<Upload> {
        let mut f = self.fields(node, "upload")?;
        let src = f.take("src").and_then(|n| self.template(n, "upload.src"));
        let content = f
            .take("content")
            .and_then(|n| self.template(n, "upload.content"));
        let dest = f.take("dest").and_then(|n| self.template(n, "upload.dest"));
        let mode = f.take("mode").and_then(|n| self.mode(n));
        let (has_src, has_content, has_dest) = (f.has("src"), f.has("content"), f.has("dest"));
        f.finish(self, "`upload`", &UPLOAD_KEYS);
        if has_src == has_content {
            let d = self
                .error(node.span, "`upload` needs exactly one of `src` or `content`")
                .label("what is sent?")
                .hint("`src: ./files/app.conf` sends a file or folder; `content: |` sends text rendered here");
            self.push(d);
        }
        if !has_dest {
            let d = self
                .error(node.span, "`upload` has no `dest`")
                .label("where does it go?")
                .hint("e.g. `dest: /etc/app/app.conf` (a `dest` ending in `/` is a folder)");
            self.push(d);
        }
        let source = match (src, content) {
            (Some(s), None) => UploadSource::Src(s),
            (None, Some(c)) => UploadSource::Content(c),
            _ => return None,
        };
        Some(Upload {
            source,
            dest: dest?,
            mode,
        })
    }

    /// `download: {src, dest}`.
    fn download(&mut self, node: &Node) -> Option<Download> {
        let mut f = self.fields(node, "download")?;
        let src = f.take("src").and_then(|n| self.template(n, "download.src"));
        let dest = f
            .take("dest")
            .and_then(|n| self.template(n, "download.dest"));
        for key in ["src", "dest"] {
            if !f.has(key) {
                let d = self
                    .error(node.span, format!("`download` has no `{key}`"))
                    .label("incomplete")
                    .hint("e.g. `download: { src: /var/backups/db.tar, dest: ./backups/ }`");
                self.push(d);
            }
        }
        f.finish(self, "`download`", &DOWNLOAD_KEYS);
        Some(Download {
            src: src?,
            dest: dest?,
        })
    }

    /// A file mode: an octal string such as `"0644"`.
    fn mode(&mut self, node: &Node) -> Option<u32> {
        let s = self.string(node, "mode")?;
        let digits = s.value.trim();
        match u32::from_str_radix(digits, 8) {
            Ok(m) if !digits.is_empty() && m <= 0o7777 && matches!(node.kind, NodeKind::Str(_)) => {
                Some(m)
            }
            _ => {
                let d = self
                    .error(s.span, format!("`mode: {}` is not a file mode", s.value))
                    .label("an octal string")
                    .hint("quote it as octal: `mode: \"0644\"`");
                self.push(d);
                None
            }
        }
    }

    fn outputs(&mut self, t: &mut Taken<'_>) -> Vec<Output> {
        let Some(node) = t.fields.take("outputs") else {
            return Vec::new();
        };
        self.entries(node, "outputs")
            .into_iter()
            .filter_map(|(name, value)| {
                if !is_valid_id(&name.value) {
                    let d = self
                        .error(name.span, format!("invalid output name `{}`", name.value))
                        .label("output names are snake_case")
                        .hint(format!("write `{}`", snake_case(&name.value)));
                    self.push(d);
                    return None;
                }
                // An output whose template cannot be read (reported) is still declared, so that
                // reading it elsewhere is not reported as well.
                let template = self
                    .template(value, &format!("outputs.{}", name.value))
                    .unwrap_or_else(|| super::model::Template {
                        text: String::new(),
                        span: value.span,
                    });
                Some(Output {
                    name: name.value,
                    name_span: name.span,
                    template,
                })
            })
            .collect()
    }

    /// `retry: {attempts, delay, backoff, max_delay}`.
    pub fn retry(&mut self, node: &Node) -> Option<Retry> {
        let mut f = self.fields(node, "retry")?;
        let attempts = f
            .take("attempts")
            .and_then(|n| self.number_setting(n, "retry.attempts"));
        let delay = f
            .take("delay")
            .and_then(|n| self.duration(n, "retry.delay"));
        let backoff = f
            .take("backoff")
            .and_then(|n| self.number(n, "retry.backoff"));
        let max_delay = f
            .take("max_delay")
            .and_then(|n| self.duration(n, "retry.max_delay"));
        let missing = !f.has("attempts");
        f.finish(self, "`retry`", &RETRY_KEYS);
        if missing {
            let d = self
                .error(node.span, "`retry` has no `attempts`")
                .label("how many times?")
                .hint("e.g. `retry: { attempts: 3, delay: 10s, backoff: 2 }`");
            self.push(d);
            return None;
        }
        if let Some(b) = &backoff
            && b.value < 1.0
        {
            let d = self
                .error(
                    b.span,
                    format!("`retry.backoff` must be 1 or more, found {}", b.value),
                )
                .label("the wait would shrink")
                .hint("1 keeps the delay constant, 2 doubles it after each attempt");
            self.push(d);
        }
        Some(Retry {
            attempts: attempts?,
            delay: delay.map_or(std::time::Duration::from_secs(1), |d| d.value),
            backoff: backoff.map_or(1.0, |b| b.value),
            max_delay: max_delay.map(|d| d.value),
        })
    }

    fn probe(&mut self, node: &Node) -> Option<Probe> {
        let mut f = self.fields(node, "check")?;
        let run = f.take("run");
        let http = f.take("http");
        let on = f.take("on").and_then(|n| self.template(n, "check.on"));
        f.finish(self, "`check`", &["run", "http", "on"]);
        let kind = match (run, http) {
            (Some(r), None) => ProbeKind::Run(self.command(r, "check.run")?),
            (None, Some(h)) => ProbeKind::Http(self.http(h)?),
            _ => {
                let d = self
                    .error(node.span, "`check` needs exactly one of `run` or `http`")
                    .label("a probe")
                    .hint("e.g. `check: { run: \"test -f /var/lib/done\" }`: exit 0 means already done");
                self.push(d);
                return None;
            }
        };
        Some(Probe {
            kind,
            on,
            span: node.span,
        })
    }

    fn flag(&mut self, t: &mut Taken<'_>, key: &str) -> Option<Spanned<bool>> {
        t.fields.take(key).and_then(|n| self.boolean(n, key))
    }
}

/// The key spans the cross-field rules point at.
struct Spans {
    keys: Vec<(&'static str, Span)>,
}

impl Spans {
    fn of(fields: &Fields<'_>) -> Self {
        let keys = STEP_KEYS
            .iter()
            .filter_map(|k| fields.key_span(k).map(|s| (*k, s)))
            .collect();
        Self { keys }
    }

    fn get(&self, key: &str) -> Option<Span> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
    }
}

impl Decoder {
    /// Rules between a step's fields.
    #[expect(
        clippy::too_many_lines,
        reason = "one rule after another, each a few lines; splitting them scatters the list"
    )]
    fn step_rules(&mut self, step: &Step, spans: &Spans, has_interval: bool, has_fail_when: bool) {
        let id = &step.id;
        let kind = step.kind.key();
        let article = if matches!(kind, "http" | "assert") {
            "an"
        } else {
            "a"
        };
        // `label: None` when the key is wrong for the step's kind; otherwise it says why.
        let misuse =
            |decoder: &mut Self, key: &str, message: String, label: Option<&str>, hint: &str| {
                if let Some(span) = spans.get(key) {
                    let label = label.map_or_else(
                        || format!("not allowed on {article} `{kind}` step"),
                        str::to_owned,
                    );
                    let d = decoder
                        .error(span, message)
                        .label(label)
                        .hint(hint.to_owned());
                    decoder.push(d);
                }
            };
        if has_interval && step.poll.is_none() {
            misuse(
                self,
                "interval",
                format!("step `{id}` has `interval` but no `until`"),
                Some("nothing to poll"),
                "`interval` is the wait between polls: add `until: <expression>`",
            );
        }
        if has_fail_when && step.poll.is_none() {
            misuse(
                self,
                "fail_when",
                format!("step `{id}` has `fail_when` but no `until`"),
                Some("nothing to poll"),
                "`fail_when` stops a poll early: add `until: <expression>`, the condition that ends it well",
            );
        }
        let fans_out = step.for_each.is_some()
            || step.on.as_ref().is_some_and(|on| match &on.targets {
                super::model::OnTargets::List(_) => true,
                super::model::OnTargets::One(t) => t.text.contains("{{"),
            });
        if !fans_out {
            for key in ["max_parallel", "batch", "max_failures", "gate"] {
                misuse(
                    self,
                    key,
                    format!("`{key}` on step `{id}`, which does not fan out"),
                    Some("no items to run in batches"),
                    "it applies to the items of a fan-out: add `for_each: <list>` or `on:` a list of hosts, or remove this key",
                );
            }
        }
        if matches!(step.kind, StepKind::Upload(_) | StepKind::Download(_)) && step.on.is_none() {
            let d = self
                .error(
                    step.kind_span,
                    format!("`{kind}` on step `{id}` without `on:`"),
                )
                .label("which host?")
                .hint("a file moves to or from a host over SSH: add `on: <host>` (a declared host, `user@address`, or a list)");
            self.push(d);
        }
        if matches!(step.kind, StepKind::Upload(_) | StepKind::Download(_)) {
            for key in ["check", "until", "outputs", "safe"] {
                misuse(
                    self,
                    key,
                    format!("`{key}` on {kind} step `{id}`"),
                    None,
                    "a transfer compares sha256 itself (an identical file is not sent) and outputs `changed` and `sha256`",
                );
            }
        }
        if matches!(step.kind, StepKind::Manual(_)) {
            misuse(
                self,
                "timeout",
                format!("`timeout` beside manual step `{id}`"),
                None,
                "a manual step's time limit is part of it: `manual: { instructions: …, timeout: 30m }` (no decision in time fails it)",
            );
            misuse(
                self,
                "outputs",
                format!("`outputs` on manual step `{id}`"),
                None,
                "the values a person supplies are its `inputs`: `manual: { instructions: …, inputs: { snapshot_id: { type: string } } }`, read as `steps.<id>.outputs.<name>`",
            );
            for key in ["retry", "until", "check", "on"] {
                misuse(
                    self,
                    key,
                    format!("`{key}` on manual step `{id}`"),
                    None,
                    "a manual step waits for a person: it has no result to retry, poll or probe",
                );
            }
            misuse(
                self,
                "safe",
                format!("manual step `{id}` cannot be `safe`"),
                None,
                "a rehearsal (--dry-run) never asks a person; remove `safe`",
            );
            misuse(
                self,
                "destructive",
                format!("manual step `{id}` cannot be `destructive`"),
                None,
                "a manual step already waits for approval; mark the command that does the damage as destructive instead",
            );
        }
        if step.destructive && step.safe {
            misuse(
                self,
                "safe",
                format!("step `{id}` is both `destructive` and `safe`"),
                Some("a destructive step must not run in a dry-run"),
                "`safe` steps run during a dry-run; something destructive must never be safe",
            );
        }
        if step.destructive
            && !matches!(
                step.kind,
                StepKind::Run(_)
                    | StepKind::Http(_)
                    | StepKind::Call(_)
                    | StepKind::Manual(_)
                    | StepKind::Upload(_)
                    | StepKind::Download(_)
            )
        {
            misuse(
                self,
                "destructive",
                format!("`destructive` on {kind} step `{id}`"),
                None,
                "only `run`, `http`, `upload`, `download` and `call` steps change anything",
            );
        }
        if let StepKind::Block(block) = &step.kind
            && block.steps.is_empty()
        {
            let d = self
                .error(step.kind_span, format!("block `{id}` has no steps"))
                .label("an empty block")
                .hint("write its steps under `block:`, as under `steps:`");
            self.push(d);
        }
        if !matches!(step.kind, StepKind::Run(_)) {
            for key in ["on", "env", "cwd", "shell"] {
                let runs_on_hosts = matches!(
                    step.kind,
                    StepKind::Manual(_)
                        | StepKind::Http(_)
                        | StepKind::Upload(_)
                        | StepKind::Download(_)
                );
                if !(key == "on" && runs_on_hosts) {
                    misuse(
                        self,
                        key,
                        format!("`{key}` on {kind} step `{id}`"),
                        None,
                        "only `run` steps start a command",
                    );
                }
            }
        }
        if let StepKind::Run(Command::Argv(_)) = step.kind {
            misuse(
                self,
                "shell",
                format!("`shell` on step `{id}`, whose command is a list"),
                Some("the command is a list: no shell runs it"),
                "an argv list runs without a shell; write the command as a string to use one",
            );
        }
        if matches!(step.kind, StepKind::Call(_) | StepKind::Block(_)) {
            for key in ["check", "outputs", "until", "safe"] {
                misuse(
                    self,
                    key,
                    format!("`{key}` on call step `{id}`"),
                    None,
                    "a call is a group of the called runbook's steps; put this on those steps",
                );
            }
        }
        if matches!(step.kind, StepKind::Sleep(_) | StepKind::Assert(_)) {
            misuse(
                self,
                "check",
                format!("`check` on {kind} step `{id}`"),
                None,
                "a probe only makes sense for a step with a side effect",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_snake_case() {
        assert!(is_valid_id("stop_core"));
        assert!(is_valid_id("a1"));
        assert!(!is_valid_id("stop-core"));
        assert!(!is_valid_id("1stop"));
        assert!(!is_valid_id("Stop"));
        assert_eq!(snake_case("stop-core"), "stop_core");
        assert_eq!(snake_case("StopCore"), "stop_core");
    }
}
