//! `/.well-known/oauth-authorization-server` (RFC 8414): where a client finds the endpoints and
//! what they accept. The issuer is the server's public base URL.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, server};
use crate::http::HttpState;
use crate::http::discovery::base_url;

pub async fn document(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Err(off) = server(&state) {
        return *off;
    }
    let base = base_url(&state, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "registration_endpoint": format!("{base}{REGISTER_PATH}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": crate::oauth::scope::SUPPORTED,
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": "https://github.com/codifier/codifier#connecting-hosted-clients-oauth",
    }))
    .into_response()
}
