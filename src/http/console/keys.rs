//! The Keys page (admin role): a project's keys with their last use, a form that creates one
//! (its text shown once, on the page that answers the form, never in a URL), and revoking.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::session::{Posted, Signed};
use super::{ConsoleError, render};
use crate::domain::ApiKey;
use crate::http::HttpState;
use crate::knowledge::keys;

const TOOL: &str = "console";

fn row(key: &ApiKey) -> Value {
    let when = |time: Option<chrono::DateTime<chrono::Utc>>| {
        time.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
    };
    context! {
        id => key.id.to_string(),
        prefix => key.prefix.clone(),
        role => key.role.as_str(),
        label => key.label.clone(),
        created_at => key.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        last_used_at => when(key.last_used_at),
        revoked_at => when(key.revoked_at),
    }
}

async fn show(
    state: &HttpState,
    signed: &Signed,
    project: &str,
    created: Option<Value>,
) -> Result<Response, ConsoleError> {
    let (found, listed) = keys::list(&state.store, &signed.identity, project).await?;
    let rows: Vec<Value> = listed.iter().map(row).collect();
    render(
        "keys.html",
        signed,
        Some(&found),
        context! { title => format!("Keys · {}", found.name), keys => rows, created },
    )
}

pub async fn page(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    show(&state, &signed, &project, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    role: String,
    #[serde(default)]
    label: String,
}

pub async fn create(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    posted: Posted<CreateForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    let label = Some(form.label.trim()).filter(|l| !l.is_empty());
    let (key, text) = keys::create(
        &state.store,
        &signed.identity,
        TOOL,
        &project,
        &form.role,
        label,
    )
    .await?;
    let created = context! { key => text, prefix => key.prefix, role => key.role.as_str() };
    show(&state, &signed, &project, Some(created)).await
}

#[derive(Deserialize)]
pub struct RevokeForm {}

pub async fn revoke(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    posted: Posted<RevokeForm>,
) -> Result<Response, ConsoleError> {
    keys::revoke(&state.store, &posted.signed.identity, TOOL, &project, &id).await?;
    Ok(Redirect::to(&format!("/console/projects/{project}/keys")).into_response())
}
