//! The Playbook sessions page: a project's sessions, most recently changed first (the 50
//! latest), each with its playbook, state, the step it waits at and how far it got — what
//! `playbook_sessions` lists.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::{Value, context};

use super::session::Signed;
use super::{ConsoleError, render};
use crate::domain::Role;
use crate::http::HttpState;
use crate::knowledge::projects;

/// The most sessions listed.
const LATEST: u32 = 50;

pub async fn page(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let sessions = state.app.playbooks.sessions(&found, LATEST).await?;
    let rows: Vec<Value> = sessions
        .iter()
        .map(|session| {
            context! {
                id => session.session_id.to_string(),
                playbook => session.playbook_name.clone().unwrap_or_else(|| session.playbook_id.clone()),
                version => session.playbook_version.clone(),
                status => serde_json::to_value(session.status).ok().and_then(|v| v.as_str().map(str::to_owned)),
                current_step => session.current_step.clone(),
                steps_done => session.steps_done,
                steps_total => session.steps_total,
                updated_at => session.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            }
        })
        .collect();
    render(
        "playbooks.html",
        &signed,
        Some(&found),
        context! { title => format!("Playbook sessions · {}", found.name), sessions => rows },
    )
}
