//! The Guardrails page: what a project's guardrails hold (its stack, the last session's
//! summary, open issues, recent decisions and the sharp edges for its stack, its own and the
//! library's), read through [`crate::guardrails::overview`] with the signed-in key's read access.
//! The page changes nothing: issues are resolved and decisions taken through `remember`.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::{Value, context};

use super::session::Signed;
use super::{ConsoleError, render};
use crate::guardrails::edges::EdgeSource;
use crate::guardrails::overview;
use crate::http::HttpState;

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub async fn page(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let app = &state.app;
    let found =
        overview::overview(&app.knowledge, &app.library, &signed.identity, &project).await?;
    let issues: Vec<Value> = found
        .open_issues
        .iter()
        .map(|issue| {
            context! {
                id => issue.id.to_string(),
                description => issue.description.clone(),
                opened_at => time(&issue.opened_at),
            }
        })
        .collect();
    let decisions: Vec<Value> = found
        .decisions
        .iter()
        .map(|decision| {
            context! {
                id => decision.id.to_string(),
                what => decision.what.clone(),
                why => decision.why.clone(),
                at => time(&decision.at),
            }
        })
        .collect();
    let edges: Vec<Value> = found
        .sharp_edges
        .iter()
        .map(|view| {
            let edge = &view.edge;
            context! {
                memory_id => view.memory_id.to_string(),
                own => view.source == EdgeSource::Project,
                skill => edge.skill.clone(),
                id => edge.id.clone(),
                summary => edge.summary.clone(),
                severity => edge.severity.map(|s| s.as_str()),
                situation => edge.situation.clone(),
                why => edge.why.clone(),
                solution => edge.solution.clone(),
                symptoms => edge.symptoms.clone(),
            }
        })
        .collect();
    let session = found.last_session.as_ref().map(|session| {
        context! {
            id => session.id.to_string(),
            summary => session.summary.clone(),
            validated => session.validated.clone(),
            at => time(&session.at),
        }
    });
    render(
        "guardrails.html",
        &signed,
        Some(&found.project),
        context! {
            title => format!("Guardrails · {}", found.project.name),
            stack => found.stack,
            session,
            issues,
            decisions,
            edges,
            edges_left_off => found.edges_left_off,
        },
    )
}
