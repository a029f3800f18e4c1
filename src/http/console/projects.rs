//! The Projects page (`/console`): the projects the signed-in key reaches, each with how many
//! memories, snapshots, plans and playbook sessions it holds (one count query per project, run
//! inside that project's scope as any read of its rows is).

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::http::HttpState;
use crate::knowledge::projects;

pub async fn page(
    State(state): State<HttpState>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::list(&state.store, &signed.identity).await?;
    let mut rows = Vec::with_capacity(found.len());
    for project in &found {
        let (_, counts) =
            projects::counts(&state.store, &signed.identity, &project.id.to_string()).await?;
        rows.push(context! {
            id => project.id.to_string(),
            name => project.name.clone(),
            org => project.org.clone(),
            memories => counts.memories,
            snapshots => counts.snapshots,
            plans => counts.plans,
            playbook_sessions => counts.playbook_sessions,
            created_at => project.created_at.format("%Y-%m-%d").to_string(),
        });
    }
    render(
        "projects.html",
        &signed,
        None,
        context! { title => "Projects", projects => rows },
    )
}
