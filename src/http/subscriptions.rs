//! `subscriptions/listen` over Streamable HTTP, before rmcp sees the request: the listener takes
//! one of the server's listener places ([`crate::events::listeners`]) for as long as its
//! response streams (over the cap: `503` with `Retry-After` and a JSON-RPC error saying what
//! to change), and where its event streams start is read. rmcp acknowledges a subscription
//! before it calls the handler, so a start read in the handler could miss an event stored
//! between the two; read here, every event committed after the acknowledgement is announced.
//! A listen response, and a session's `GET /mcp` stream (where `resources/subscribe`
//! notifications go), end once their key no longer verifies, within the key-cache window, as
//! `GET /events` streams do: a revoked key hears no more events.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rmcp::model::SubscriptionFilter;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, HttpState};
use crate::auth::Identity;
use crate::events::listeners::{ListenerPermit, RETRY_AFTER_SECONDS};

/// The parts of a `subscriptions/listen` request read here.
#[derive(Debug, Deserialize)]
struct Listen {
    #[serde(default)]
    id: Value,
    params: ListenParams,
}

#[derive(Debug, Deserialize)]
struct ListenParams {
    notifications: SubscriptionFilter,
}

/// Admits a `subscriptions/listen` request (a 2026-07-28 request names its method in
/// `Mcp-Method`, which rmcp checks against the body) and attaches a
/// [`crate::mcp::listen::ListenStart`] to it.
pub async fn read_listen_start(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let listens = request
        .headers()
        .get("mcp-method")
        .is_some_and(|method| method == "subscriptions/listen");
    let Some(identity) = request.extensions().get::<Identity>().cloned() else {
        return next.run(request).await;
    };
    if request.method() == Method::GET {
        let response = next.run(request).await;
        return until_withdrawn(&state, identity, response, None);
    }
    if !listens {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is over {} bytes (CODIFIER_MAX_BODY_BYTES)",
                    state.max_body_bytes
                ),
            )
            .into_response();
        }
    };
    // A body that is not a listen request goes on to rmcp, which says what is wrong with it.
    let listen = serde_json::from_slice::<Listen>(&bytes).ok();
    let mut request = Request::from_parts(parts, Body::from(bytes));
    let Some(listen) = listen else {
        return next.run(request).await;
    };
    let place = match state.app.listeners.admit() {
        Ok(place) => place,
        Err(full) => return refused(listen.id, full),
    };
    let requested = &listen.params.notifications;
    match crate::mcp::listen::start(state.store.as_ref(), &identity, requested).await {
        Ok(start) => {
            request.extensions_mut().insert(start);
        }
        // The handler reads it again and reports the failure to the client.
        Err(error) => tracing::warn!(%error, "could not read where a subscription starts"),
    }
    let response = next.run(request).await;
    until_withdrawn(&state, identity, response, Some(place))
}

/// `response`, streamed until the key of `identity` no longer verifies, holding `place` until
/// it has streamed to its end (or the client left).
fn until_withdrawn(
    state: &HttpState,
    identity: Identity,
    response: Response,
    place: Option<ListenerPermit>,
) -> Response {
    let withdrawn = super::events::key_withdrawn(state.verifier.clone(), identity);
    response.map(|body| {
        let chunks = body.into_data_stream().map(move |chunk| {
            let _held = &place;
            chunk
        });
        Body::from_stream(chunks.take_until(withdrawn))
    })
}

/// `503 Service Unavailable` with `Retry-After` and a JSON-RPC error for the listen request.
fn refused(id: Value, full: crate::events::listeners::Full) -> Response {
    let error = crate::mcp::listener_refused(full);
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}
