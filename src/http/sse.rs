//! The legacy HTTP+SSE transport (MCP 2024-11-05), for clients that have not moved to
//! Streamable HTTP: `GET /sse` opens an event stream whose first event, `endpoint`, names the
//! URL to `POST` messages to (`/messages?sessionId=…`); replies arrive as `message` events.
//!
//! rmcp accepts a (sink, stream) pair as a transport, so each connection is a channel pair
//! served by the same [`CodifierServer`] as the other transports. A session belongs to the key
//! that opened it; another key posting to it is refused. Its stream ends, and the session with
//! it, once that key no longer verifies (revoked), within the key-cache window, as `GET /mcp`
//! and `GET /events` streams do: a revoked key's subscriptions hear no more events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ApiError, HttpState};
use crate::auth::Identity;
use crate::mcp::CodifierServer;

/// One open SSE connection: where posted messages go and whose key opened it.
struct SseSession {
    owner: String,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
}

/// The open SSE connections of this process.
#[derive(Clone, Default)]
pub struct SseSessions(Arc<Mutex<HashMap<String, SseSession>>>);

impl SseSessions {
    fn insert(&self, id: String, session: SseSession) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, session);
    }

    fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    fn route(&self, id: &str) -> Option<(String, mpsc::Sender<ClientJsonRpcMessage>)> {
        let sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(id)
            .map(|s| (s.owner.clone(), s.to_server.clone()))
    }
}

/// Removes the session when the client's event stream ends, and stops its handler.
struct SessionGuard {
    id: String,
    sessions: SseSessions,
    stop: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
        self.stop.cancel();
    }
}

/// `GET /sse`: opens a session and streams its events.
pub async fn open(
    State(state): State<HttpState>,
    axum::Extension(identity): axum::Extension<Identity>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (to_client, from_server) = futures::channel::mpsc::channel::<ServerJsonRpcMessage>(64);
    state.sse.insert(
        id.clone(),
        SseSession {
            owner: identity.label(),
            to_server,
        },
    );

    let stop = state.shutdown.child_token();
    let handler =
        CodifierServer::for_http(state.app.clone()).counted(crate::metrics::Transport::Sse);
    let transport = (
        to_client,
        tokio_stream::wrappers::ReceiverStream::new(from_client),
    );
    let handler_stop = stop.clone();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, handler_stop).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::warn!(%error, "an SSE session ended during its handshake"),
        }
    });

    let withdrawn = super::events::key_withdrawn(state.verifier.clone(), identity);
    let guard = SessionGuard {
        id: id.clone(),
        sessions: state.sse.clone(),
        stop: stop.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = from_server
        .map(|message| {
            let data = serde_json::to_string(&message).unwrap_or_default();
            Ok(Event::default().event("message").data(data))
        })
        .take_until(stop.cancelled_owned())
        .take_until(withdrawn)
        .map(move |event| {
            let _keep = &guard;
            event
        });
    let stream = futures::stream::once(async { Ok(endpoint) }).chain(messages);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=…`: hands one JSON-RPC message to the session's handler.
pub async fn message(
    State(state): State<HttpState>,
    Query(query): Query<MessageQuery>,
    request: Request,
) -> Response {
    let Some(session_id) = query.session_id else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_session_id",
            "post to the URL the `endpoint` event gave: /messages?sessionId=<id>",
        )
        .into_response();
    };
    let (parts, body) = request.into_parts();
    let Some(identity) = parts.extensions.get::<Identity>() else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send an API key",
        )
        .into_response();
    };
    let Some((owner, to_server)) = state.sse.route(&session_id) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            "no open SSE session has this id: open a new one with GET /sse",
        )
        .into_response();
    };
    if owner != identity.label() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "session_belongs_to_another_key",
            "this SSE session was opened with a different API key: open your own with GET /sse",
        )
        .into_response();
    }
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than CODIFIER_MAX_BODY_BYTES allows",
            )
            .into_response();
        }
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(error) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json_rpc",
                format!("the body is not a JSON-RPC message: {error}"),
            )
            .into_response();
        }
    };
    message.insert_extension(parts);
    if to_server.send(message).await.is_err() {
        return ApiError::new(
            StatusCode::GONE,
            "session_closed",
            "this SSE session has ended: open a new one with GET /sse",
        )
        .into_response();
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "accepted" })),
    )
        .into_response()
}
