//! The OAuth authorization server's endpoints (issue 20): metadata (RFC 8414), registration
//! (RFC 7591), the authorization endpoint and its consent page, the token endpoint and
//! revocation (RFC 7009). One file each; the records and token rules are in [`crate::oauth`].
//! Served unless `CODIFIER_OAUTH=off` or an external `CODIFIER_AUTHORIZATION_SERVERS` is named.

mod authorize;
mod consent;
mod metadata;
mod register;
mod token;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::HttpState;
use crate::oauth::OAuthConfig;
use crate::oauth::clients::Clients;

/// Where the authorization server metadata is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REGISTER_PATH: &str = "/oauth/register";
pub const REVOKE_PATH: &str = "/oauth/revoke";

/// What the endpoints share.
pub struct OAuthServer {
    pub config: OAuthConfig,
    pub clients: Clients,
    /// Registrations per client address in the last hour (`CODIFIER_OAUTH_REGISTRATIONS_PER_HOUR`).
    pub registrations: crate::auth::throttle::FailureThrottle,
}

/// The endpoints' routes.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route(METADATA_PATH, get(metadata::document))
        .route(
            &format!("{METADATA_PATH}/{{*issuer_path}}"),
            get(metadata::document),
        )
        .route(REGISTER_PATH, post(register::register))
        .route(AUTHORIZE_PATH, get(authorize::start).post(consent::submit))
        .route(TOKEN_PATH, post(token::token))
        .route(REVOKE_PATH, post(token::revoke))
}

/// The server, when this process serves one.
fn server(state: &HttpState) -> Result<&Arc<OAuthServer>, Box<Response>> {
    state.oauth.as_ref().ok_or_else(|| {
        Box::new(super::ApiError::new(
            StatusCode::NOT_FOUND,
            "oauth_off",
            "this server does not run an OAuth authorization server (CODIFIER_OAUTH=off or CODIFIER_AUTHORIZATION_SERVERS is set): use an API key",
        )
        .into_response())
    })
}

/// The resource tokens are issued for: this server's MCP endpoint.
pub fn resource(state: &HttpState, headers: &HeaderMap) -> String {
    format!("{}/mcp", super::discovery::base_url(state, headers))
}

/// An OAuth error answer (RFC 6749 §5.2): `{"error", "error_description"}`, never cached.
pub fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description.into() })),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
