//! A plan's dependency graph, checked before anything is stored: task ids unique, every
//! dependency naming a task of the plan, and no cycle (every elementary cycle is listed, as
//! `a → b → a`, so one answer shows everything to fix).

use std::collections::{HashMap, HashSet};

use crate::domain::plan::TaskSpec;

/// The most cycles one answer lists.
const MAX_CYCLES: usize = 50;
/// The most steps the cycle search takes (a graph dense with cycles stops here, listing those
/// found so far).
const MAX_STEPS: usize = 200_000;

/// What is wrong with a plan's graph, each list in the tasks' order.
#[derive(Debug, Default, PartialEq)]
pub struct GraphProblems {
    pub duplicate_ids: Vec<String>,
    /// `(task, dependency)` pairs whose dependency names no task.
    pub unknown_dependencies: Vec<(String, String)>,
    /// Each cycle as its ids, the first repeated at the end.
    pub cycles: Vec<Vec<String>>,
    /// Whether the search stopped before finding every cycle.
    pub cycles_truncated: bool,
}

impl GraphProblems {
    pub fn is_empty(&self) -> bool {
        self.duplicate_ids.is_empty()
            && self.unknown_dependencies.is_empty()
            && self.cycles.is_empty()
    }

    /// One message saying every problem and what to change.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if !self.duplicate_ids.is_empty() {
            let ids: Vec<String> = self
                .duplicate_ids
                .iter()
                .map(|id| format!("`{id}`"))
                .collect();
            parts.push(format!(
                "task ids repeat: {} (give each task its own `id`)",
                ids.join(", ")
            ));
        }
        if !self.unknown_dependencies.is_empty() {
            let pairs: Vec<String> = self
                .unknown_dependencies
                .iter()
                .map(|(task, dependency)| format!("`{task}` depends on `{dependency}`"))
                .collect();
            parts.push(format!(
                "dependencies name no task of the plan: {} (use the `id` of a task in `tasks`)",
                pairs.join(", ")
            ));
        }
        if !self.cycles.is_empty() {
            let cycles: Vec<String> = self.cycles.iter().map(|cycle| cycle.join(" → ")).collect();
            let more = if self.cycles_truncated {
                " (and more not listed)"
            } else {
                ""
            };
            parts.push(format!(
                "the dependencies form {} {}{more}: {} (remove a `depends_on` entry from each)",
                self.cycles.len(),
                if self.cycles.len() == 1 {
                    "cycle"
                } else {
                    "cycles"
                },
                cycles.join("; ")
            ));
        }
        format!("the plan was not stored: {}", parts.join("; "))
    }
}

/// Checks a plan's tasks.
pub fn check(tasks: &[TaskSpec]) -> GraphProblems {
    let mut problems = GraphProblems::default();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (at, task) in tasks.iter().enumerate() {
        if index.insert(task.id.as_str(), at).is_some()
            && !problems.duplicate_ids.contains(&task.id)
        {
            problems.duplicate_ids.push(task.id.clone());
        }
    }
    for task in tasks {
        for dependency in &task.depends_on {
            if !index.contains_key(dependency.as_str()) {
                problems
                    .unknown_dependencies
                    .push((task.id.clone(), dependency.clone()));
            }
        }
    }
    if !problems.duplicate_ids.is_empty() {
        // Edges of repeated ids are ambiguous: say what to fix first.
        return problems;
    }
    let edges: Vec<Vec<usize>> = tasks
        .iter()
        .map(|task| {
            let mut to: Vec<usize> = task
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        })
        .collect();
    let (cycles, truncated) = elementary_cycles(&edges);
    problems.cycles = cycles
        .into_iter()
        .map(|cycle| {
            let mut ids: Vec<String> = cycle.iter().map(|&at| tasks[at].id.clone()).collect();
            ids.push(tasks[cycle[0]].id.clone());
            ids
        })
        .collect();
    problems.cycles_truncated = truncated;
    problems
}

/// Every elementary cycle of the graph, each found once from its lowest node (a depth-first
/// search from each node that only visits higher ones), up to the caps.
fn elementary_cycles(edges: &[Vec<usize>]) -> (Vec<Vec<usize>>, bool) {
    let mut cycles = Vec::new();
    let mut steps = 0usize;
    for start in 0..edges.len() {
        let mut path = vec![start];
        let mut on_path: HashSet<usize> = HashSet::from([start]);
        // For each node on the path, the next edge to try.
        let mut next = vec![0usize];
        while let Some(&node) = path.last() {
            steps += 1;
            if steps > MAX_STEPS || cycles.len() >= MAX_CYCLES {
                return (cycles, true);
            }
            let at = next.last_mut().expect("one cursor per node");
            let Some(&to) = edges[node].get(*at) else {
                on_path.remove(&node);
                path.pop();
                next.pop();
                continue;
            };
            *at += 1;
            if to == start {
                cycles.push(path.clone());
            } else if to > start && !on_path.contains(&to) {
                path.push(to);
                on_path.insert(to);
                next.push(0);
            }
        }
    }
    (cycles, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, depends_on: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            title: id.into(),
            description: None,
            skill: None,
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            priority: 0,
            checks: None,
            timeout_seconds: None,
        }
    }

    #[test]
    fn a_graph_without_cycles_has_no_problems() {
        let tasks = [task("a", &[]), task("b", &["a"]), task("c", &["a", "b"])];
        assert!(check(&tasks).is_empty());
    }

    #[test]
    fn every_cycle_is_listed_once_from_its_first_task() {
        let tasks = [
            task("a", &["b"]),
            task("b", &["a", "c"]),
            task("c", &["a"]),
            task("d", &["d"]),
        ];
        let cycles: Vec<String> = check(&tasks).cycles.iter().map(|c| c.join(" → ")).collect();
        assert_eq!(cycles, ["a → b → a", "a → b → c → a", "d → d"]);
    }

    #[test]
    fn repeated_ids_and_unknown_dependencies_are_named() {
        let tasks = [task("a", &["x"]), task("a", &[]), task("b", &["y", "a"])];
        let problems = check(&tasks);
        assert_eq!(problems.duplicate_ids, ["a"]);
        assert_eq!(
            problems.unknown_dependencies,
            [("a".into(), "x".into()), ("b".into(), "y".into())]
        );
    }
}
