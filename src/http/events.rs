//! `GET /events?project=…`: a project's events as server-sent events, live, for a key that may
//! read the project (or the operator token). Each SSE event has `id` = the event's sequence
//! number, `event` = its type and `data` = the event as JSON. A client that reconnects with
//! `Last-Event-ID: N` gets every event after N, in order, then the live ones; without it the
//! stream starts after the latest event (`?after=N` asks for a starting point explicitly).
//! Each stream holds one of the server's listener places (`CODIFIER_MAX_LISTENERS`); past the
//! cap a new one is refused with `503` and `Retry-After`. A stream opened with a key ends once the key no longer verifies (revoked), within the
//! key-cache window, like any other request of that key.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::{ApiError, HttpState};
use crate::auth::Identity;
use crate::auth::keys::KeyVerifier;
use crate::domain::Role;
use crate::knowledge::{KnowledgeError, projects};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// The project's id or name.
    pub(super) project: Option<String>,
    /// Start after this sequence number (`Last-Event-ID` wins when both are sent).
    pub(super) after: Option<String>,
}

fn bad_request(message: String) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).into_response()
}

/// A sequence number from a header or the query.
fn sequence(text: &str, name: &str) -> Result<i64, Box<Response>> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| Box::new(bad_request(format!("`{name}` {text:?} is not an event sequence number: send the `id` of the last event received"))))
}

pub async fn stream(
    State(state): State<HttpState>,
    Extension(identity): Extension<Identity>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(project) = query.project.filter(|p| !p.trim().is_empty()) else {
        return bad_request("`project` is missing: send /events?project=<id or name>".into());
    };
    let project = match projects::resolve(&state.store, &identity, &project, Role::Read).await {
        Ok(project) => project,
        Err(error) => {
            let (status, code) = match &error {
                KnowledgeError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
                KnowledgeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                KnowledgeError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            };
            let message = match status {
                StatusCode::INTERNAL_SERVER_ERROR => "the event stream could not start".to_owned(),
                _ => error.to_string(),
            };
            return ApiError::new(status, code, message).into_response();
        }
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let after = match (resume, query.after.as_deref()) {
        (Some(text), _) => sequence(text, "Last-Event-ID").map_err(|response| *response),
        (None, Some(text)) => sequence(text, "after").map_err(|response| *response),
        (None, None) => crate::events::stream::latest(&state.store, project.id)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "reading the latest event failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the event stream could not start",
                )
                .into_response()
            }),
    };
    let after = match after {
        Ok(after) => after,
        Err(response) => return response,
    };
    let place = match state.app.listeners.admit() {
        Ok(place) => place,
        Err(full) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_listeners",
                full.to_string(),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                crate::events::listeners::RETRY_AFTER_SECONDS.into(),
            );
            return response;
        }
    };
    let withdrawn = key_withdrawn(Arc::clone(&state.verifier), identity);
    let events = crate::events::stream::follow(
        state.store.clone(),
        &state.app.events,
        project.id,
        after,
        state.shutdown.child_token(),
    )
    .map(move |event| {
        let _held = &place;
        let data = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
        Ok::<_, Infallible>(
            SseEvent::default()
                .id(event.sequence.to_string())
                .event(event.kind.clone())
                .data(data),
        )
    })
    .take_until(withdrawn);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Returns once the key behind `identity` no longer verifies (revoked, or gone from the
/// store), asking once per key-cache window; never for the operator token. A client whose
/// stream ends this way and reconnects is refused like any request of that key.
pub(super) async fn key_withdrawn(verifier: Arc<KeyVerifier>, identity: Identity) {
    let Identity::Key { id, prefix, .. } = identity else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(verifier.window()).await;
        if verifier.recheck(id, &prefix).await.is_err() {
            return;
        }
    }
}
