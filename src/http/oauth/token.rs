//! The token endpoint (`authorization_code` with PKCE, `refresh_token` with rotation) and
//! revocation (RFC 7009). Public clients: the client proves itself by PKCE and by holding the
//! refresh token, not by a secret. A code used twice, or a refresh token used twice, revokes
//! every token of its grant (the family). A refresh request naming another resource or a wider
//! scope is refused before its token is spent; a narrower scope narrows the family for good.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{no_store, oauth_error, server};
use crate::domain::{ConsoleSubject, NewTokenPair, OAuthGrant, Redemption, Role, now};
use crate::http::HttpState;
use crate::oauth::scope::parse as parse_scope;
use crate::oauth::tokens::{ACCESS_PREFIX, REFRESH_PREFIX, generate, hash, verifier_matches};

#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// A new access/refresh pair: the texts to send, and what the store keeps.
fn new_pair(state: &HttpState) -> (String, String, NewTokenPair, u64) {
    let config = state
        .oauth
        .as_ref()
        .map(|server| server.config.clone())
        .unwrap_or_default();
    let (access, refresh) = (generate(ACCESS_PREFIX), generate(REFRESH_PREFIX));
    let issued = now();
    let pair = NewTokenPair {
        access_hash: hash(&access),
        access_expires_at: issued
            + chrono::Duration::from_std(config.access_token).unwrap_or(chrono::Duration::hours(1)),
        refresh_hash: hash(&refresh),
        refresh_expires_at: issued
            + chrono::Duration::from_std(config.refresh_token)
                .unwrap_or(chrono::Duration::days(30)),
    };
    (access, refresh, pair, config.access_token.as_secs())
}

fn issued(access: String, refresh: String, expires_in: u64, scope: Role) -> Response {
    let mut response = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh,
        "scope": scope.as_str(),
    }))
    .into_response();
    no_store(&mut response);
    response
}

fn store_failed(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "oauth token store failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the tokens could not be stored: try again",
    )
}

/// Whether the key (or operator token) behind a grant still stands; when it does not, the
/// grant's family is revoked at once (the pair just stored with it goes too).
async fn subject_stands(
    state: &HttpState,
    grant: &crate::domain::OAuthGrant,
    pair: &NewTokenPair,
) -> bool {
    let stands = match &grant.subject {
        crate::domain::ConsoleSubject::Key { id, prefix } => {
            state.verifier.recheck(*id, prefix).await.is_ok()
        }
        crate::domain::ConsoleSubject::Operator { fingerprint } => {
            state.verifier.operator_fingerprint().as_deref() == Some(fingerprint.as_str())
        }
    };
    if !stands && let Err(error) = state.store.revoke_oauth_token(&pair.access_hash).await {
        tracing::error!(%error, "revoking the tokens of a revoked key failed");
    }
    stands
}

/// Checks the optional `resource` of a token request against the grant's.
fn resource_matches(asked: Option<&str>, granted: &str) -> bool {
    asked.is_none_or(|asked| asked.trim_end_matches('/') == granted)
}

pub async fn token(State(state): State<HttpState>, body: axum::body::Bytes) -> Response {
    if let Err(off) = server(&state) {
        return *off;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return invalid_request(
            "the body must be application/x-www-form-urlencoded token request parameters",
        );
    };
    match form.grant_type.as_str() {
        "authorization_code" => authorization_code(&state, form).await,
        "refresh_token" => refresh(&state, form).await,
        "" => invalid_request("`grant_type` is missing: use authorization_code or refresh_token"),
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "the grant type `{other}` is not offered: use authorization_code or refresh_token"
            ),
        ),
    }
}

async fn authorization_code(state: &HttpState, form: TokenForm) -> Response {
    let (Some(code), Some(client_id), Some(verifier)) =
        (form.code, form.client_id, form.code_verifier)
    else {
        return invalid_request("send `code`, `client_id`, `code_verifier` and `redirect_uri`");
    };
    let grant = match state.store.find_oauth_code(&hash(&code)).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return invalid_grant("this authorization code is not known"),
        Err(error) => return store_failed(error),
    };
    if grant.client_id != client_id {
        return invalid_grant("this code was issued to another client");
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("`redirect_uri` is not the one the code was issued for");
    }
    if !resource_matches(form.resource.as_deref(), &grant.resource) {
        return invalid_target(&grant.resource);
    }
    if !verifier_matches(&verifier, &grant.code_challenge) {
        return invalid_grant("the PKCE `code_verifier` does not match the code's challenge");
    }
    let (access, refresh, pair, expires_in) = new_pair(state);
    match state.store.redeem_oauth_code(grant.id, &pair).await {
        Ok(Redemption::Issued(grant)) if !subject_stands(state, &grant, &pair).await => {
            invalid_grant(
                "the key this code was approved with was revoked: approve again with a valid key",
            )
        }
        Ok(Redemption::Issued(grant)) => issued(access, refresh, expires_in, grant.role),
        Ok(Redemption::Reused) => {
            tracing::warn!(client = %client_id, "an authorization code was used twice: its tokens are revoked");
            invalid_grant("this code was already used: every token issued from it is now revoked")
        }
        Ok(Redemption::Invalid) => {
            invalid_grant("this code expired or was revoked: authorize again")
        }
        Err(error) => store_failed(error),
    }
}

fn invalid_target(granted: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_target",
        format!("this authorization is for {granted}, not for the resource asked"),
    )
}

fn invalid_scope(description: impl Into<String>) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", description)
}

/// The role a refresh request's `scope` narrows its grant to, or why it is refused
/// (`invalid_scope`): a refresh may narrow, never widen, and the operator token's grants cannot
/// be narrowed.
fn refresh_scope(asked: Option<&str>, grant: &OAuthGrant) -> Result<Option<Role>, String> {
    match (parse_scope(asked), &grant.subject) {
        (Some(asked), _) if asked > grant.role => Err(format!(
            "this authorization grants `{}`: a refresh can narrow it, never widen it to `{asked}`",
            grant.role
        )),
        (Some(asked), ConsoleSubject::Operator { .. }) if asked < grant.role => Err(
            "this authorization was approved with the operator token, which cannot be narrowed"
                .into(),
        ),
        (asked, _) => Ok(asked),
    }
}

async fn refresh(state: &HttpState, form: TokenForm) -> Response {
    let (Some(refresh_token), Some(client_id)) = (form.refresh_token, form.client_id) else {
        return invalid_request("send `refresh_token` and `client_id`");
    };
    let refresh_hash = hash(&refresh_token);
    // Checked before the token is spent: a request for another resource or a wider scope is
    // refused and the refresh token still works for the right one (RFC 8707 §2.2).
    let narrow_to = match state.store.find_oauth_refresh(&refresh_hash).await {
        Ok(Some(grant)) => {
            if !resource_matches(form.resource.as_deref(), &grant.resource) {
                return invalid_target(&grant.resource);
            }
            match refresh_scope(form.scope.as_deref(), &grant) {
                Ok(narrow_to) => narrow_to,
                Err(description) => return invalid_scope(description),
            }
        }
        Ok(None) => {
            return invalid_grant(
                "this refresh token is unknown, expired or revoked: authorize again",
            );
        }
        Err(error) => return store_failed(error),
    };
    let (access, refresh, pair, expires_in) = new_pair(state);
    let grant = match state
        .store
        .rotate_oauth_refresh(&refresh_hash, &pair, narrow_to)
        .await
    {
        Ok(Redemption::Issued(grant)) => grant,
        Ok(Redemption::Reused) => {
            tracing::warn!(client = %client_id, "a refresh token was used twice: its family is revoked");
            return invalid_grant(
                "this refresh token was already used: every token of this authorization is now revoked; authorize again",
            );
        }
        Ok(Redemption::Invalid) => {
            return invalid_grant(
                "this refresh token is unknown, expired or revoked: authorize again",
            );
        }
        Err(error) => return store_failed(error),
    };
    if grant.client_id != client_id {
        // Another client holds this client's refresh token: end the whole family.
        if let Err(error) = state.store.revoke_oauth_token(&pair.access_hash).await {
            tracing::error!(%error, "revoking a stolen refresh token's family failed");
        }
        return invalid_grant(
            "this refresh token was issued to another client: its authorization is now revoked",
        );
    }
    if !subject_stands(state, &grant, &pair).await {
        return invalid_grant(
            "the key this client was approved with was revoked: approve again with a valid key",
        );
    }
    issued(access, refresh, expires_in, grant.role)
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    token: String,
}

/// `POST /oauth/revoke` (RFC 7009): revokes the family of an access or refresh token. Answers
/// 200 whether or not the token was known, as the RFC asks.
pub async fn revoke(State(state): State<HttpState>, body: axum::body::Bytes) -> Response {
    if let Err(off) = server(&state) {
        return *off;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<RevokeForm>(&body) else {
        return invalid_request("the body must be application/x-www-form-urlencoded with `token`");
    };
    if form.token.is_empty() {
        return invalid_request("`token` is missing");
    }
    if let Err(error) = state.store.revoke_oauth_token(&hash(&form.token)).await {
        return store_failed(error);
    }
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    response
}
