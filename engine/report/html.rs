//! The evidence of a run as one self-contained HTML page: inline CSS and SVG, no script, nothing
//! fetched from the network, laid out to print on A4 (a PDF for the audit file). What an auditor
//! looks for comes first: the outcome and the time to recovery, what ran and who ran it, the
//! Gantt chart; then every step, the approvals, the failures with their logs, the processes and
//! the params.

use std::fmt::Write as _;

use super::evidence::Evidence;
use super::gantt::{self, escape};
use super::markdown::{duration, maybe_time, outputs_text, time, value_text};

const STYLE: &str = r#"
:root { --ok:#15803d; --bad:#b91c1c; --warn:#b45309; --ink:#0f172a; --soft:#475569; --line:#e2e8f0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
.sub { color: var(--soft); margin: 0 0 16px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600; font-size: 12px; color: #fff; background: #64748b; vertical-align: middle; }
.badge.succeeded { background: var(--ok); } .badge.failed { background: var(--bad); }
.badge.paused { background: #d97706; } .badge.running { background: #2563eb; }
.badge.interrupted, .badge.pending { background: #64748b; } .badge.skipped { background: #94a3b8; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; margin: 16px 0 6px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .k { color: var(--soft); font-size: 12px; } .card .v { font-size: 20px; font-weight: 650; }
.card.main { border-color: var(--ok); background: #f0fdf4; } .card.main.none { border-color: var(--bad); background: #fef2f2; }
dl.facts { display: grid; grid-template-columns: 170px 1fr; gap: 4px 14px; margin: 14px 0 0; }
dl.facts dt { color: var(--soft); } dl.facts dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f8fafc; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
tr.finally td:first-child::after { content: " (finally)"; color: var(--soft); font-size: 11px; }
.outputs { word-break: break-all; max-width: 330px; }
pre { background: #0f172a; color: #e2e8f0; padding: 10px 12px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.note { background: #fffbeb; border: 1px solid #fcd34d; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.chart { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; padding: 8px 0; }
svg.gantt { display: block; width: 100%; height: auto; }
svg.gantt text { font: 11.5px system-ui, "DejaVu Sans", sans-serif; fill: var(--ink); }
svg.gantt text.tick, svg.gantt text.gap { font-size: 10px; fill: var(--soft); }
svg.gantt text.gap { text-anchor: middle; } svg.gantt text.mark { font-size: 10.5px; fill: var(--ok); text-anchor: end; font-weight: 600; }
svg.gantt text.band { font-size: 10.5px; fill: var(--soft); }
svg.gantt text.label.failed { fill: var(--bad); font-weight: 600; }
svg.gantt text.label.pending, svg.gantt text.label.skipped { fill: #94a3b8; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; color: var(--soft); font-size: 12px; margin: 8px 4px 0; }
.legend i { display: inline-block; width: 22px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
footer { margin-top: 34px; color: var(--soft); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; } tr, .card, pre { break-inside: avoid; }
  .chart { overflow: visible; border: none; } svg.gantt { width: 100%; height: auto; }
}
"#;

/// The evidence as an HTML page.
pub fn render(e: &Evidence) -> String {
    let mut out = String::new();
    let title = format!("Run {} of {}", e.run.id, e.runbook.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&title)
    );
    header(e, &mut out);
    chart(e, &mut out);
    steps(e, &mut out);
    approvals(e, &mut out);
    failures(e, &mut out);
    processes(e, &mut out);
    params(e, &mut out);
    notifications(e, &mut out);
    let _ = write!(
        out,
        "<footer>Made {} by runbook {} (report format {}) from the run's journal, logs and its own copy of the runbook.</footer>\n</main>\n</body>\n</html>\n",
        time(e.generated_at),
        env!("CARGO_PKG_VERSION"),
        e.format
    );
    out
}

fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        escape(status),
        escape(status)
    )
}

fn header(e: &Evidence, out: &mut String) {
    let _ = writeln!(
        out,
        "<h1>{} {}</h1>\n<p class=\"sub\">Run <code>{}</code>{}</p>",
        escape(&e.runbook.name),
        badge(&e.run.status),
        escape(&e.run.id),
        e.runbook
            .description
            .as_ref()
            .map(|d| format!(" · {}", escape(d.trim())))
            .unwrap_or_default()
    );
    for note in &e.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
    }
    if !e.run.waiting_for.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">Waiting for a person at <b>{}</b>.</p>",
            escape(&e.run.waiting_for.join(", "))
        );
    }
    let t = &e.totals;
    let (ttr_class, ttr) = match t.time_to_recovery_ms {
        Some(ms) => ("card main", duration(ms)),
        None => ("card main none", "not recovered".to_owned()),
    };
    let _ = writeln!(
        out,
        "<div class=\"cards\">\n<div class=\"{ttr_class}\"><div class=\"k\">time to recovery</div><div class=\"v\">{ttr}</div></div>\n<div class=\"card\"><div class=\"k\">elapsed</div><div class=\"v\">{}</div></div>\n<div class=\"card\"><div class=\"k\">waiting for people</div><div class=\"v\">{}</div></div>\n<div class=\"card\"><div class=\"k\">in polls and gates</div><div class=\"v\">{}</div></div>\n<div class=\"card\"><div class=\"k\">stopped between processes</div><div class=\"v\">{}</div></div>\n</div>",
        duration(t.elapsed_ms),
        duration(t.waiting_for_people_ms),
        duration(t.polling_ms),
        duration(t.stopped_ms),
    );
    let mut version = format!("<code>{}</code>", escape(&e.runbook.sha256));
    let commit = match &e.runbook.commit {
        Some(c) => format!(
            "<code>{}</code>{}",
            escape(c),
            if e.runbook.modified {
                " (the file had uncommitted changes)"
            } else {
                ""
            }
        ),
        None => "not in a git repository".to_owned(),
    };
    if e.runbook.changed_during_run {
        version.push_str(" (a resume went on with a changed runbook)");
    }
    let mut who: Vec<String> = Vec::new();
    for p in &e.processes {
        let w = format!(
            "{}{}",
            p.user,
            p.host
                .as_ref()
                .map(|h| format!(" on {h}"))
                .unwrap_or_default()
        );
        if !who.contains(&w) {
            who.push(w);
        }
    }
    let mut facts = vec![
        (
            "runbook file",
            format!("<code>{}</code>", escape(&e.runbook.source)),
        ),
        ("sha256", version),
        ("git commit", commit),
        ("run by", escape(&who.join(", "))),
        ("started", maybe_time(e.run.started_at)),
        ("ended", maybe_time(e.run.ended_at)),
        ("delays before attempts", duration(t.delays_ms)),
    ];
    if let Some(command) = &e.run.resume_command {
        facts.push(("to continue", format!("<code>{}</code>", escape(command))));
    }
    out.push_str("<dl class=\"facts\">\n");
    for (k, v) in facts {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>\n");
}

fn chart(e: &Evidence, out: &mut String) {
    out.push_str("<h2>Timeline</h2>\n<div class=\"chart\">\n");
    out.push_str(&gantt::render(e));
    out.push_str("\n</div>\n<div class=\"legend\"><span><i style=\"background:#22c55e\"></i>succeeded</span><span><i style=\"background:repeating-linear-gradient(90deg,#22c55e 0 4px,#4ade80 4px 8px)\"></i>polling</span><span><i style=\"background:#dc2626\"></i>failed</span><span><i style=\"background:#f97316\"></i>failed, retried</span><span><i style=\"background:repeating-linear-gradient(45deg,#fde68a 0 3px,#d97706 3px 5px)\"></i>waiting for a person</span><span><i style=\"background:#e2e8f0\"></i>delay or backoff</span><span><i style=\"background:#a78bfa\"></i>gate between batches</span><span><i style=\"background:#94a3b8\"></i>interrupted or died</span><span>┃ batch start</span><span>⟲ finally</span></div>\n");
}

fn steps(e: &Evidence, out: &mut String) {
    out.push_str("<h2>Steps</h2>\n<table>\n<thead><tr><th>step</th><th>what</th><th>status</th><th class=\"num\">attempts</th><th>started</th><th class=\"num\">work</th><th class=\"num\">waiting</th><th>outputs</th></tr></thead>\n<tbody>\n");
    for s in &e.steps {
        let what = match &s.name {
            Some(name) => format!(
                "{} <span class=\"sub\">({})</span>",
                escape(name),
                escape(&s.kind)
            ),
            None => escape(&s.kind),
        };
        let reason = s
            .reason
            .as_ref()
            .map(|r| format!("<br><small>{}</small>", escape(r)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr{}><td><code>{}</code></td><td>{what}</td><td>{}{reason}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"outputs\"><code>{}</code></td></tr>",
            if s.phase == "finally" {
                " class=\"finally\""
            } else {
                ""
            },
            escape(&s.id),
            badge(&s.status),
            s.attempt_count,
            maybe_time(s.started_at),
            duration(s.work_ms),
            if s.waiting_ms > 0 {
                duration(s.waiting_ms)
            } else {
                "-".to_owned()
            },
            escape(&outputs_text(s)),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    for s in e.steps.iter().filter(|s| !s.batches.is_empty()) {
        let _ = writeln!(
            out,
            "<h3>Batches of <code>{}</code></h3>\n<ul>",
            escape(&s.id)
        );
        for b in &s.batches {
            let gate = b.gate.as_ref().map_or_else(String::new, |g| {
                format!(
                    "; gate {}{}",
                    match g.held {
                        Some(true) => "held",
                        Some(false) => "did not hold",
                        None => "not finished",
                    },
                    g.detail
                        .as_ref()
                        .map(|d| format!(" ({})", escape(d)))
                        .unwrap_or_default()
                )
            });
            let _ = writeln!(
                out,
                "<li>batch {} of {} at {}: {}{gate}</li>",
                b.number,
                b.of,
                time(b.started_at),
                escape(&b.items.join(", "))
            );
        }
        out.push_str("</ul>\n");
    }
}

fn approvals(e: &Evidence, out: &mut String) {
    out.push_str("<h2>Approvals</h2>\n");
    if e.approvals.is_empty() && e.waits_for_people.is_empty() {
        out.push_str("<p>No manual step was decided in this run.</p>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>step</th><th>decision</th><th>by</th><th>where</th><th>at</th><th>how</th><th class=\"num\">waited</th></tr></thead>\n<tbody>\n");
    for a in &e.approvals {
        let waited = e
            .waited_for(a)
            .map_or_else(|| "-".to_owned(), |w| duration(w.duration_ms));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{waited}</td></tr>",
            escape(&a.step),
            escape(&a.decision),
            a.reason
                .as_ref()
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default(),
            escape(&a.by),
            escape(a.host.as_deref().unwrap_or("-")),
            time(a.at),
            escape(&a.how),
        );
    }
    for w in e.waits_for_people.iter().filter(|w| w.until.is_none()) {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>waiting</td><td>-</td><td>-</td><td>since {}</td><td>-</td><td class=\"num\">{}</td></tr>",
            escape(&w.step),
            time(w.from),
            duration(w.duration_ms)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn failures(e: &Evidence, out: &mut String) {
    if e.failures.is_empty() {
        return;
    }
    out.push_str("<h2>Failures</h2>\n");
    for f in &e.failures {
        let then = if f.status == "failed" {
            String::new()
        } else {
            format!(", then {}", escape(&f.status))
        };
        let _ = writeln!(
            out,
            "<h3><code>{}</code> failed{then}</h3>",
            escape(&f.step)
        );
        if let Some(reason) = &f.reason {
            let _ = writeln!(out, "<p>{}</p>", escape(reason));
        }
        if !f.log_tail.is_empty() {
            let _ = writeln!(out, "<pre>{}</pre>", escape(&f.log_tail.join("\n")));
        }
    }
}

fn processes(e: &Evidence, out: &mut String) {
    out.push_str("<h2>Processes</h2>\n<table>\n<thead><tr><th class=\"num\">#</th><th>how</th><th>who</th><th>where</th><th class=\"num\">pid</th><th>from</th><th>to</th><th>outcome</th></tr></thead>\n<tbody>\n");
    for p in &e.processes {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.number,
            escape(&p.kind),
            escape(&p.user),
            escape(p.host.as_deref().unwrap_or("-")),
            p.pid,
            time(p.started_at),
            time(p.last_seen_at),
            badge(&p.outcome),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn params(e: &Evidence, out: &mut String) {
    if e.params.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Params</h2>\n<table>\n<thead><tr><th>name</th><th>value</th></tr></thead>\n<tbody>\n",
    );
    for p in &e.params {
        let value = if p.secret {
            "<code>***</code> (secret: never stored)".to_owned()
        } else {
            format!("<code>{}</code>", escape(&value_text(&p.value)))
        };
        let _ = writeln!(out, "<tr><td>{}</td><td>{value}</td></tr>", escape(&p.name));
    }
    out.push_str("</tbody>\n</table>\n");
}

fn notifications(e: &Evidence, out: &mut String) {
    if e.notifications.is_empty() {
        return;
    }
    out.push_str("<h2>Notifications</h2>\n<table>\n<thead><tr><th>status</th><th>to</th><th>at</th><th>result</th></tr></thead>\n<tbody>\n");
    for n in &e.notifications {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}: {}</td></tr>",
            escape(&n.on),
            escape(&n.url),
            time(n.at),
            if n.delivered { "delivered" } else { "failed" },
            escape(&n.detail)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}
