//! `/.well-known/oauth-protected-resource` (RFC 9728, as the MCP authorization spec uses it):
//! what a client probing for OAuth learns about this server. It names the authorization server:
//! an external one when `CODIFIER_AUTHORIZATION_SERVERS` is set, else this server itself (its
//! own authorization server over our keys, `http::oauth`), and 401 answers point at this
//! document. With `CODIFIER_OAUTH=off` and no external one, the document says plainly that
//! bearer API keys are used, so a client gets an answer instead of a 404.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use super::HttpState;

/// Where the protected-resource document is served, relative to the server's base URL.
pub const PATH: &str = "/.well-known/oauth-protected-resource";

/// The server's public base URL: the configured one, else the scheme the proxy reports
/// (`X-Forwarded-Proto`, as Fly.io sends) and the request's `Host` (already checked against the
/// allowed hosts by the time this runs).
pub fn base_url(state: &HttpState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| matches!(*proto, "http" | "https"))
        .unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

pub async fn protected_resource(State(state): State<HttpState>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&state, &headers);
    let mut document = json!({
        "resource": format!("{base}/mcp"),
        "resource_name": "Codifier",
        "bearer_methods_supported": ["header"],
    });
    if !state.authorization_servers.is_empty() {
        document["authorization_servers"] = json!(state.authorization_servers.as_slice());
    } else if state.oauth.is_some() {
        // This server is its own authorization server (issue 20); keys still work as bearer.
        document["authorization_servers"] = json!([base]);
        document["scopes_supported"] = json!(crate::oauth::scope::SUPPORTED);
    } else {
        document["codifier_authentication"] = json!(
            "No OAuth authorization server is configured: send an API key as \
             `Authorization: Bearer <key>` (the operator creates keys with `codifier keys create`)."
        );
    }
    Json(document)
}
