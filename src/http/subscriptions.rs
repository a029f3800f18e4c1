//! `subscriptions/listen` over Streamable HTTP: where the subscription's event stream starts is
//! read here, before rmcp sees the request. rmcp acknowledges a subscription before it calls the
//! handler, so a start read in the handler could miss an event stored between the two; read
//! here, every event committed after the acknowledgement is announced.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;
use crate::auth::Identity;

/// Attaches a [`crate::mcp::listen::ListenStart`] to a `subscriptions/listen` request (a 2026-07-28
/// request names its method in `Mcp-Method`, which rmcp checks against the body).
pub async fn read_listen_start(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let listens = request
        .headers()
        .get("mcp-method")
        .is_some_and(|method| method == "subscriptions/listen");
    if listens && let Some(identity) = request.extensions().get::<Identity>() {
        match crate::mcp::listen::start(state.store.as_ref(), identity).await {
            Ok(start) => {
                request.extensions_mut().insert(start);
            }
            // The handler reads it again and reports the failure to the client.
            Err(error) => tracing::warn!(%error, "could not read where a subscription starts"),
        }
    }
    next.run(request).await
}
