//! Which steps are sure to have finished before another: reachability backwards through the
//! step-level dependencies of one list of steps (`steps:` or `finally:`), indexed once so that
//! every `steps.X` reference of a large runbook is answered without rescanning the list.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::spec::Step;

/// The step-level dependency graph of one list of steps, ready for ancestor queries.
pub struct Ancestry<'r> {
    /// Every step's dependency ids (as [`Step::deps`] names them), one step after another,
    /// with the position of the step each id names when it is in this list.
    deps: Vec<(&'r str, Option<usize>)>,
    /// Where each step's dependencies start in `deps` (one more entry than steps).
    starts: Vec<usize>,
    /// The position of each id; the first one when an id is written twice.
    index: HashMap<&'r str, usize>,
    /// Whether the dependencies (self-dependencies included) form no cycle.
    acyclic: bool,
    /// A topological rank per step, when ids are unique and there is no cycle. A step ranked
    /// below the ancestor sought cannot lead back to it, so the search leaves it out.
    rank: Option<Vec<usize>>,
}

impl<'r> Ancestry<'r> {
    /// Indexes one list of steps.
    pub fn new(steps: &'r [Arc<Step>]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            index.entry(step.id.as_str()).or_insert(i);
        }
        let mut deps = Vec::with_capacity(steps.len() * 2);
        let mut starts = Vec::with_capacity(steps.len() + 1);
        for (i, step) in steps.iter().enumerate() {
            starts.push(deps.len());
            // `Step::deps`, without a list per step.
            match &step.needs {
                Some(needs) => deps.extend(
                    needs
                        .iter()
                        .map(|(id, _)| (id.as_str(), index.get(id.as_str()).copied())),
                ),
                None if i > 0 => {
                    let before = steps[i - 1].id.as_str();
                    deps.push((before, index.get(before).copied()));
                }
                None => {}
            }
        }
        starts.push(deps.len());
        let mut ancestry = Self {
            deps,
            starts,
            index,
            acyclic: false,
            rank: None,
        };
        let rank = ancestry.topological_rank();
        ancestry.acyclic = rank.is_some();
        if ancestry.index.len() == steps.len() {
            ancestry.rank = rank;
        }
        ancestry
    }

    /// The position of the first step with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Whether no step waits, directly or not, for itself: then there is no cycle to name.
    pub fn is_acyclic(&self) -> bool {
        self.acyclic
    }

    fn deps_of(&self, step: usize) -> &[(&'r str, Option<usize>)] {
        &self.deps[self.starts[step]..self.starts[step + 1]]
    }

    /// Whether `ancestor` is reachable backwards from `step` through the dependencies.
    pub fn is_ancestor(&self, ancestor: &str, step: &str) -> bool {
        let Some(&start) = self.index.get(step) else {
            return false;
        };
        // Ranks order every step after its dependencies, and only one step is named
        // `ancestor`: a step ranked below it has no path to it.
        let floor = self
            .rank
            .as_ref()
            .and_then(|rank| self.index.get(ancestor).map(|&a| (rank, rank[a])));
        let mut seen: HashSet<usize> = HashSet::new();
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            for &(dep, position) in self.deps_of(i) {
                if dep == ancestor {
                    return true;
                }
                let Some(d) = position else { continue };
                if floor.is_some_and(|(rank, floor)| rank[d] < floor) {
                    continue;
                }
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        false
    }

    /// A rank per step that is higher than the ranks of all its dependencies (Kahn's
    /// algorithm); `None` when the dependencies form a cycle.
    fn topological_rank(&self) -> Option<Vec<usize>> {
        let steps = self.starts.len() - 1;
        // Who waits for each step, flat like `deps`: counted, then filled in.
        let mut waiting = vec![0usize; steps];
        let mut offsets = vec![0usize; steps + 1];
        for (i, waits) in waiting.iter_mut().enumerate() {
            for &(_, position) in self.deps_of(i) {
                if let Some(d) = position {
                    *waits += 1;
                    offsets[d + 1] += 1;
                }
            }
        }
        for i in 0..steps {
            offsets[i + 1] += offsets[i];
        }
        let mut filled = offsets.clone();
        let mut dependents = vec![0usize; offsets[steps]];
        for i in 0..steps {
            for &(_, position) in self.deps_of(i) {
                if let Some(d) = position {
                    dependents[filled[d]] = i;
                    filled[d] += 1;
                }
            }
        }
        let mut ready: Vec<usize> = (0..steps).filter(|&i| waiting[i] == 0).collect();
        let mut rank = vec![0usize; steps];
        let mut next = 0;
        while let Some(i) = ready.pop() {
            rank[i] = next;
            next += 1;
            for &d in &dependents[offsets[i]..offsets[i + 1]] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        (next == steps).then_some(rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SourceFile, from_source};

    fn steps(yaml: &str) -> Vec<Arc<Step>> {
        let text = format!("name: t\nsteps:\n{yaml}");
        match from_source(&SourceFile::new("t.yaml", text)) {
            Ok(runbook) => runbook.steps,
            Err(diagnostics) => panic!("invalid test runbook: {diagnostics:?}"),
        }
    }

    #[test]
    fn a_step_without_needs_follows_the_one_before_it() {
        let steps = steps("  - { id: a, run: x }\n  - { id: b, run: x }\n  - { id: c, run: x }\n");
        let ancestry = Ancestry::new(&steps);
        assert!(ancestry.is_ancestor("a", "c"));
        assert!(!ancestry.is_ancestor("c", "a"));
    }

    #[test]
    fn parallel_branches_are_not_ancestors_of_each_other() {
        let steps = steps(concat!(
            "  - { id: a, needs: [], run: x }\n",
            "  - { id: b, needs: [a], run: x }\n",
            "  - { id: c, needs: [a], run: x }\n",
            "  - { id: d, needs: [b, c], run: x }\n",
        ));
        let ancestry = Ancestry::new(&steps);
        assert!(ancestry.rank.is_some());
        assert!(ancestry.is_acyclic());
        assert!(ancestry.is_ancestor("a", "d"));
        assert!(ancestry.is_ancestor("c", "d"));
        assert!(!ancestry.is_ancestor("b", "c"));
        assert!(!ancestry.is_ancestor("c", "b"));
        assert!(!ancestry.is_ancestor("d", "a"));
    }

    #[test]
    fn a_far_ancestor_is_found_past_the_pruned_branches() {
        // A chain s0 → s199, and beside each link a step t<i> that only the chain leads to.
        let yaml: String = std::iter::once("  - { id: s0, needs: [], run: x }\n".to_owned())
            .chain((1..200).flat_map(|i| {
                let before = i - 1;
                [
                    format!("  - {{ id: s{i}, needs: [s{before}], run: x }}\n"),
                    format!("  - {{ id: t{i}, needs: [s{before}], run: x }}\n"),
                ]
            }))
            .collect();
        let steps = steps(&yaml);
        let ancestry = Ancestry::new(&steps);
        assert!(ancestry.is_ancestor("s0", "s199"));
        assert!(ancestry.is_ancestor("s3", "t199"));
        assert!(!ancestry.is_ancestor("t3", "s199"));
    }

    #[test]
    fn steps_in_a_cycle_reach_each_other() {
        let steps = steps(concat!(
            "  - { id: a, needs: [c], run: x }\n",
            "  - { id: b, needs: [a], run: x }\n",
            "  - { id: c, needs: [b], run: x }\n",
            "  - { id: d, needs: [], run: x }\n",
        ));
        let ancestry = Ancestry::new(&steps);
        assert!(ancestry.rank.is_none());
        assert!(!ancestry.is_acyclic());
        assert!(ancestry.is_ancestor("b", "a"));
        assert!(ancestry.is_ancestor("a", "a"));
        assert!(!ancestry.is_ancestor("d", "a"));
    }
}
