//! Fan-out policy: which items of a fan-out (`for_each`, `on:` a list, a fanned-out call) may
//! start now. Items run in batches (a batch ends before the next begins), at most `window` at
//! once within a batch, with a failure budget across batches; between batches a gate may have to
//! hold. The scheduler walks the items like every other node; this decides when each is admitted
//! and when the fan-out as a whole has ended.

use std::ops::Range;

use super::event::StepStatus;
use crate::spec::{Count, Setting, Step};

/// How a fan-out goes: batch sizes, window and failure budget, all resolved to item counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Successive batch sizes; the last one repeats. Empty: one batch of every item.
    pub batches: Vec<usize>,
    /// At most this many items at once (within a batch).
    pub window: usize,
    /// Failed items tolerated; one more fails the fan-out. `usize::MAX`: every item runs
    /// whatever fails (`allow_failure`).
    pub budget: usize,
    /// Whether a gate must hold after each batch.
    pub gated: bool,
}

impl Policy {
    /// What a step states as written: its `max_parallel`, and `allow_failure` (every item
    /// runs whatever fails).
    /// (Templates among them are rendered by `settings::policy` when the fan-out opens.)
    pub fn of_step(step: &Step) -> Self {
        let window = match &step.fan.max_parallel {
            Some(Setting::Fixed(Count::Items(n))) => (*n).max(1),
            _ => usize::MAX,
        };
        Self {
            batches: Vec::new(),
            window,
            budget: if step.allow_failure { usize::MAX } else { 0 },
            gated: step.fan.gate.is_some(),
        }
    }

    /// Every item at once, no budget, no gate.
    pub fn unbounded() -> Self {
        Self {
            batches: Vec::new(),
            window: usize::MAX,
            budget: 0,
            gated: false,
        }
    }
}

/// Where one item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemState {
    /// Its dependencies are not all done yet.
    Waiting,
    /// It could start, when its batch and the window allow.
    Offered,
    /// Admitted: started, or about to.
    Admitted,
    /// Ended with this status.
    Ended(StepStatus),
}

/// What the fan-out needs next after an item ended or a gate was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing new: items are still running.
    Wait,
    /// Items can be admitted (call [`FanOut::admit`]).
    Admit,
    /// The batch (0-based) has ended and its gate must hold before anything else starts.
    Gate(usize),
    /// The fan-out has ended with this status.
    Ended(StepStatus),
}

/// One fan-out's progress.
#[derive(Debug, Clone)]
pub struct FanOut {
    policy: Policy,
    items: Vec<ItemState>,
    batches: Vec<Range<usize>>,
    /// The batch items are admitted from.
    batch: usize,
    /// Whether the current batch's gate is being checked.
    gating: bool,
    active: usize,
    failed: usize,
    /// No item or batch starts any more (budget exceeded, or the run is stopping).
    stopped: bool,
    /// It failed without an item failing (its policy could not be rendered).
    broken: bool,
    ended: Option<StepStatus>,
}

impl FanOut {
    /// A fan-out of `count` items.
    pub fn new(count: usize, policy: Policy) -> Self {
        let batches = batch_ranges(count, &policy.batches);
        Self {
            items: vec![ItemState::Waiting; count],
            batches,
            batch: 0,
            gating: false,
            active: 0,
            failed: 0,
            stopped: false,
            broken: false,
            ended: None,
            policy,
        }
    }

    /// Its policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The batches, as ranges of item positions.
    pub fn batches(&self) -> &[Range<usize>] {
        &self.batches
    }

    /// The batch an item belongs to (0-based).
    pub fn batch_of(&self, item: usize) -> usize {
        self.batches
            .iter()
            .position(|b| b.contains(&item))
            .unwrap_or(0)
    }

    /// The batch being run (0-based).
    pub fn current_batch(&self) -> usize {
        self.batch
    }

    /// How many items failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The status it ended with, once it has.
    pub fn ended(&self) -> Option<StepStatus> {
        self.ended
    }

    /// Whether any item has been admitted or has ended.
    pub fn started(&self) -> bool {
        self.items
            .iter()
            .any(|s| matches!(s, ItemState::Admitted | ItemState::Ended(_)))
    }

    /// An item's dependencies are done: it may start when its batch and the window allow.
    pub fn offer(&mut self, item: usize) {
        if self.items[item] == ItemState::Waiting {
            self.items[item] = ItemState::Offered;
        }
    }

    /// The items that start now, in list order (each is marked admitted).
    pub fn admit(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        if self.stopped || self.gating || self.ended.is_some() {
            return out;
        }
        let Some(range) = self.batches.get(self.batch).cloned() else {
            return out;
        };
        for i in range {
            if self.active >= self.policy.window {
                break;
            }
            if self.items[i] == ItemState::Offered {
                self.items[i] = ItemState::Admitted;
                self.active += 1;
                out.push(i);
            }
        }
        out
    }

    /// Sets the policy (batch sizes and budget depend on values known only when the fan-out's
    /// group is entered). Only before any item was admitted.
    pub fn set_policy(&mut self, policy: Policy) {
        self.batches = batch_ranges(self.items.len(), &policy.batches);
        self.policy = policy;
    }

    /// An admitted item did not start after all (its scope stopped first): it is no longer
    /// running, and can never start.
    pub fn withdraw(&mut self, item: usize) -> Next {
        if self.items[item] == ItemState::Admitted {
            self.active -= 1;
            self.items[item] = ItemState::Offered;
        }
        self.progress()
    }

    /// Whether new items may no longer start (over budget, a gate failed, or stopped).
    pub fn is_stopped(&self) -> bool {
        self.stopped || self.ended.is_some()
    }

    /// What follows from the items' states now (for a fan-out just opened).
    pub fn check(&mut self) -> Next {
        self.progress()
    }

    /// Starts over for a retry of the group around it: items that ended well stay done, the
    /// others wait again; counts, batches and gates begin anew.
    pub fn restart(&mut self, good: &[bool]) {
        for (state, good) in self.items.iter_mut().zip(good) {
            *state = if *good { *state } else { ItemState::Waiting };
        }
        // Batches whose items all ended well are behind it (their gates held then).
        self.batch = self
            .batches
            .iter()
            .position(|b| {
                self.items[b.clone()]
                    .iter()
                    .any(|s| !matches!(s, ItemState::Ended(_)))
            })
            .unwrap_or(self.batches.len());
        self.gating = false;
        self.active = 0;
        self.failed = 0;
        self.stopped = false;
        self.broken = false;
        self.ended = None;
    }

    /// An item ended without being admitted (settled by an earlier process, or skipped with
    /// its group): it counts as done, never as running.
    pub fn settle(&mut self, item: usize, status: StepStatus) -> Next {
        if self.items[item] == ItemState::Admitted {
            self.active -= 1;
        }
        self.items[item] = ItemState::Ended(status);
        self.after_item(status)
    }

    /// An admitted item ended.
    pub fn finish(&mut self, item: usize, status: StepStatus) -> Next {
        self.settle(item, status)
    }

    /// An item failed before it ended (a group item whose `finally` still runs): the failure
    /// counts against the budget now, so that no further item starts past it.
    pub fn count_failure_early(&mut self) -> bool {
        self.failed += 1;
        self.check_budget()
    }

    fn after_item(&mut self, status: StepStatus) -> Next {
        if status == StepStatus::Failed {
            self.failed += 1;
            self.check_budget();
        }
        self.progress()
    }

    /// A failure that was already counted early ends its item now.
    pub fn finish_counted(&mut self, item: usize, status: StepStatus) -> Next {
        if self.items[item] == ItemState::Admitted {
            self.active -= 1;
        }
        self.items[item] = ItemState::Ended(status);
        self.progress()
    }

    /// Whether the budget is exceeded (then nothing new starts).
    fn check_budget(&mut self) -> bool {
        if self.over_budget() {
            self.stopped = true;
        }
        self.stopped
    }

    /// Whether the failures so far exceed the budget (or the fan-out could not run at all).
    pub fn over_budget(&self) -> bool {
        self.broken || self.failed > self.policy.budget
    }

    /// The fan-out cannot run at all: it ends failed once nothing runs.
    pub fn fail(&mut self) -> Next {
        self.broken = true;
        self.stopped = true;
        self.progress()
    }

    /// No new item or batch starts: the run (or the enclosing group) is stopping. Once the
    /// running items end, the fan-out ends `pending` unless every item had ended.
    pub fn stop(&mut self) -> Next {
        self.stopped = true;
        self.progress()
    }

    /// The gate after the current batch held (`true`) or did not.
    pub fn gate_decided(&mut self, held: bool) -> Next {
        self.gating = false;
        if !held {
            self.stopped = true;
            return self.end(StepStatus::Failed);
        }
        self.batch += 1;
        self.progress()
    }

    /// What follows from the items' states now.
    fn progress(&mut self) -> Next {
        if let Some(status) = self.ended {
            return Next::Ended(status);
        }
        if self.gating {
            return Next::Wait;
        }
        if self.stopped {
            if self.active > 0 {
                return Next::Wait;
            }
            // Over budget: failed. Stopped from outside (the run is stopping): what did not
            // run stays pending, for a resume to run.
            let status = if self.over_budget() {
                StepStatus::Failed
            } else if self.items.iter().all(|s| matches!(s, ItemState::Ended(_))) {
                self.final_status()
            } else {
                StepStatus::Pending
            };
            return self.end(status);
        }
        let Some(range) = self.batches.get(self.batch).cloned() else {
            return self.end(self.final_status());
        };
        let batch_over = self.items[range]
            .iter()
            .all(|s| matches!(s, ItemState::Ended(_)));
        if !batch_over {
            let room = self.active < self.policy.window;
            let offered =
                self.items[self.batches[self.batch].clone()].contains(&ItemState::Offered);
            return if room && offered {
                Next::Admit
            } else {
                Next::Wait
            };
        }
        if self.policy.gated {
            self.gating = true;
            return Next::Gate(self.batch);
        }
        self.batch += 1;
        self.progress()
    }

    fn final_status(&self) -> StepStatus {
        let all_skipped = !self.items.is_empty()
            && self
                .items
                .iter()
                .all(|s| *s == ItemState::Ended(StepStatus::Skipped));
        if self.failed > 0 && self.policy.budget == usize::MAX {
            // `allow_failure`: every item ran; the step still failed (the run goes on).
            StepStatus::Failed
        } else if all_skipped {
            StepStatus::Skipped
        } else {
            StepStatus::Succeeded
        }
    }

    fn end(&mut self, status: StepStatus) -> Next {
        self.ended = Some(status);
        Next::Ended(status)
    }
}

/// Splits `count` items into consecutive batches of the given sizes (the last size repeats).
fn batch_ranges(count: usize, sizes: &[usize]) -> Vec<Range<usize>> {
    if count == 0 {
        return Vec::new();
    }
    if sizes.is_empty() {
        return std::iter::once(0..count).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < count {
        let size = sizes[i.min(sizes.len() - 1)].max(1);
        let end = (start + size).min(count);
        out.push(start..end);
        start = end;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(batches: &[usize], window: usize, budget: usize, gated: bool) -> Policy {
        Policy {
            batches: batches.to_vec(),
            window,
            budget,
            gated,
        }
    }

    fn offer_all(f: &mut FanOut) {
        for i in 0..f.len() {
            f.offer(i);
        }
    }

    #[test]
    fn batch_sizes_repeat_their_last_entry() {
        assert_eq!(batch_ranges(5, &[1, 2]), [0..1, 1..3, 3..5]);
        let whole = batch_ranges(3, &[]);
        assert_eq!((whole.len(), whole[0].clone()), (1, 0..3));
        assert_eq!(batch_ranges(0, &[2]), Vec::<Range<usize>>::new());
        let capped = batch_ranges(4, &[10]);
        assert_eq!((capped.len(), capped[0].clone()), (1, 0..4));
    }

    #[test]
    fn the_window_caps_items_at_once() {
        let mut f = FanOut::new(5, policy(&[], 2, 0, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0, 1]);
        assert_eq!(f.admit(), Vec::<usize>::new());
        assert_eq!(f.finish(1, StepStatus::Succeeded), Next::Admit);
        assert_eq!(f.admit(), [2]);
        for i in [0, 2] {
            f.finish(i, StepStatus::Succeeded);
        }
        assert_eq!(f.admit(), [3, 4]);
        f.finish(3, StepStatus::Succeeded);
        assert_eq!(
            f.finish(4, StepStatus::Succeeded),
            Next::Ended(StepStatus::Succeeded)
        );
    }

    #[test]
    fn a_batch_ends_and_its_gate_holds_before_the_next_starts() {
        let mut f = FanOut::new(3, policy(&[1, 2], usize::MAX, 0, true));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0]);
        assert_eq!(f.finish(0, StepStatus::Succeeded), Next::Gate(0));
        assert_eq!(
            f.admit(),
            Vec::<usize>::new(),
            "nothing starts while gating"
        );
        assert_eq!(f.gate_decided(true), Next::Admit);
        assert_eq!(f.admit(), [1, 2]);
        f.finish(1, StepStatus::Succeeded);
        assert_eq!(f.finish(2, StepStatus::Succeeded), Next::Gate(1));
        assert_eq!(f.gate_decided(true), Next::Ended(StepStatus::Succeeded));
    }

    #[test]
    fn a_gate_that_does_not_hold_fails_the_fan_out_and_stops_the_rest() {
        let mut f = FanOut::new(4, policy(&[2], usize::MAX, 0, true));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0, 1]);
        f.finish(0, StepStatus::Succeeded);
        assert_eq!(f.finish(1, StepStatus::Succeeded), Next::Gate(0));
        assert_eq!(f.gate_decided(false), Next::Ended(StepStatus::Failed));
        assert_eq!(f.admit(), Vec::<usize>::new());
    }

    #[test]
    fn failures_within_the_budget_go_on_and_one_more_stops_new_items() {
        let mut f = FanOut::new(5, policy(&[], 1, 1, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0]);
        assert_eq!(
            f.finish(0, StepStatus::Failed),
            Next::Admit,
            "one is tolerated"
        );
        assert_eq!(f.admit(), [1]);
        assert_eq!(
            f.finish(1, StepStatus::Failed),
            Next::Ended(StepStatus::Failed),
            "the second failure exceeds the budget"
        );
        assert_eq!(f.admit(), Vec::<usize>::new());
    }

    #[test]
    fn ending_within_the_budget_is_success_with_the_failures_kept() {
        let mut f = FanOut::new(3, policy(&[], usize::MAX, 1, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0, 1, 2]);
        f.finish(0, StepStatus::Succeeded);
        f.finish(1, StepStatus::Failed);
        assert_eq!(
            f.finish(2, StepStatus::Succeeded),
            Next::Ended(StepStatus::Succeeded)
        );
        assert_eq!(f.failed(), 1);
    }

    #[test]
    fn running_items_finish_after_the_budget_is_exceeded() {
        let mut f = FanOut::new(3, policy(&[], usize::MAX, 0, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0, 1, 2]);
        assert_eq!(f.finish(0, StepStatus::Failed), Next::Wait);
        assert_eq!(f.finish(1, StepStatus::Succeeded), Next::Wait);
        assert_eq!(
            f.finish(2, StepStatus::Succeeded),
            Next::Ended(StepStatus::Failed)
        );
    }

    #[test]
    fn settled_items_count_as_done_without_running() {
        let mut f = FanOut::new(3, policy(&[1], 1, 0, false));
        f.settle(0, StepStatus::Succeeded);
        f.settle(1, StepStatus::Succeeded);
        offer_all(&mut f);
        assert_eq!(f.admit(), [2]);
        assert_eq!(
            f.finish(2, StepStatus::Succeeded),
            Next::Ended(StepStatus::Succeeded)
        );
    }

    #[test]
    fn allow_failure_runs_every_item_and_still_reports_the_failure() {
        let mut f = FanOut::new(2, policy(&[], 1, usize::MAX, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0]);
        f.finish(0, StepStatus::Failed);
        assert_eq!(f.admit(), [1]);
        assert_eq!(
            f.finish(1, StepStatus::Succeeded),
            Next::Ended(StepStatus::Failed)
        );
    }

    #[test]
    fn a_fan_out_stopped_from_outside_leaves_what_did_not_start_pending() {
        let mut f = FanOut::new(3, policy(&[], 1, 0, false));
        offer_all(&mut f);
        assert_eq!(f.admit(), [0]);
        assert_eq!(f.stop(), Next::Wait);
        assert_eq!(
            f.finish(0, StepStatus::Succeeded),
            Next::Ended(StepStatus::Pending)
        );
    }

    #[test]
    fn an_empty_fan_out_ends_at_once() {
        let mut g = FanOut::new(0, Policy::unbounded());
        assert_eq!(g.admit(), Vec::<usize>::new());
        assert_eq!(g.check(), Next::Ended(StepStatus::Succeeded));
    }
}
