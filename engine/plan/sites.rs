//! Where a runbook's templates are written: every field that is a template or an expression, with
//! what is in scope there. The static checks go through this one list, so a new template-bearing
//! field is checked by every check once it is listed here.

use crate::spec::{
    Batch, Command, Expr, ForEachItems, HttpBody, HttpRequest, OnTargets, ProbeKind, Runbook,
    Setting, SourceFile, Span, Step, StepKind, Template, UploadSource,
};

/// Where a template is written, which decides what is in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Anything evaluated before or while the step runs.
    Input,
    /// `outputs:` — `result` in scope, secrets forbidden (outputs are stored).
    Output,
    /// `until:` — `result` in scope.
    Until,
    /// `for_each:` — the item is not in scope yet.
    ForEach,
    /// Runbook-level `env` and `hosts`: no steps yet.
    Global,
    /// A notification (`notify:`): params, secrets and `run` (with `waiting_for` and
    /// `resume_command`), no steps.
    Notify,
}

/// One template or expression as written in the file.
pub struct Site<'a> {
    /// Its text (an expression's without the `{{ }}` around it).
    pub text: &'a str,
    /// The YAML scalar it is written in.
    pub span: Span,
    /// A bare expression (`when`, `until`, `assert`, `for_each`), not a template.
    pub expression: bool,
    /// What is in scope.
    pub field: Field,
    /// The step it belongs to (none for runbook-level fields).
    pub step: Option<&'a Step>,
}

impl<'a> Site<'a> {
    fn template(t: &'a Template, field: Field, step: Option<&'a Step>) -> Self {
        Self {
            text: &t.text,
            span: t.span,
            expression: false,
            field,
            step,
        }
    }

    fn expr(e: &'a Expr, field: Field, step: &'a Step) -> Self {
        Self {
            text: &e.text,
            span: e.span,
            expression: true,
            field,
            step: Some(step),
        }
    }
}

/// Every template and expression of a runbook, runbook-level fields first, then step by step.
pub fn collect(runbook: &Runbook) -> Vec<Site<'_>> {
    let mut sites = Vec::new();
    for (_, t) in &runbook.env {
        sites.push(Site::template(t, Field::Global, None));
    }
    for host in &runbook.hosts {
        sites.push(Site::template(&host.ssh, Field::Global, None));
        if let Some(t) = &host.port {
            sites.push(Site::template(t, Field::Global, None));
        }
        if let Some(t) = &host.identity_file {
            sites.push(Site::template(t, Field::Global, None));
        }
        sites.extend(
            host.options
                .iter()
                .map(|t| Site::template(t, Field::Global, None)),
        );
    }
    let ssh = &runbook.defaults.ssh;
    for t in ssh
        .port
        .iter()
        .chain(&ssh.identity_file)
        .chain(&ssh.options)
    {
        sites.push(Site::template(t, Field::Global, None));
    }
    for step in runbook.all_steps() {
        collect_step(step, &mut sites);
    }
    for notify in &runbook.notify {
        let req = &notify.http;
        sites.push(Site::template(&req.url, Field::Notify, None));
        for (_, t) in &req.headers {
            sites.push(Site::template(t, Field::Notify, None));
        }
        match &req.body {
            Some(HttpBody::Text(t)) => sites.push(Site::template(t, Field::Notify, None)),
            Some(HttpBody::Json(v)) => sites.extend(
                v.templates()
                    .into_iter()
                    .map(|t| Site::template(t, Field::Notify, None)),
            ),
            None => {}
        }
    }
    sites
}

fn collect_step<'a>(step: &'a Step, sites: &mut Vec<Site<'a>>) {
    let s = Some(step);
    if let (Some(name), Some(span)) = (&step.name, step.name_span) {
        sites.push(Site {
            text: name,
            span,
            expression: false,
            field: Field::Input,
            step: s,
        });
    }
    match &step.kind {
        StepKind::Run(cmd) => collect_command(cmd, step, sites),
        StepKind::Http(req) => collect_http(req, step, sites),
        StepKind::Manual(manual) => {
            sites.push(Site::template(&manual.instructions, Field::Input, s));
        }
        StepKind::Assert(exprs) => {
            sites.extend(exprs.iter().map(|e| Site::expr(e, Field::Input, step)));
        }
        // A block's steps are checked as their own list (`static_checks`).
        StepKind::Sleep(_) | StepKind::Block(_) => {}
        StepKind::Upload(upload) => {
            let source = match &upload.source {
                UploadSource::Src(t) | UploadSource::Content(t) => t,
            };
            sites.push(Site::template(source, Field::Input, s));
            sites.push(Site::template(&upload.dest, Field::Input, s));
        }
        StepKind::Download(download) => {
            sites.push(Site::template(&download.src, Field::Input, s));
            sites.push(Site::template(&download.dest, Field::Input, s));
        }
        StepKind::Call(call) => {
            for (_, value, _) in &call.with {
                sites.extend(
                    value
                        .templates()
                        .into_iter()
                        .map(|t| Site::template(t, Field::Input, s)),
                );
            }
        }
    }
    if let Some(when) = &step.when {
        sites.push(Site::expr(when, Field::Input, step));
    }
    if let Some(fe) = &step.for_each {
        match &fe.items {
            ForEachItems::Expr(e) => sites.push(Site::expr(e, Field::ForEach, step)),
            ForEachItems::List(values) => {
                for v in values {
                    sites.extend(
                        v.templates()
                            .into_iter()
                            .map(|t| Site::template(t, Field::ForEach, s)),
                    );
                }
            }
        }
    }
    for output in &step.outputs {
        sites.push(Site::template(&output.template, Field::Output, s));
    }
    if let Some(poll) = &step.poll {
        sites.push(Site::expr(&poll.until, Field::Until, step));
        if let Some(fail_when) = &poll.fail_when {
            sites.push(Site::expr(fail_when, Field::Until, step));
        }
        if let Some(Setting::Template(t)) = &poll.interval {
            sites.push(Site::template(t, Field::Input, s));
        }
    }
    collect_settings(step, sites);
    collect_hosts_and_check(step, sites);
    for (_, t) in &step.env {
        sites.push(Site::template(t, Field::Input, s));
    }
    if let Some(t) = &step.cwd {
        sites.push(Site::template(t, Field::Input, s));
    }
}

/// A step's `on:` targets and its `check` probe (with the probe's own `on:`).
fn collect_hosts_and_check<'a>(step: &'a Step, sites: &mut Vec<Site<'a>>) {
    let s = Some(step);
    if let Some(on) = &step.on {
        match &on.targets {
            OnTargets::One(t) => sites.push(Site::template(t, Field::Input, s)),
            OnTargets::List(values) => {
                for v in values {
                    sites.extend(
                        v.templates()
                            .into_iter()
                            .map(|t| Site::template(t, Field::Input, s)),
                    );
                }
            }
        }
    }
    if let Some(check) = &step.check {
        match &check.kind {
            ProbeKind::Run(cmd) => collect_command(cmd, step, sites),
            ProbeKind::Http(req) => collect_http(req, step, sites),
        }
        if let Some(t) = &check.on {
            sites.push(Site::template(t, Field::Input, s));
        }
    }
}

/// Settings written as templates (`timeout`, `retry.attempts`, `max_parallel`, `batch`,
/// `max_failures`) and the gate of a fan-out.
fn collect_settings<'a>(step: &'a Step, sites: &mut Vec<Site<'a>>) {
    let s = Some(step);
    if let Some(Setting::Template(t)) = &step.timeout {
        sites.push(Site::template(t, Field::Input, s));
    }
    if let Some(Setting::Template(t)) = step.retry.as_ref().map(|r| &r.attempts) {
        sites.push(Site::template(t, Field::Input, s));
    }
    let fan = &step.fan;
    for setting in [&fan.max_parallel, &fan.max_failures].into_iter().flatten() {
        if let Setting::Template(t) = setting {
            sites.push(Site::template(t, Field::Input, s));
        }
    }
    match &fan.batch {
        Some(Batch::Template(t)) => sites.push(Site::template(t, Field::Input, s)),
        Some(Batch::Sizes(sizes)) => {
            for size in sizes {
                if let Setting::Template(t) = size {
                    sites.push(Site::template(t, Field::Input, s));
                }
            }
        }
        None => {}
    }
    if let Some(gate) = &fan.gate {
        match &gate.probe {
            ProbeKind::Run(cmd) => collect_command(cmd, step, sites),
            ProbeKind::Http(req) => collect_http(req, step, sites),
        }
        if let Some(t) = &gate.on {
            sites.push(Site::template(t, Field::Input, s));
        }
        sites.push(Site::expr(&gate.until, Field::Until, step));
    }
}

fn collect_command<'a>(cmd: &'a Command, step: &'a Step, sites: &mut Vec<Site<'a>>) {
    match cmd {
        Command::Script(t) => sites.push(Site::template(t, Field::Input, Some(step))),
        Command::Argv(args) => sites.extend(
            args.iter()
                .map(|t| Site::template(t, Field::Input, Some(step))),
        ),
    }
}

fn collect_http<'a>(req: &'a HttpRequest, step: &'a Step, sites: &mut Vec<Site<'a>>) {
    sites.push(Site::template(&req.url, Field::Input, Some(step)));
    for (_, t) in &req.headers {
        sites.push(Site::template(t, Field::Input, Some(step)));
    }
    match &req.body {
        Some(HttpBody::Text(t)) => sites.push(Site::template(t, Field::Input, Some(step))),
        Some(HttpBody::Json(v)) => sites.extend(
            v.templates()
                .into_iter()
                .map(|t| Site::template(t, Field::Input, Some(step))),
        ),
        None => {}
    }
}

/// Maps an offset inside a template's text to a span in its file, through block scalars and
/// quoting: the line of the template is searched for in the file, starting at the earliest file
/// line it can be on (a template's line `k` is never above the scalar's line `k`), so that an
/// earlier line containing the same text is not taken for it. The span stays on that line.
pub fn locate(file: &SourceFile, scalar: Span, text: &str, offset: usize, len: usize) -> Span {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    if trimmed.is_empty() {
        return scalar;
    }
    // A block scalar's span starts at its first non-blank line.
    let blank_lines = text.len() - text.trim_start_matches('\n').len();
    let line_index = text[..line_start].matches('\n').count();
    let (scalar_line, _) = file.line_col(scalar.offset);
    let earliest = file.line_offset(scalar_line + line_index.saturating_sub(blank_lines));
    let search_from = scalar.offset.max(earliest).min(file.text.len());
    match file.text[search_from..].find(trimmed.trim_end()) {
        Some(found) => {
            let within = (offset - line_start).saturating_sub(lead);
            Span::new(search_from + found + within, len.min(line_end - offset))
        }
        None => scalar,
    }
}
