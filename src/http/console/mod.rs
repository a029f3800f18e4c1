//! The web console: server-rendered HTML pages at `/console` for the people who do not use an
//! MCP client. Templates (minijinja), the stylesheet and the one small script are embedded in
//! the binary; pages call the same services as the MCP tools (never SQL of their own) with the
//! identity of the signed-in key, so roles and project scopes apply exactly as over MCP.
//!
//! Sign-in and sessions are [`session`]'s; each page group has a file of its own.

mod diff;
mod events;
mod guardrails;
mod keys;
mod memories;
mod memory_changes;
mod plan_graph;
mod plans;
mod playbooks;
mod projects;
mod render;
mod server;
pub mod session;
mod sign_in;
mod snapshots;
mod webhooks;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::HttpState;
use crate::knowledge::KnowledgeError;
pub use render::{page, render};

/// The console's routes, all under `/console`.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/console", get(projects::page))
        .route("/console/", get(projects::page))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/assets/console.css", get(render::stylesheet))
        .route("/console/assets/console.js", get(render::script))
        .route("/console/server", get(server::page))
        .route("/console/projects/{project}/memories", get(memories::list))
        .route(
            "/console/projects/{project}/memories/{id}",
            get(memories::page),
        )
        .route(
            "/console/projects/{project}/memories/{id}/edit",
            get(memory_changes::edit_form).post(memory_changes::edit),
        )
        .route(
            "/console/projects/{project}/memories/{id}/restore",
            post(memory_changes::restore),
        )
        .route(
            "/console/projects/{project}/memories/{id}/delete",
            post(memory_changes::delete),
        )
        .route(
            "/console/projects/{project}/keys",
            get(keys::page).post(keys::create),
        )
        .route(
            "/console/projects/{project}/keys/{id}/revoke",
            post(keys::revoke),
        )
        .route(
            "/console/projects/{project}/webhooks",
            get(webhooks::page).post(webhooks::create),
        )
        .route(
            "/console/projects/{project}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route(
            "/console/projects/{project}/playbooks",
            get(playbooks::page),
        )
        .route(
            "/console/projects/{project}/playbooks/{session}",
            get(playbooks::session),
        )
        .route(
            "/console/projects/{project}/snapshots",
            get(snapshots::list),
        )
        .route(
            "/console/projects/{project}/snapshots/{id}",
            get(snapshots::read),
        )
        .route("/console/projects/{project}/plans", get(plans::list))
        .route("/console/projects/{project}/plans/{plan}", get(plans::page))
        .route(
            "/console/projects/{project}/guardrails",
            get(guardrails::page),
        )
        .route("/console/projects/{project}/events", get(events::page))
        .route(
            "/console/projects/{project}/events/stream",
            get(events::stream),
        )
}

/// `GET /`: a browser (it accepts HTML) goes to the console; other clients get the 404 that
/// names the MCP endpoints, as before.
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        Redirect::to("/console").into_response()
    } else {
        super::error::not_found().await.into_response()
    }
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: a page request goes to the sign-in form (with a notice, if any).
    SignIn(Option<&'static str>),
    Forbidden(String),
    NotFound(String),
    Status(StatusCode, String),
    /// Something broke; the page says so without details (they are logged).
    Internal,
}

impl ConsoleError {
    pub fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "console: {what} failed");
        ConsoleError::Internal
    }
}

impl From<KnowledgeError> for ConsoleError {
    fn from(error: KnowledgeError) -> Self {
        match error {
            KnowledgeError::Invalid(message) => {
                ConsoleError::Status(StatusCode::BAD_REQUEST, message)
            }
            KnowledgeError::Forbidden(message) => ConsoleError::Forbidden(message),
            KnowledgeError::NotFound(message) => ConsoleError::NotFound(message),
            KnowledgeError::Conflict(message) => {
                ConsoleError::Status(StatusCode::CONFLICT, message)
            }
            KnowledgeError::Unavailable(message) => {
                ConsoleError::Status(StatusCode::SERVICE_UNAVAILABLE, message)
            }
            KnowledgeError::Store(error) => ConsoleError::internal("a store call", error),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ConsoleError::SignIn(notice) => {
                let target = match notice {
                    Some(_) => "/console/sign-in?ended=1",
                    None => "/console/sign-in",
                };
                return Redirect::to(target).into_response();
            }
            ConsoleError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
            ConsoleError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            ConsoleError::Status(status, message) => (status, message),
            ConsoleError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on the server; it is in the server's log.".to_owned(),
            ),
        };
        let page = render::page(
            "error.html",
            minijinja::context! { title => status.canonical_reason().unwrap_or("Error"), status => status.as_u16(), message => message.clone() },
        );
        match page {
            Ok(mut response) => {
                *response.status_mut() = status;
                response
            }
            Err(_) => (status, message).into_response(),
        }
    }
}
