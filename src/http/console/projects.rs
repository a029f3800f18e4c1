//! The Projects page (`/console`): the projects the signed-in key reaches, with how many
//! memories each holds.

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::http::HttpState;
use crate::knowledge::{memories, projects};

pub async fn page(
    State(state): State<HttpState>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::list(&state.store, &signed.identity).await?;
    let mut rows = Vec::with_capacity(found.len());
    for project in &found {
        let count =
            memories::count(&state.store, &signed.identity, &project.id.to_string()).await?;
        rows.push(context! {
            id => project.id.to_string(),
            name => project.name.clone(),
            org => project.org.clone(),
            memories => count,
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
