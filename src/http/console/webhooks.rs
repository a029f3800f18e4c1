//! The Webhooks page (admin role): a project's webhooks with their recent delivery attempts, a
//! form that creates one (its signing secret shown once, on the page that answers the form) and
//! deleting one. The same services as `manage_webhooks`, so URLs are checked the same way.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::session::{Posted, Signed};
use super::{ConsoleError, render};
use crate::domain::{Webhook, WebhookAttempt};
use crate::events::webhooks;
use crate::http::HttpState;

fn row(webhook: &Webhook, attempts: &[WebhookAttempt]) -> Value {
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|attempt| {
            context! {
                event_id => attempt.event_id,
                attempt => attempt.attempt,
                status_code => attempt.status_code,
                duration_ms => attempt.duration_ms,
                error => attempt.error.clone(),
                at => attempt.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            }
        })
        .collect();
    context! {
        id => webhook.id.to_string(),
        url => webhook.url.clone(),
        event_types => webhook.event_types.join(", "),
        status => webhook.status.clone(),
        disabled_reason => webhook.disabled_reason.clone(),
        created_at => webhook.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        attempts,
    }
}

async fn show(
    state: &HttpState,
    signed: &Signed,
    project: &str,
    created: Option<Value>,
) -> Result<Response, ConsoleError> {
    let (found, listed) = webhooks::list(&state.store, &signed.identity, project).await?;
    let rows: Vec<Value> = listed
        .iter()
        .map(|(webhook, attempts)| row(webhook, attempts))
        .collect();
    render(
        "webhooks.html",
        signed,
        Some(&found),
        context! { title => format!("Webhooks · {}", found.name), webhooks => rows, created },
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
    url: String,
    /// Comma-separated event types, or `*` (the default) for all.
    #[serde(default)]
    event_types: String,
}

pub async fn create(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    posted: Posted<CreateForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    let mut types: Vec<String> = form
        .event_types
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if types.is_empty() {
        types.push("*".into());
    }
    let (_, webhook, secret) = webhooks::create(
        &state.store,
        &signed.identity,
        &state.app.events,
        &project,
        Some(&form.url),
        &types,
    )
    .await?;
    let created = context! { url => webhook.url, secret };
    show(&state, &signed, &project, Some(created)).await
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    posted: Posted<DeleteForm>,
) -> Result<Response, ConsoleError> {
    webhooks::delete(&state.store, &posted.signed.identity, &project, Some(&id)).await?;
    Ok(Redirect::to(&format!("/console/projects/{project}/webhooks")).into_response())
}
