//! The Gantt chart of a run, as inline SVG: one row per step, its attempts as bars coloured by
//! how they ended, waits before attempts dashed, waiting for a person hatched amber, polls
//! striped, a fan-out's batches and gates on its row. Each process that drove the run is a band
//! of its own on one time axis; the time between processes (a pause overnight, a failure being
//! fixed) is a narrow break labelled with its length, so that a run resumed the next morning
//! still shows its minutes.

#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "pixel positions from row counts and milliseconds, far below 2^52 and never negative"
)]

use std::fmt::Write as _;

use jiff::Timestamp;

use super::evidence::Evidence;
use super::evidence::model::StepFacts;
use super::evidence::steps::millis_between;
use super::markdown::duration;

/// Width of the step labels.
const LABEL: f64 = 230.0;
/// Width of the time axis.
const CHART: f64 = 860.0;
/// Height of a row.
const ROW: f64 = 20.0;
/// Height above the rows (process bands and tick labels).
const TOP: f64 = 46.0;
/// Width of a break between processes.
const BREAK: f64 = 44.0;
/// The least width a process's band gets.
const MIN_BAND: f64 = 36.0;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One process's stretch of the axis.
struct Band {
    from: Timestamp,
    to: Timestamp,
    x: f64,
    width: f64,
}

/// Maps moments to x positions, process by process, with breaks between them.
struct Axis {
    bands: Vec<Band>,
}

impl Axis {
    fn new(e: &Evidence) -> Self {
        let mut spans: Vec<(Timestamp, Timestamp)> = e
            .processes
            .iter()
            .map(|p| (p.started_at, p.last_seen_at.max(p.started_at)))
            .collect();
        spans.sort_by_key(|s| s.0);
        // Processes that overlap or touch share a band.
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (from, to) in spans {
            match merged.last_mut() {
                Some(last) if millis_between(last.1, from) < 1000 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        if merged.is_empty() {
            merged.push((e.generated_at, e.generated_at));
        }
        let breaks = merged.len().saturating_sub(1) as f64;
        let total: u64 = merged
            .iter()
            .map(|(f, t)| millis_between(*f, *t).max(1))
            .sum();
        let spare = (CHART - breaks * BREAK - merged.len() as f64 * MIN_BAND).max(0.0);
        let mut x = LABEL;
        let bands = merged
            .into_iter()
            .map(|(from, to)| {
                let share = millis_between(from, to).max(1) as f64 / total as f64;
                let width = MIN_BAND + spare * share;
                let band = Band { from, to, x, width };
                x += width + BREAK;
                band
            })
            .collect();
        Self { bands }
    }

    /// The x of a moment: inside a band, proportionally; inside a break, across it.
    fn x(&self, at: Timestamp) -> f64 {
        let mut previous: Option<&Band> = None;
        for band in &self.bands {
            if at < band.from {
                return match previous {
                    Some(p) => {
                        let gap = millis_between(p.to, band.from).max(1) as f64;
                        let into = millis_between(p.to, at) as f64;
                        p.x + p.width + BREAK * (into / gap)
                    }
                    None => band.x,
                };
            }
            if at <= band.to {
                let len = millis_between(band.from, band.to).max(1) as f64;
                return band.x + band.width * (millis_between(band.from, at) as f64 / len);
            }
            previous = Some(band);
        }
        previous.map_or(LABEL, |b| b.x + b.width)
    }
}

/// A tick step that puts about `count` ticks on `span_ms`.
fn tick_step(span_ms: u64, count: u64) -> u64 {
    const STEPS: [u64; 17] = [
        100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000, 7_200_000,
    ];
    let wanted = span_ms / count.max(1);
    STEPS
        .iter()
        .copied()
        .find(|s| *s >= wanted)
        .unwrap_or(21_600_000)
}

/// The chart.
pub fn render(e: &Evidence) -> String {
    let axis = Axis::new(e);
    let rows = e.steps.len().max(1) as f64;
    let height = TOP + rows * ROW + 34.0;
    let width = LABEL + CHART + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="gantt" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Timeline of every step">
<defs>
<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde68a"/><line x1="0" y1="0" x2="0" y2="6" stroke="#d97706" stroke-width="2"/></pattern>
<pattern id="poll" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#4ade80"/><rect width="4" height="8" fill="#22c55e"/></pattern>
</defs>
"##
    );
    bands(e, &axis, height, &mut svg);
    for (row, step) in e.steps.iter().enumerate() {
        step_row(e, step, row as f64, &axis, &mut svg);
    }
    if let (Some(ttr), Some(start)) = (e.totals.time_to_recovery_ms, e.run.started_at) {
        let recovered = start
            .checked_add(jiff::SignedDuration::from_millis(
                i64::try_from(ttr).unwrap_or(i64::MAX),
            ))
            .unwrap_or(start);
        let x = axis.x(recovered);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#15803d" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" class="mark">recovered · {d}</text>"##,
            y0 = TOP - 6.0,
            y1 = TOP + rows * ROW,
            tx = x - 4.0,
            ty = TOP + rows * ROW + 14.0,
            d = duration(ttr),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The process bands, the breaks between them, and the tick labels.
fn bands(e: &Evidence, axis: &Axis, height: f64, svg: &mut String) {
    let bottom = height - 34.0;
    for (i, band) in axis.bands.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f8fafc" } else { "#eef2f7" };
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{}" width="{:.1}" height="{}" fill="{fill}" stroke="#cbd5e1"/>"##,
            band.x,
            TOP - 20.0,
            band.width,
            bottom - TOP + 20.0
        );
        let who: Vec<String> = e
            .processes
            .iter()
            .filter(|p| p.started_at >= band.from && p.started_at <= band.to)
            .map(|p| {
                format!(
                    "process {} ({} by {}{})",
                    p.number,
                    p.kind,
                    p.user,
                    p.host.as_ref().map(|h| format!("@{h}")).unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" class="band"><title>{}</title>{}</text>"#,
            band.x + 4.0,
            TOP - 26.0,
            escape(&who.join(", ")),
            escape(&short(
                &who.first().cloned().unwrap_or_default(),
                band.width
            ))
        );
        let span = millis_between(band.from, band.to);
        let step = tick_step(span, ((band.width / 110.0).floor() as u64).max(1));
        let mut offset = 0;
        while offset <= span {
            let at = band
                .from
                .checked_add(jiff::SignedDuration::from_millis(
                    i64::try_from(offset).unwrap_or(i64::MAX),
                ))
                .unwrap_or(band.from);
            let x = axis.x(at);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#e2e8f0"/><text x="{x:.1}" y="{}" class="tick">{}</text>"##,
                TOP - 20.0,
                bottom + 13.0,
                if offset == 0 {
                    at.strftime("%H:%M:%S").to_string()
                } else {
                    format!("+{}", duration(offset))
                }
            );
            offset += step;
            if band.width < 120.0 {
                break;
            }
        }
        if let Some(next) = axis.bands.get(i + 1) {
            let x = band.x + band.width;
            let gap = millis_between(band.to, next.from);
            let _ = writeln!(
                svg,
                r##"<path d="M{x0:.1} {y0} l6 6 l-6 6 l6 6 M{x1:.1} {y0} l6 6 l-6 6 l6 6" stroke="#94a3b8" fill="none"/><text x="{cx:.1}" y="{ty}" class="gap">{d}</text><text x="{cx:.1}" y="{ty2}" class="gap">later</text>"##,
                x0 = x + 12.0,
                x1 = x + BREAK - 18.0,
                y0 = TOP - 18.0,
                cx = x + BREAK / 2.0,
                ty = bottom + 13.0,
                ty2 = bottom + 25.0,
                d = duration(gap),
            );
        }
    }
}

/// Text cut to what fits in `width` pixels (about 6 px a character).
fn short(text: &str, width: f64) -> String {
    let fits = ((width / 6.2).floor() as usize).max(4);
    if text.chars().count() <= fits {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(fits.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A bar on a row.
fn bar(svg: &mut String, x0: f64, x1: f64, y: f64, fill: &str, class: &str, title: &str) {
    let w = (x1 - x0).max(2.0);
    let _ = writeln!(
        svg,
        r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="2" fill="{fill}" class="{class}"><title>{}</title></rect>"#,
        y + 4.0,
        ROW - 8.0,
        escape(title)
    );
}

#[expect(
    clippy::too_many_lines,
    reason = "one row's marks in drawing order: attempts, waits, batches, gates and the label"
)]
fn step_row(e: &Evidence, step: &StepFacts, row: f64, axis: &Axis, svg: &mut String) {
    let y = TOP + row * ROW;
    if row as usize % 2 == 1 {
        let _ = writeln!(
            svg,
            r##"<rect x="0" y="{y}" width="{LABEL}" height="{ROW}" fill="#f1f5f9"/>"##
        );
    }
    let mut label = step.id.clone();
    if step.phase == "finally" {
        label.push_str(" ⟲");
    }
    let _ = writeln!(
        svg,
        r#"<text x="6" y="{:.1}" class="label {}"><title>{}</title>{}</text>"#,
        y + 14.0,
        escape(&step.status),
        escape(&format!(
            "{}{}: {}",
            step.id,
            step.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            step.status
        )),
        escape(&short(&label, LABEL - 12.0))
    );
    for wait in &step.waits {
        let end = wait
            .at
            .checked_add(jiff::SignedDuration::from_millis(
                i64::try_from(wait.duration_ms).unwrap_or(i64::MAX),
            ))
            .unwrap_or(wait.at);
        bar(
            svg,
            axis.x(wait.at),
            axis.x(end),
            y,
            "#e2e8f0",
            "wait",
            &format!("{} {}", wait.kind, duration(wait.duration_ms)),
        );
    }
    for w in e.waits_for_people.iter().filter(|w| w.step == step.id) {
        let until = w.until.unwrap_or(e.generated_at);
        bar(
            svg,
            axis.x(w.from),
            axis.x(until),
            y,
            "url(#hatch)",
            "person",
            &format!(
                "waiting for a person: {}{}",
                duration(w.duration_ms),
                if w.until.is_none() { " so far" } else { "" }
            ),
        );
    }
    if step.kind != "manual" {
        for a in &step.attempts {
            let end = a.ended_at.unwrap_or_else(|| {
                e.processes
                    .get(a.process - 1)
                    .map_or(e.generated_at, |p| p.last_seen_at)
            });
            let fill = match a.outcome.as_str() {
                "succeeded" if step.polls => "url(#poll)",
                "succeeded" => "#22c55e",
                "failed" => "#dc2626",
                "retried" => "#f97316",
                "skipped" => "#cbd5e1",
                "running" => "#3b82f6",
                "paused" => "#f59e0b",
                _ => "#94a3b8",
            };
            bar(
                svg,
                axis.x(a.started_at),
                axis.x(end),
                y,
                fill,
                &a.outcome,
                &format!(
                    "{} attempt {} (process {}): {}, {}{}",
                    step.id,
                    a.number,
                    a.process,
                    a.outcome,
                    duration(millis_between(a.started_at, end)),
                    a.error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    if step.attempts.is_empty()
        && step.kind != "manual"
        && let (Some(from), Some(to)) = (step.started_at, step.finished_at)
    {
        let fill = match step.status.as_str() {
            "failed" => "#dc2626",
            "succeeded" => "#86efac",
            _ => "#cbd5e1",
        };
        bar(
            svg,
            axis.x(from),
            axis.x(to),
            y,
            fill,
            "group",
            &format!("{}: {}", step.id, step.status),
        );
    }
    for b in &step.batches {
        let x = axis.x(b.started_at);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#1e3a8a" stroke-width="2"><title>batch {} of {}: {}</title></line>"##,
            y + 1.0,
            y + ROW - 1.0,
            b.number,
            b.of,
            escape(&b.items.join(", "))
        );
        if let Some(g) = &b.gate {
            let end = g.ended_at.unwrap_or(e.generated_at);
            let fill = match g.held {
                Some(true) => "#a78bfa",
                Some(false) => "#dc2626",
                None => "#c4b5fd",
            };
            bar(
                svg,
                axis.x(g.started_at),
                axis.x(end),
                y,
                fill,
                "gate",
                &format!(
                    "gate after batch {}: {}",
                    b.number,
                    g.detail.as_deref().unwrap_or("not finished")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round_and_cover_the_span() {
        assert_eq!(tick_step(3_000, 6), 500);
        assert_eq!(tick_step(60_000, 6), 10_000);
        assert_eq!(tick_step(3_600_000, 6), 600_000);
        assert_eq!(tick_step(100, 6), 100);
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<b a="1">'x' & y</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;x&#39; &amp; y&lt;/b&gt;"
        );
    }
}
