//! How long a run of a runbook will take, from the history of its past runs in the same store:
//! per step (matched by id, in runs of the runbook with the same name) the median and p90 of its
//! successful durations, then the run laid out on the graph as the scheduler would run it —
//! dependencies, `finally` after the procedure, the run's `max_parallel`, and a fan-out's own
//! `max_parallel` and `batch` sizes when they are written as numbers. Manual steps are not
//! counted: the time people take is shown apart. A reader of the journal; it never runs
//! anything.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use petgraph::graph::NodeIndex;

use crate::exec::{SettledSteps, StepStatus};
use crate::plan::{NodeId, Phase, Plan, Role};
use crate::spec::duration::Human;
use crate::spec::{Batch, Setting, StepKind};
use crate::state::timeline::Timeline;
use crate::state::{Store, StoreError};

/// The successful durations of each step in past runs of one runbook.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Past runs that got at least one step through.
    pub runs: usize,
    /// Each step's successful durations, by full id.
    pub durations: HashMap<String, Vec<Duration>>,
    /// How long each manual step waited for a person, by full id.
    pub waits: HashMap<String, Vec<Duration>>,
}

impl History {
    /// Reads the runs of the runbook `name` kept in `store`, leaving out the run `except` (a run
    /// being estimated while it runs) and runs that cannot be read.
    pub fn read(store: &dyn Store, name: &str, except: Option<&str>) -> Result<Self, StoreError> {
        let mut history = Self::default();
        for listed in store.list()? {
            let Ok(summary) = &listed.summary else {
                continue;
            };
            if summary.runbook != name || Some(listed.run_id.as_str()) == except {
                continue;
            }
            let Ok(timeline) = store.timeline(&listed.run_id) else {
                continue;
            };
            history.add(&timeline);
        }
        Ok(history)
    }

    /// Takes in one past run.
    pub fn add(&mut self, timeline: &Timeline) {
        let mut counted = false;
        for step in &timeline.steps {
            if step.status != StepStatus::Succeeded {
                continue;
            }
            let manual_wait = step
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("approved"))
                || timeline.approvals.iter().any(|a| a.id == step.id);
            if manual_wait {
                if let (Some(from), Some(to)) = (
                    step.attempts.first().map(|a| a.started_at),
                    step.finished_at,
                ) {
                    self.waits
                        .entry(step.id.to_string())
                        .or_default()
                        .push(between(from, to));
                }
                continue;
            }
            let Some(duration) = step.duration else {
                continue;
            };
            self.durations
                .entry(step.id.to_string())
                .or_default()
                .push(duration);
            counted = true;
        }
        if counted {
            self.runs += 1;
        }
    }

    /// The median and p90 of a step's successful durations.
    pub fn of(&self, id: &str) -> Option<Spread> {
        self.durations.get(id).and_then(|d| Spread::of(d))
    }
}

/// The median and 90th percentile of some durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// The median.
    pub median: Duration,
    /// The 90th percentile (nearest rank).
    pub p90: Duration,
}

impl Spread {
    /// The spread of `durations`; `None` when there are none.
    pub fn of(durations: &[Duration]) -> Option<Self> {
        let mut sorted = durations.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        // Nearest rank: the smallest value with at least 90% of the values at or below it.
        let rank = (n * 9).div_ceil(10).max(1);
        Some(Self {
            median,
            p90: sorted[rank - 1],
        })
    }
}

/// The estimate of a run's duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// Past runs the history comes from.
    pub runs: usize,
    /// With each step taking its median.
    pub median: Duration,
    /// With each step taking its p90.
    pub p90: Duration,
    /// Steps (a fan-out's items named once, by their step) without a successful past run.
    pub without_history: Vec<String>,
    /// Manual steps, with the median time a person took at each (not in the estimate).
    pub manual: Vec<(String, Option<Duration>)>,
}

impl Estimate {
    /// The estimate of a run of `plan` at most `max_parallel` steps at once, without the steps
    /// `left_out` (`--only`, `--from`): they take no time and need no history.
    pub fn of(
        plan: &Plan,
        history: &History,
        max_parallel: usize,
        left_out: &SettledSteps,
    ) -> Self {
        let mut without_history: Vec<String> = Vec::new();
        let mut manual = Vec::new();
        let mut median = vec![Duration::ZERO; plan.graph.node_count()];
        let mut p90 = median.clone();
        for &index in &plan.order {
            let node = &plan.graph[index];
            if matches!(node.role, Role::CallEntry { .. })
                || (node.phase == Phase::Main && left_out.contains_key(&node.id))
            {
                continue;
            }
            if matches!(node.step.kind, StepKind::Manual(_)) {
                let waited = history
                    .waits
                    .get(node.id.as_str())
                    .and_then(|w| Spread::of(w))
                    .map(|s| s.median);
                manual.push((node.id.to_string(), waited));
                continue;
            }
            if let Some(spread) = history.of(node.id.as_str()) {
                median[index.index()] = spread.median;
                p90[index.index()] = spread.p90;
            } else {
                let named = node.id.fan_out().unwrap_or_else(|| node.id.clone());
                let named = named.to_string();
                if !without_history.contains(&named) {
                    without_history.push(named);
                }
            }
        }
        let layout = Layout::of(plan, max_parallel);
        Self {
            runs: history.runs,
            median: layout.makespan(&median),
            p90: layout.makespan(&p90),
            without_history,
            manual,
        }
    }
}

impl Estimate {
    /// The estimate for machines (`run --dry-run --format json`), durations in milliseconds.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "runs": self.runs,
            "median_ms": millis(self.median),
            "p90_ms": millis(self.p90),
            "without_history": self.without_history,
            "manual": self.manual.iter().map(|(id, waited)| serde_json::json!({
                "step": id,
                "waited_median_ms": waited.map(millis),
            })).collect::<Vec<_>>(),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs == 0 {
            write!(
                f,
                "estimated duration: unknown (no past run of this runbook)"
            )?;
        } else {
            write!(
                f,
                "estimated duration: {} (p90 {}) from {} past run{}",
                Human(self.median),
                Human(self.p90),
                self.runs,
                if self.runs == 1 { "" } else { "s" }
            )?;
            if !self.without_history.is_empty() {
                write!(f, "; no history for: {}", self.without_history.join(", "))?;
            }
        }
        if !self.manual.is_empty() {
            let steps: Vec<String> = self
                .manual
                .iter()
                .map(|(id, waited)| match waited {
                    Some(w) => format!("{id} (people took {} median)", Human(*w)),
                    None => id.clone(),
                })
                .collect();
            write!(
                f,
                "\n  not counted, waiting for people: {}",
                steps.join(", ")
            )?;
        }
        Ok(())
    }
}

/// What is left of a running run, as `show` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// The time left (`None`: no past run of the runbook to tell from).
    pub left: Option<Duration>,
    /// The past runs the medians come from.
    pub runs: usize,
}

/// How much of a run is left: the run laid out again with its finished steps taking no time
/// and its running steps only what their median has left.
pub fn remaining(
    plan: &Plan,
    history: &History,
    timeline: &Timeline,
    max_parallel: usize,
    now: Timestamp,
) -> Option<Duration> {
    if history.runs == 0 {
        return None;
    }
    let mut durations = vec![Duration::ZERO; plan.graph.node_count()];
    for &index in &plan.order {
        let node = &plan.graph[index];
        if matches!(node.role, Role::CallEntry { .. })
            || matches!(node.step.kind, StepKind::Manual(_))
        {
            continue;
        }
        let expected = history
            .of(node.id.as_str())
            .map_or(Duration::ZERO, |s| s.median);
        durations[index.index()] = match timeline.step(node.id.as_str()) {
            Some(step) if matches!(step.status, StepStatus::Succeeded | StepStatus::Skipped) => {
                Duration::ZERO
            }
            Some(step) if step.in_flight => {
                let since = step.attempts.last().map_or(now, |a| a.started_at);
                expected.saturating_sub(between(since, now))
            }
            _ => expected,
        };
    }
    Some(Layout::of(plan, max_parallel).makespan(&durations))
}

fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// The shape the scheduler walks: dependencies, phases, and fan-out windows and batches.
struct Layout<'p> {
    plan: &'p Plan,
    cap: usize,
    /// For each node that is an item of a fan-out known when planning: its fan-out (an index
    /// into `fans`) and its batch.
    item: Vec<Option<(usize, usize)>>,
    /// Each fan-out's window (items at once).
    fans: Vec<usize>,
}

impl<'p> Layout<'p> {
    fn of(plan: &'p Plan, cap: usize) -> Self {
        let mut groups: Vec<(NodeId, Vec<(usize, NodeIndex)>)> = Vec::new();
        for index in plan.graph.node_indices() {
            let node = &plan.graph[index];
            let (
                Role::Item {
                    index: position, ..
                },
                Some(fan),
            ) = (&node.role, node.id.fan_out())
            else {
                continue;
            };
            match groups.iter_mut().find(|(id, _)| *id == fan) {
                Some((_, items)) => items.push((*position, index)),
                None => groups.push((fan, vec![(*position, index)])),
            }
        }
        let mut item = vec![None; plan.graph.node_count()];
        let mut fans = Vec::new();
        for (number, (_, mut items)) in groups.into_iter().enumerate() {
            items.sort_unstable();
            let total = items.len();
            let step = &plan.graph[items[0].1].step;
            let window = match &step.fan.max_parallel {
                Some(Setting::Fixed(count)) => count.of(total, false).max(1),
                _ => usize::MAX,
            };
            let sizes: Vec<usize> = match &step.fan.batch {
                Some(Batch::Sizes(sizes)) => sizes
                    .iter()
                    .map(|s| match s {
                        Setting::Fixed(count) => count.of(total, false).max(1),
                        Setting::Template(_) => total.max(1),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (slot, (_, index)) in items.into_iter().enumerate() {
                item[index.index()] = Some((number, batch_of(slot, &sizes)));
            }
            fans.push(window);
        }
        Self {
            plan,
            cap: cap.max(1),
            item,
            fans,
        }
    }

    /// How long the whole takes when each node takes `durations[node]`, nodes starting in plan
    /// order as soon as their dependencies, the run's cap, their fan-out's window and their
    /// batch allow (`finally` once the procedure has ended).
    fn makespan(&self, durations: &[Duration]) -> Duration {
        let plan = self.plan;
        let count = plan.graph.node_count();
        let mut started = vec![false; count];
        let mut done = vec![false; count];
        let mut running: Vec<(Duration, NodeIndex)> = Vec::new();
        let mut fan_running = vec![0usize; self.fans.len()];
        // Items not yet done, per fan-out and batch.
        let mut open: Vec<Vec<usize>> = vec![Vec::new(); self.fans.len()];
        for &(fan, batch) in self.item.iter().flatten() {
            if open[fan].len() <= batch {
                open[fan].resize(batch + 1, 0);
            }
            open[fan][batch] += 1;
        }
        let mut main_left = plan
            .graph
            .node_indices()
            .filter(|&n| plan.graph[n].phase == Phase::Main)
            .count();
        let mut now = Duration::ZERO;
        loop {
            for &index in &plan.order {
                if running.len() >= self.cap {
                    break;
                }
                let i = index.index();
                if started[i]
                    || (plan.graph[index].phase == Phase::Finally && main_left > 0)
                    || !plan.dependencies(index).all(|d| done[d.index()])
                {
                    continue;
                }
                if let Some((fan, batch)) = self.item[i] {
                    let earlier_open = open[fan][..batch].iter().any(|&n| n > 0);
                    if fan_running[fan] >= self.fans[fan] || earlier_open {
                        continue;
                    }
                    fan_running[fan] += 1;
                }
                started[i] = true;
                running.push((now + durations[i], index));
            }
            let Some(next) = running.iter().map(|(end, _)| *end).min() else {
                break;
            };
            now = next;
            running.retain(|&(end, index)| {
                if end > now {
                    return true;
                }
                let i = index.index();
                done[i] = true;
                if plan.graph[index].phase == Phase::Main {
                    main_left -= 1;
                }
                if let Some((fan, batch)) = self.item[i] {
                    fan_running[fan] -= 1;
                    open[fan][batch] -= 1;
                }
                false
            });
        }
        now
    }
}

/// The batch (0-based) of the item at `slot` when batches have `sizes` (the last repeating;
/// none: one batch).
fn batch_of(slot: usize, sizes: &[usize]) -> usize {
    let Some(&last) = sizes.last() else {
        return 0;
    };
    let mut start = 0;
    for (batch, &size) in sizes.iter().enumerate() {
        if slot < start + size {
            return batch;
        }
        start += size;
    }
    sizes.len() + (slot - start) / last.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_median_and_p90_of_durations() {
        let spread = Spread::of(&[ms(10), ms(30), ms(20)]).expect("three values");
        assert_eq!((spread.median, spread.p90), (ms(20), ms(30)));
        let spread = Spread::of(&[ms(10), ms(20)]).expect("two values");
        assert_eq!(spread.median, ms(15));
        let ten: Vec<Duration> = (1..=10).map(|n| ms(n * 10)).collect();
        assert_eq!(Spread::of(&ten).map(|s| s.p90), Some(ms(90)));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn batches_repeat_their_last_size() {
        let sizes = [1, 2];
        let batches: Vec<usize> = (0..7).map(|slot| batch_of(slot, &sizes)).collect();
        assert_eq!(batches, [0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(batch_of(5, &[]), 0);
    }

    #[test]
    fn the_estimate_reads_as_the_issue_asks() {
        let estimate = Estimate {
            runs: 6,
            median: Duration::from_mins(14),
            p90: Duration::from_mins(22),
            without_history: vec!["restore_members".to_owned(), "verify".to_owned()],
            manual: vec![("approve".to_owned(), Some(Duration::from_mins(3)))],
        };
        assert_eq!(
            estimate.to_string(),
            "estimated duration: 14m (p90 22m) from 6 past runs; no history for: restore_members, verify\n  not counted, waiting for people: approve (people took 3m median)"
        );
    }
}
