//! Properties of the plan stage, on generated runbooks.
//!
//! - Any acyclic `needs` structure compiles, and `plan.order` runs every graph node exactly once,
//!   each after everything it waits for; every step waits for what its `needs` (or, without
//!   `needs`, the step written before it) names, fan-outs included.
//! - A cycle injected into such a runbook is always rejected with one `dependency cycle`
//!   diagnostic that names exactly the steps caught in it, located at one of their `needs`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use petgraph::algo::has_path_connecting;
use petgraph::graph::NodeIndex;
use proptest::prelude::*;
use runbook::plan::{Plan, PlanError};
use runbook::spec::SourceFile;

/// One generated step: `s<i>`.
#[derive(Debug, Clone)]
struct GenStep {
    /// `None`: no `needs` key (the step waits for the one before it). `Some`: `needs: [...]`,
    /// indices of earlier steps.
    needs: Option<Vec<usize>>,
    /// `Some(k)`: `for_each` over a literal list of `k` items (`k` may be 0).
    fan_out: Option<usize>,
}

impl GenStep {
    /// The steps this one waits for, as the spec defines it.
    fn deps(&self, index: usize) -> Vec<usize> {
        match &self.needs {
            Some(needs) => needs.clone(),
            None if index > 0 => vec![index - 1],
            None => Vec::new(),
        }
    }
}

fn name(index: usize) -> String {
    format!("s{index}")
}

/// The runbook's YAML.
fn render(steps: &[GenStep]) -> String {
    let mut text = String::from("name: gen\nsteps:\n");
    for (i, step) in steps.iter().enumerate() {
        // Writing to a `String` cannot fail.
        let _ = writeln!(text, "  - id: {}", name(i));
        if let Some(needs) = &step.needs {
            let names: Vec<String> = needs.iter().map(|&n| name(n)).collect();
            let _ = writeln!(text, "    needs: [{}]", names.join(", "));
        }
        if let Some(items) = step.fan_out {
            let items: Vec<String> = (0..items).map(|k| format!("item{k}")).collect();
            let _ = writeln!(text, "    for_each: [{}]", items.join(", "));
            let _ = writeln!(text, "    run: echo {} {{{{ item }}}}", name(i));
        } else {
            let _ = writeln!(text, "    run: echo {}", name(i));
        }
    }
    text
}

/// Reads and compiles a generated runbook; the spec stage must accept it.
fn compile(text: &str) -> Result<Plan, PlanError> {
    let file = SourceFile::new("gen.yaml", text);
    let runbook = runbook::spec::from_source(&file).unwrap_or_else(|diagnostics| {
        panic!(
            "the generated runbook is well-formed, but:\n{}\n{text}",
            runbook::diagnostic::render_all(&diagnostics, false)
        )
    });
    runbook::plan::compile(runbook, None)
}

/// Steps whose `needs`, when present, name a random subset of the steps before them.
fn acyclic(max_steps: usize) -> impl Strategy<Value = Vec<GenStep>> {
    (1..=max_steps).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                let needs = prop_oneof![
                    Just(None),
                    proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i).prop_map(Some),
                ];
                let fan_out = prop_oneof![3 => Just(None), 1 => (0usize..=3).prop_map(Some)];
                (needs, fan_out).prop_map(|(needs, fan_out)| GenStep { needs, fan_out })
            })
            .collect::<Vec<_>>()
    })
}

/// An acyclic runbook (at least two steps) and a chain `c0 < c1 < … < ck` of its steps to close
/// into a cycle.
fn with_cycle() -> impl Strategy<Value = (Vec<GenStep>, Vec<usize>)> {
    acyclic(12)
        .prop_filter("a cycle needs two steps", |steps| steps.len() >= 2)
        .prop_flat_map(|steps| {
            let n = steps.len();
            let chain = proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 2..=n.min(5));
            (Just(steps), chain)
        })
}

/// `c1` needs `c0`, `c2` needs `c1`, …, and `c0` needs the last: one cycle through the chain.
fn close_cycle(steps: &mut [GenStep], chain: &[usize]) {
    for pair in chain.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let needs = steps[to].needs.get_or_insert_with(Vec::new);
        if !needs.contains(&from) {
            needs.push(from);
        }
    }
    let (first, last) = (chain[0], chain[chain.len() - 1]);
    steps[first].needs.get_or_insert_with(Vec::new).push(last);
}

/// The steps on a cycle through `start`: those it reaches that also reach it.
fn cycle_through(steps: &[GenStep], start: usize) -> BTreeSet<usize> {
    let reach = |from: usize| {
        // Edges run from a dependency to its dependent.
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(i) = todo.pop() {
            for (j, step) in steps.iter().enumerate() {
                if step.deps(j).contains(&i) && seen.insert(j) {
                    todo.push(j);
                }
            }
        }
        seen
    };
    let forward = reach(start);
    forward
        .iter()
        .copied()
        .filter(|&j| reach(j).contains(&start))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn acyclic_runbooks_compile_to_a_valid_order(steps in acyclic(16)) {
        let text = render(&steps);
        let plan = match compile(&text) {
            Ok(plan) => plan,
            Err(e) => panic!("an acyclic runbook was rejected: {e:?}\n{text}"),
        };
        let graph = &plan.graph;

        // One node per step, one per item of a fan-out (an empty fan-out keeps one node).
        let expected: usize = steps.iter().map(|s| s.fan_out.unwrap_or(1).max(1)).sum();
        prop_assert_eq!(graph.node_count(), expected, "{}", text);

        // Every node exactly once, each after all it waits for.
        prop_assert_eq!(plan.order.len(), graph.node_count());
        let mut position = vec![usize::MAX; graph.node_count()];
        for (at, node) in plan.order.iter().enumerate() {
            prop_assert_eq!(position[node.index()], usize::MAX, "{:?} twice in the order", node);
            position[node.index()] = at;
        }
        for edge in graph.raw_edges() {
            prop_assert!(
                position[edge.source().index()] < position[edge.target().index()],
                "{} runs before {}, which it waits for\n{}",
                graph[edge.target()].id,
                graph[edge.source()].id,
                text
            );
        }

        // Every node of a step comes after every node of each step it depends on.
        let mut nodes_of: HashMap<&str, Vec<NodeIndex>> = HashMap::new();
        for n in graph.node_indices() {
            nodes_of.entry(graph[n].local_id.as_str()).or_default().push(n);
        }
        for (i, step) in steps.iter().enumerate() {
            for dep in step.deps(i) {
                for &from in nodes_of.get(name(dep).as_str()).into_iter().flatten() {
                    for &to in nodes_of.get(name(i).as_str()).into_iter().flatten() {
                        prop_assert!(
                            has_path_connecting(graph, from, to, None),
                            "{} does not wait for {}\n{}",
                            graph[to].id,
                            graph[from].id,
                            text
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_injected_cycle_is_reported_with_every_step_in_it(
        (mut steps, chain) in with_cycle()
    ) {
        close_cycle(&mut steps, &chain);
        let text = render(&steps);
        let diagnostics = match compile(&text) {
            Ok(_) => panic!("a runbook with a cycle through {chain:?} compiled\n{text}"),
            Err(PlanError::Invalid(diagnostics)) => diagnostics,
            Err(other) => panic!("unexpected error {other:?}\n{text}"),
        };
        prop_assert_eq!(diagnostics.len(), 1, "{:#?}\n{}", diagnostics, text);
        let d = &diagnostics[0];
        let ring = d.message.strip_prefix("dependency cycle: ");
        prop_assert!(ring.is_some(), "not a cycle diagnostic: {}\n{}", d.message, text);

        // `a → b → c → a`: the steps named, the first repeated at the end.
        let named: Vec<&str> = ring.unwrap_or_default().split(" → ").collect();
        prop_assert_eq!(named.first(), named.last(), "{}", d.message);
        let named: BTreeSet<&str> = named.iter().copied().collect();
        let in_cycle: Vec<String> = cycle_through(&steps, chain[0]).into_iter().map(name).collect();
        for c in &chain {
            prop_assert!(named.contains(name(*c).as_str()), "`{}` missing from: {}\n{}", name(*c), d.message, text);
        }
        prop_assert_eq!(
            named,
            in_cycle.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            "{}\n{}",
            d.message,
            text
        );

        // It points at a `needs` entry naming one of the steps in the cycle.
        let at = &text[d.at.span.offset..d.at.span.end()];
        prop_assert!(in_cycle.iter().any(|s| s == at), "points at `{}`: {}\n{}", at, d.message, text);
        let line = text[..d.at.span.offset].rsplit('\n').next().unwrap_or_default();
        prop_assert!(line.trim_start().starts_with("needs: ["), "not in a `needs`: {}", line);
    }
}
