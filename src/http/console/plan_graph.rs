//! A plan's task graph laid out for an SVG drawn on the server: longest-path layering (a task
//! sits one column right of its deepest dependency), tasks in plan order within a column, and
//! one edge per dependency. Plans are checked acyclic when stored; a dependency that names no
//! task (or a cycle, were one ever stored) is laid out as if absent rather than looping.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::Plan;

pub const NODE_WIDTH: i64 = 180;
pub const NODE_HEIGHT: i64 = 48;
const COLUMN_GAP: i64 = 56;
const ROW_GAP: i64 = 16;
const MARGIN: i64 = 8;

/// One task's box.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: String,
    pub title: String,
    pub status: &'static str,
    pub layer: usize,
    pub x: i64,
    pub y: i64,
}

/// One dependency, from the dependency's right edge to the dependent's left edge.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: i64,
    pub height: i64,
}

/// The layer of every task (index in `plan.tasks`): 0 without dependencies, else one more than
/// its deepest dependency.
pub fn layers(plan: &Plan) -> Vec<usize> {
    let index: HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| (task.spec.id.as_str(), i))
        .collect();
    let mut layer: Vec<Option<usize>> = vec![None; plan.tasks.len()];
    // Iterative depth-first walk; `on_path` cuts a cycle instead of recursing forever.
    let mut on_path = vec![false; plan.tasks.len()];
    for start in 0..plan.tasks.len() {
        let mut stack = vec![(start, false)];
        while let Some((at, expanded)) = stack.pop() {
            if layer[at].is_some() {
                continue;
            }
            let deps: Vec<usize> = plan.tasks[at]
                .spec
                .depends_on
                .iter()
                .filter_map(|dep| index.get(dep.as_str()).copied())
                .filter(|&dep| dep != at)
                .collect();
            if expanded {
                on_path[at] = false;
                let deepest = deps.iter().filter_map(|&d| layer[d]).max();
                layer[at] = Some(deepest.map_or(0, |d| d + 1));
                continue;
            }
            on_path[at] = true;
            stack.push((at, true));
            for dep in deps {
                if layer[dep].is_none() && !on_path[dep] {
                    stack.push((dep, false));
                }
            }
        }
    }
    layer.into_iter().map(|l| l.unwrap_or(0)).collect()
}

/// Positions every task and dependency: columns by layer, left to right.
pub fn layout(plan: &Plan) -> Layout {
    let layer_of = layers(plan);
    let columns = layer_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows_used = vec![0i64; columns];
    let mut nodes = Vec::with_capacity(plan.tasks.len());
    let mut at: HashMap<&str, (i64, i64)> = HashMap::new();
    for (task, &layer) in plan.tasks.iter().zip(&layer_of) {
        let row = rows_used[layer];
        rows_used[layer] += 1;
        let x = MARGIN + layer as i64 * (NODE_WIDTH + COLUMN_GAP);
        let y = MARGIN + row * (NODE_HEIGHT + ROW_GAP);
        at.insert(task.spec.id.as_str(), (x, y));
        nodes.push(Node {
            id: task.spec.id.clone(),
            title: task.spec.title.clone(),
            status: task.status.as_str(),
            layer,
            x,
            y,
        });
    }
    let mut edges = Vec::new();
    for task in &plan.tasks {
        let Some(&(x2, y2)) = at.get(task.spec.id.as_str()) else {
            continue;
        };
        for dep in &task.spec.depends_on {
            if let Some(&(x1, y1)) = at.get(dep.as_str()) {
                edges.push(Edge {
                    from: dep.clone(),
                    to: task.spec.id.clone(),
                    x1: x1 + NODE_WIDTH,
                    y1: y1 + NODE_HEIGHT / 2,
                    x2,
                    y2: y2 + NODE_HEIGHT / 2,
                });
            }
        }
    }
    let rows = rows_used.iter().copied().max().unwrap_or(0);
    Layout {
        nodes,
        edges,
        width: 2 * MARGIN + span(columns as i64, NODE_WIDTH, COLUMN_GAP),
        height: 2 * MARGIN + span(rows, NODE_HEIGHT, ROW_GAP),
    }
}

/// The length of `count` boxes of `size` with `gap` between them.
fn span(count: i64, size: i64, gap: i64) -> i64 {
    count * size + (count - 1).max(0) * gap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::TaskSpec;
    use crate::store::{PlanTask, TaskStatus};

    fn plan(tasks: &[(&str, &[&str])]) -> Plan {
        let tasks = tasks
            .iter()
            .enumerate()
            .map(|(i, (id, deps))| {
                let mut spec: TaskSpec = serde_json::from_value(serde_json::json!({
                    "id": id, "title": format!("Task {id}"),
                    "depends_on": deps,
                }))
                .expect("a task spec");
                spec.id = (*id).to_owned();
                PlanTask {
                    task_id: uuid::Uuid::new_v4(),
                    plan_id: uuid::Uuid::nil(),
                    spec,
                    status: TaskStatus::Pending,
                    attempt: 0,
                    attempts: vec![],
                    outputs: vec![],
                    blockers: vec![],
                    note: None,
                    deadline_at: None,
                    updated_at: chrono::Utc::now(),
                    position: i as i32,
                }
            })
            .collect();
        Plan {
            plan_id: uuid::Uuid::nil(),
            project_id: uuid::Uuid::nil(),
            title: "p".into(),
            created_by: "t".into(),
            created_at: chrono::Utc::now(),
            tasks,
        }
    }

    #[test]
    fn a_task_sits_one_layer_after_its_deepest_dependency() {
        let plan = plan(&[
            ("d", &["b", "c"]),
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["a", "b"]),
            ("e", &[]),
        ]);
        assert_eq!(layers(&plan), vec![3, 0, 1, 2, 0]);
    }

    #[test]
    fn the_layout_has_one_node_per_task_and_one_edge_per_dependency() {
        let plan = plan(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        let layout = layout(&plan);
        assert_eq!(layout.nodes.len(), 4);
        assert_eq!(layout.edges.len(), 4);
        let b = &layout.nodes[1];
        let c = &layout.nodes[2];
        assert_eq!(b.x, c.x, "same layer, same column");
        assert!(c.y > b.y, "plan order within a column");
        assert!(
            layout
                .nodes
                .iter()
                .all(|n| n.x + NODE_WIDTH <= layout.width)
        );
        assert!(
            layout
                .nodes
                .iter()
                .all(|n| n.y + NODE_HEIGHT <= layout.height)
        );
    }

    #[test]
    fn a_cycle_or_an_unknown_dependency_does_not_loop() {
        let plan = plan(&[("a", &["b"]), ("b", &["a", "zzz"])]);
        let found = layers(&plan);
        assert_eq!(found.len(), 2);
    }
}
