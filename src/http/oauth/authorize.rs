//! The authorization endpoint (`GET /oauth/authorize`): checks the request — the client, its
//! exact redirect URI, PKCE S256, the RFC 8707 resource, the scope — and shows the consent page. Problems
//! with the client or redirect URI are shown on the page (a code must never go to a URI the
//! client did not declare); the others go back to the client as `error` on its redirect URI.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use url::Url;

use super::consent;
use crate::domain::Role;
use crate::http::HttpState;
use crate::http::discovery::base_url;
use crate::oauth::clients::Client;
use crate::oauth::tokens::check_challenge;

/// The parameters of an authorization request (the query, and hidden fields of the consent form).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizationRequest {
    #[serde(default)]
    pub response_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// A request that passed every check.
pub struct Checked {
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub challenge: String,
    pub resource: String,
    pub issuer: String,
    /// The widest role the `scope` parameter asks for; `None` leaves the key's role.
    pub scope: Option<Role>,
}

/// Why a request was refused: on the page, or back to the client.
pub enum Refusal {
    Page(StatusCode, String),
    Redirect(Response),
}

impl Refusal {
    pub fn into_response(self) -> Response {
        match self {
            Refusal::Page(status, message) => consent::error_page(status, &message),
            Refusal::Redirect(response) => response,
        }
    }
}

/// The client's redirect URI with `pairs` added to its query.
pub fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    query.append_pair(name, value);
                }
            }
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => consent::error_page(StatusCode::BAD_REQUEST, "the redirect URI is not a URL"),
    }
}

/// An error sent back to the client on its (checked) redirect URI.
fn back(
    checked_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Refusal {
    let mut pairs = vec![
        ("error", error),
        ("error_description", description),
        ("iss", issuer),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    Refusal::Redirect(redirect_with(checked_uri, &pairs))
}

/// Runs every check of an authorization request.
pub async fn check(
    state: &HttpState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
) -> Result<Checked, Refusal> {
    let server = super::server(state).map_err(|off| Refusal::Redirect(*off))?;
    let client_id = request
        .client_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Refusal::Page(
                StatusCode::BAD_REQUEST,
                "`client_id` is missing from the authorization request.".into(),
            )
        })?;
    let client = server.clients.resolve(client_id).await.map_err(|error| {
        Refusal::Page(
            StatusCode::BAD_REQUEST,
            format!("The client was not accepted: {error}."),
        )
    })?;
    let redirect_uri = match request.redirect_uri.as_deref() {
        Some(uri) if client.allows_redirect(uri) => uri.to_owned(),
        Some(uri) => {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                format!(
                    "The redirect URI `{uri}` is not one the client declared (they must match exactly), so no code is sent there."
                ),
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                "`redirect_uri` is missing and the client declared several: send one of them."
                    .into(),
            ));
        }
    };
    let issuer = base_url(state, headers);
    let state_param = request.state.as_deref();
    if request.response_type.as_deref() != Some("code") {
        return Err(back(
            &redirect_uri,
            state_param,
            &issuer,
            "unsupported_response_type",
            "response_type must be `code`",
        ));
    }
    let challenge = check_challenge(
        request.code_challenge.as_deref(),
        request.code_challenge_method.as_deref(),
    )
    .map_err(|error| {
        back(
            &redirect_uri,
            state_param,
            &issuer,
            "invalid_request",
            &error.0,
        )
    })?;
    let ours = super::resource(state, headers);
    let resource = match request.resource.as_deref() {
        None => ours,
        Some(asked) if asked.trim_end_matches('/') == ours => ours,
        Some(asked) => {
            return Err(back(
                &redirect_uri,
                state_param,
                &issuer,
                "invalid_target",
                &format!("this server issues tokens only for {ours}, not for `{asked}`"),
            ));
        }
    };
    let scope = crate::oauth::scope::parse(request.scope.as_deref());
    Ok(Checked {
        scope,
        client,
        redirect_uri,
        state: request.state.clone(),
        challenge,
        resource,
        issuer,
    })
}

/// `GET /oauth/authorize`: the consent page for a request that passed every check.
pub async fn start(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(request): Query<AuthorizationRequest>,
) -> Response {
    match check(&state, &headers, &request).await {
        Ok(checked) => consent::first_page(&state, &headers, &request, &checked),
        Err(refusal) => refusal.into_response(),
    }
}
