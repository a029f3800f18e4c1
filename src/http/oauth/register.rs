//! Dynamic client registration (RFC 7591) for clients that do not use a client ID metadata
//! document: public clients only (`token_endpoint_auth_method: none`; PKCE protects the code),
//! redirect URIs checked here and matched exactly later. Each client address may register
//! `CODIFIER_OAUTH_REGISTRATIONS_PER_HOUR` clients an hour (429 with `Retry-After` beyond), and
//! clients nobody authorizes are deleted by the sweep ([`crate::oauth::sweep`]).

use axum::Json;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{oauth_error, server};
use crate::domain::{OAuthClient, now};
use crate::http::HttpState;
use crate::http::auth::{client_address, retry_after_seconds};
use crate::oauth::clients::check_redirect_uri;

const MAX_REDIRECT_URIS: usize = 10;
const MAX_TEXT: usize = 2000;

#[derive(Deserialize)]
pub struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    client_uri: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
}

fn invalid(description: impl Into<String>) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// A 429 for an address that registered its hourly share of clients.
fn too_many(wait: std::time::Duration) -> Response {
    let mut response = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_registrations",
        "this address registered too many clients in the last hour: wait as long as `Retry-After` says, or reuse a client_id you registered",
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_seconds(wait)),
    );
    response
}

pub async fn register(
    State(state): State<HttpState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: axum::body::Bytes,
) -> Response {
    let server = match server(&state) {
        Ok(server) => server.clone(),
        Err(off) => return *off,
    };
    let address = client_address(&state, &headers, &extensions);
    if let Some(wait) = address.and_then(|address| server.registrations.retry_after(address)) {
        return too_many(wait);
    }
    let registration: Registration = match serde_json::from_slice(&body) {
        Ok(registration) => registration,
        Err(error) => {
            return invalid(format!(
                "the registration is not the JSON RFC 7591 describes: {error}"
            ));
        }
    };
    if registration.redirect_uris.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "`redirect_uris` is missing or empty: list where authorization codes may be sent",
        );
    }
    if registration.redirect_uris.len() > MAX_REDIRECT_URIS {
        return invalid(format!("more than {MAX_REDIRECT_URIS} redirect URIs"));
    }
    for uri in &registration.redirect_uris {
        if uri.len() > MAX_TEXT {
            return invalid("a redirect URI is longer than 2000 characters");
        }
        if let Err(error) = check_redirect_uri(uri) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", error.0);
        }
    }
    if let Some(method) = registration.token_endpoint_auth_method.as_deref()
        && method != "none"
    {
        return invalid(format!(
            "`token_endpoint_auth_method: {method}` is not offered: this server registers public clients only (`none`, with PKCE)"
        ));
    }
    let grant_types = registration
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(other) = grant_types
        .iter()
        .find(|grant| !matches!(grant.as_str(), "authorization_code" | "refresh_token"))
    {
        return invalid(format!(
            "the grant type `{other}` is not offered: use authorization_code and refresh_token"
        ));
    }
    if let Some(other) = registration
        .response_types
        .iter()
        .flatten()
        .find(|kind| kind.as_str() != "code")
    {
        return invalid(format!(
            "the response type `{other}` is not offered: use code"
        ));
    }
    let name = registration
        .client_name
        .map(|name| name.trim().chars().take(200).collect::<String>())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "An unnamed client".into());
    let client_uri = registration
        .client_uri
        .filter(|uri| uri.starts_with("https://") && uri.len() <= MAX_TEXT);
    let client = OAuthClient {
        client_id: crate::oauth::tokens::generate("cdc_"),
        client_name: name,
        client_uri,
        redirect_uris: registration.redirect_uris,
        created_at: now(),
    };
    if let Err(error) = state.store.create_oauth_client(&client).await {
        tracing::error!(%error, "storing an oauth client failed");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the registration could not be stored: try again",
        );
    }
    if let Some(address) = address {
        server.registrations.count(address);
    }
    tracing::info!(client = %client.client_id, "oauth client registered");
    let mut answer = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at.timestamp(),
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": grant_types,
        "response_types": ["code"],
    });
    // A `client_uri` the client did not send is left out, not sent as null (RFC 7591 §3.2.1):
    // the TypeScript SDK refuses a registration answer holding a null.
    if let Some(uri) = client.client_uri {
        answer["client_uri"] = json!(uri);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}
