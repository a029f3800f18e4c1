//! Streamable HTTP sessions that survive a restart and stay with the key that opened them.
//!
//! rmcp persists each session's `initialize` parameters through [`StoredSessions`] and, when a
//! request names a session this process does not hold (after a restart or deploy), replays the
//! handshake from them, so the client carries on without noticing. [`enforce_owner`] records
//! which key opened a session and refuses any other key that presents its id, remembering the
//! owners it has checked ([`KnownOwners`]).
//!
//! Closing a session (`DELETE /mcp`) answers `204 No Content`: rmcp answers `202 Accepted`,
//! which the Python SDK logs as "Session termination failed: 202" (it accepts 200 and 204; the
//! TypeScript SDK accepts any 2xx).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use super::{ApiError, HttpState};
use crate::auth::Identity;
use crate::remembered::Remembered;
use crate::store::Store;

const SESSION_HEADER: &str = "mcp-session-id";

/// The owners of sessions this process has checked. A session's owner is recorded once and
/// never changes (and ids are never reused), so the database is asked only about sessions this
/// process has not seen: one round trip less on every request.
pub type KnownOwners = Arc<Remembered<String>>;

/// rmcp's session store, kept in our database.
pub struct StoredSessions {
    store: Arc<dyn Store>,
}

impl StoredSessions {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl SessionStore for StoredSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(record) = self.store.load_mcp_session(session_id).await? else {
            return Ok(None);
        };
        let Some(params) = record.initialize_params else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_value(
            serde_json::json!({ "initialize_params": params }),
        )?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let params = serde_json::to_value(&state.initialize_params)?;
        self.store
            .save_mcp_session_params(session_id, &params)
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.store.delete_mcp_session(session_id).await?;
        Ok(())
    }
}

/// Refuses a session id presented by a key other than the one that opened it, and records the
/// owner of each new session.
pub async fn enforce_owner(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(identity) = request.extensions().get::<Identity>().cloned() else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send an API key",
        )
        .into_response();
    };
    let owner = identity.label();
    let closing = request.method() == axum::http::Method::DELETE;
    let presented = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &presented {
        let recorded = match state.session_owners.get(session) {
            Some(known) => Ok(Some(known)),
            None => state
                .store
                .load_mcp_session(session)
                .await
                .map(|record| record.and_then(|record| record.owner)),
        };
        match recorded {
            Ok(Some(recorded)) if recorded != owner => {
                tracing::warn!(caller = %owner, "refused a session opened by another key");
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "session_belongs_to_another_key",
                    "this MCP session was opened with a different API key: start a new session (initialize without Mcp-Session-Id)",
                )
                .into_response();
            }
            Ok(Some(recorded)) => state.session_owners.remember(session, recorded),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the server could not reach its database; try again shortly",
                )
                .into_response();
            }
        }
    }
    let response = next.run(request).await;
    if closing && response.status() == StatusCode::ACCEPTED {
        return StatusCode::NO_CONTENT.into_response();
    }
    if presented.is_none()
        && let Some(created) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
        && let Err(error) = state.store.claim_mcp_session(created, &owner).await
    {
        // A session without a recorded owner could be used by any key: refuse it instead.
        tracing::error!(%error, "could not record the owner of a new session");
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the server could not record the new session; try again shortly",
        )
        .into_response();
    }
    response
}
