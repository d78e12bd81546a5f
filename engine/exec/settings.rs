//! Settings a runbook may write as templates over params (`timeout`, `interval`,
//! `retry.attempts`, `max_parallel`, `batch`, `max_failures`), rendered for one node before
//! it runs, with errors that name the field and say what was expected.

use std::time::Duration;

use super::fanout::Policy;
use super::render::Scope;
use super::step::Failure;
use crate::spec::{Batch, Count, Runbook, Setting, Step, duration};

/// A step's limits, rendered for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The step's own `timeout` (for a poll: the whole poll's deadline).
    pub timeout: Option<Duration>,
    /// `defaults.timeout`.
    pub default_timeout: Option<Duration>,
    /// The wait between polls.
    pub interval: Duration,
    /// Attempts, the first included (`retry.attempts`, else `defaults.retry`, else 1).
    pub attempts: u32,
}

impl Limits {
    /// A step's limits as written, with every template rendered in `scope`.
    pub fn of(step: &Step, runbook: &Runbook, scope: &Scope) -> Result<Self, Failure> {
        let timeout = step
            .timeout
            .as_ref()
            .map(|s| render_duration(s, scope, "timeout"))
            .transpose()?;
        let interval = step
            .poll
            .as_ref()
            .and_then(|p| p.interval.as_ref())
            .map(|s| render_duration(s, scope, "interval"))
            .transpose()?
            .or(runbook.defaults.interval)
            .unwrap_or(crate::spec::Poll::DEFAULT_INTERVAL);
        let attempts = match step.retry.as_ref().or(runbook.defaults.retry.as_ref()) {
            Some(retry) => render_number(&retry.attempts, scope, "retry.attempts")?,
            None => 1,
        };
        Ok(Self {
            timeout,
            default_timeout: runbook.defaults.timeout,
            interval,
            attempts: attempts.max(1),
        })
    }

    /// The same limits within `remaining` (what is left of an enclosing call's `timeout`).
    #[must_use]
    pub fn within(mut self, remaining: Duration) -> Self {
        self.timeout = Some(self.timeout.map_or(remaining, |t| t.min(remaining)));
        self.default_timeout = Some(self.default_timeout.map_or(remaining, |t| t.min(remaining)));
        self
    }

    /// The limit of one attempt: the step's `timeout`, else `defaults.timeout`.
    pub fn per_attempt(&self) -> Option<Duration> {
        self.timeout.or(self.default_timeout)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: None,
            default_timeout: None,
            interval: crate::spec::Poll::DEFAULT_INTERVAL,
            attempts: 1,
        }
    }
}

/// A fan-out's policy for `items` items: `max_parallel`, `batch`, `max_failures` rendered in
/// `scope`; `allow_failure` lets every item run whatever fails.
pub fn policy(step: &Step, items: usize, scope: &Scope) -> Result<Policy, Failure> {
    let fan = &step.fan;
    let window = fan
        .max_parallel
        .as_ref()
        .map(|s| render_count(s, scope, "max_parallel", false))
        .transpose()?
        .map_or(usize::MAX, |c| c.of(items, false).max(1));
    let batches = match &fan.batch {
        Some(setting) => render_batch(setting, scope)?
            .into_iter()
            .map(|c| c.of(items, false).max(1))
            .collect(),
        None => Vec::new(),
    };
    let budget = if step.allow_failure {
        usize::MAX
    } else {
        fan.max_failures
            .as_ref()
            .map(|s| render_count(s, scope, "max_failures", true))
            .transpose()?
            .map_or(0, |c| c.of(items, true))
    };
    Ok(Policy {
        batches,
        window,
        budget,
        gated: fan.gate.is_some(),
    })
}

/// A duration, rendered when it is a template.
pub fn render_duration(
    setting: &Setting<Duration>,
    scope: &Scope,
    field: &str,
) -> Result<Duration, Failure> {
    match setting {
        Setting::Fixed(d) => Ok(*d),
        Setting::Template(t) => {
            let text = scope.text(t, field)?;
            duration::parse(text.trim()).map_err(|e| {
                Failure::new(format!(
                    "`{field}` rendered to `{text}`, which is not a duration ({e}); write e.g. `30s`, `5m`"
                ))
            })
        }
    }
}

/// `retry.attempts`, rendered when it is a template.
pub fn render_attempts(setting: &Setting<u32>, scope: &Scope) -> Result<u32, Failure> {
    render_number(setting, scope, "retry.attempts")
}

fn render_number(setting: &Setting<u32>, scope: &Scope, field: &str) -> Result<u32, Failure> {
    match setting {
        Setting::Fixed(n) => Ok(*n),
        Setting::Template(t) => {
            let text = scope.text(t, field)?;
            match text.trim().parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Failure::new(format!(
                    "`{field}` rendered to `{text}`, which is not a whole number of at least 1"
                ))),
            }
        }
    }
}

/// A count of items (`3`) or a percentage (`25%`), rendered when it is a template.
pub fn render_count(
    setting: &Setting<Count>,
    scope: &Scope,
    field: &str,
    zero_ok: bool,
) -> Result<Count, Failure> {
    match setting {
        Setting::Fixed(c) => Ok(*c),
        Setting::Template(t) => {
            let text = scope.text(t, field)?;
            parse_count(&text, zero_ok).ok_or_else(|| {
                Failure::new(format!(
                    "`{field}` rendered to `{text}`, which is neither a number of items nor a percentage (`25%`)"
                ))
            })
        }
    }
}

fn render_batch(batch: &Batch, scope: &Scope) -> Result<Vec<Count>, Failure> {
    match batch {
        Batch::Sizes(sizes) => sizes
            .iter()
            .map(|s| render_count(s, scope, "batch", false))
            .collect(),
        Batch::Template(t) => {
            let value = scope.typed(t, "batch")?;
            let parts: Vec<String> = match value {
                serde_json::Value::Array(items) => items.iter().map(plain).collect(),
                other => vec![plain(&other)],
            };
            parts
                .iter()
                .map(|p| parse_count(p, false))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Failure::new(format!(
                        "`batch` rendered to `{}`, which is not batch sizes (a number, `25%`, or a list of them)",
                        parts.join(", ")
                    ))
                })
        }
    }
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `3` or `25%` (1–100); `0` only when `zero_ok`.
pub fn parse_count(text: &str, zero_ok: bool) -> Option<Count> {
    let text = text.trim();
    if let Some(p) = text.strip_suffix('%') {
        return match p.trim().parse::<u32>() {
            Ok(p) if (1..=100).contains(&p) => Some(Count::Percent(p)),
            Ok(0) if zero_ok => Some(Count::Items(0)),
            _ => None,
        };
    }
    match text.parse::<usize>() {
        Ok(0) if zero_ok => Some(Count::Items(0)),
        Ok(n) if n > 0 => Some(Count::Items(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages_of_items() {
        assert_eq!(parse_count("3", false), Some(Count::Items(3)));
        assert_eq!(parse_count(" 25% ", false), Some(Count::Percent(25)));
        assert_eq!(parse_count("150%", false), None);
        assert_eq!(parse_count("0", false), None);
        assert_eq!(parse_count("0", true), Some(Count::Items(0)));
        assert_eq!(Count::Percent(50).of(5, false), 3, "a batch rounds up");
        assert_eq!(Count::Percent(10).of(5, true), 0, "a budget rounds down");
        assert_eq!(
            Count::Percent(1).of(5, false),
            1,
            "at least one item per batch"
        );
    }
}
