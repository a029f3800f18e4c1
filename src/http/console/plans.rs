//! The Plans pages: a project's plans, newest first, with how far their tasks got (one grouped
//! store query), and one plan's page — its task graph drawn as SVG on the server (see
//! [`super::plan_graph`]), its tasks, and what `plan_report` reports about it.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::{Value, context};

use super::plan_graph::{self, NODE_HEIGHT, NODE_WIDTH};
use super::session::Signed;
use super::{ConsoleError, render};
use crate::domain::Role;
use crate::http::HttpState;
use crate::knowledge::projects;
use crate::plans;
use crate::store::TaskStatus;

/// The most plans listed.
const LATEST: u32 = 100;
/// The longest task title drawn inside a box (the full title is in the box's tooltip and the
/// table below the graph).
const LABEL_CHARS: usize = 22;

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub async fn list(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let listed = state
        .store
        .list_plans(found.id, LATEST)
        .await
        .map_err(|e| ConsoleError::internal("listing plans", e))?;
    let rows: Vec<Value> = listed
        .iter()
        .map(|plan| {
            context! {
                id => plan.plan_id.to_string(),
                title => plan.title.clone(),
                created_by => plan.created_by.clone(),
                created_at => time(&plan.created_at),
                tasks => plan.tasks,
                completed => plan.completed,
                failed => plan.failed,
            }
        })
        .collect();
    render(
        "plans.html",
        &signed,
        Some(&found),
        context! { title => format!("Plans · {}", found.name), plans => rows },
    )
}

fn label(title: &str) -> String {
    if title.chars().count() <= LABEL_CHARS {
        return title.to_owned();
    }
    let mut short: String = title.chars().take(LABEL_CHARS - 1).collect();
    short.push('…');
    short
}

pub async fn page(
    State(state): State<HttpState>,
    Path((project, plan_id)): Path<(String, String)>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let plan = plans::plan(&state.app, found.id, &plan_id).await?;
    let report = plans::report::report(&state.app, found.id, &plan_id).await?;
    let layout = plan_graph::layout(&plan);
    let nodes: Vec<Value> = layout
        .nodes
        .iter()
        .map(|node| {
            context! {
                id => node.id.clone(),
                title => node.title.clone(),
                label => label(&node.title),
                status => node.status,
                x => node.x,
                y => node.y,
                text_x => node.x + 8,
                id_y => node.y + 18,
                title_y => node.y + 38,
            }
        })
        .collect();
    let edges: Vec<Value> = layout
        .edges
        .iter()
        .map(|e| {
            context! { from => e.from.clone(), to => e.to.clone(), x1 => e.x1, y1 => e.y1, x2 => e.x2, y2 => e.y2 }
        })
        .collect();
    let tasks: Vec<Value> = report
        .tasks
        .iter()
        .zip(&plan.tasks)
        .map(|(line, task)| {
            context! {
                id => line.id.clone(),
                title => line.title.clone(),
                status => line.status.as_str(),
                depends_on => task.spec.depends_on.join(", "),
                attempts => line.attempts,
                failures => line.failures,
                // `+ 0.0` turns a negative zero into zero, so a task never run shows `0`.
                seconds => format!("{:.0}", line.seconds_in_progress.max(0.0) + 0.0),
                last_reason => line.last_reason.clone(),
                outputs => line.outputs.iter().map(|o| o.path.clone()).collect::<Vec<_>>(),
            }
        })
        .collect();
    let legend: Vec<Value> = TaskStatus::ALL
        .into_iter()
        .map(|status| {
            let count = plan.tasks.iter().filter(|t| t.status == status).count();
            context! { status => status.as_str(), count }
        })
        .collect();
    let guardrail = |lines: &[plans::report::GuardrailLine]| -> Vec<Value> {
        lines
            .iter()
            .map(|line| {
                context! {
                    id => line.id.clone(),
                    at => time(&line.at),
                    actor => line.actor.clone(),
                    detail => line.detail.to_string(),
                }
            })
            .collect()
    };
    let events: Vec<Value> = report
        .events
        .iter()
        .map(|entry| {
            context! {
                at => time(&entry.created_at),
                actor => entry.actor.clone(),
                action => entry.action.clone(),
                target => entry.target_id.clone(),
            }
        })
        .collect();
    render(
        "plan.html",
        &signed,
        Some(&found),
        context! {
            title => format!("{} · Plans · {}", plan.title, found.name),
            plan => context! {
                id => plan.plan_id.to_string(),
                title => plan.title.clone(),
                created_by => plan.created_by.clone(),
                created_at => time(&plan.created_at),
            },
            graph => context! {
                width => layout.width,
                height => layout.height,
                node_width => NODE_WIDTH,
                node_height => NODE_HEIGHT,
                nodes,
                edges,
            },
            legend,
            tasks,
            success_rate => report.success_rate.map(|rate| format!("{:.0} %", rate * 100.0)),
            blocks => guardrail(&report.guardrail_blocks),
            overrides => guardrail(&report.guardrail_overrides),
            events,
        },
    )
}
