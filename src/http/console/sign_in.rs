//! Signing in (a form taking an API key or the operator token, verified as a bearer key is)
//! and out. The key travels only in the POST body; the session cookie carries a random token.
//! Wrong keys count against the client address as bearer keys do: past the limit the form
//! answers 429 with `Retry-After` ([`crate::http::auth::verify_typed_key`]).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::session::{self, Posted};
use super::{ConsoleError, render};
use crate::auth::Identity;
use crate::domain::{ConsoleSession, ConsoleSubject, Role, now};
use crate::http::HttpState;
use crate::http::auth::{TypedKeyRefusal, client_address, retry_after_seconds, verify_typed_key};

#[derive(Deserialize)]
pub struct SignInQuery {
    ended: Option<String>,
}

fn form_page(status: StatusCode, notice: Option<&str>) -> Result<Response, ConsoleError> {
    let mut response = render::page("sign_in.html", context! { title => "Sign in", notice })?;
    *response.status_mut() = status;
    Ok(response)
}

pub async fn form(Query(query): Query<SignInQuery>) -> Result<Response, ConsoleError> {
    let notice = query.ended.is_some().then_some(
        "Your session has ended (signed out, expired, or its key was revoked): sign in again.",
    );
    form_page(StatusCode::OK, notice)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

pub async fn submit(
    State(state): State<HttpState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    session::same_origin(&headers)?;
    let form: SignInForm =
        serde_urlencoded::from_bytes(&body).unwrap_or(SignInForm { key: String::new() });
    let key = form.key.trim();
    if key.is_empty() {
        return form_page(
            StatusCode::BAD_REQUEST,
            Some("Paste an API key (cdf_…) or the operator token."),
        );
    }
    let client = client_address(&state, &headers, &extensions);
    let identity = match verify_typed_key(&state, client, key).await {
        Ok(identity) => identity,
        Err(TypedKeyRefusal::Failed(failure)) => {
            return form_page(StatusCode::UNAUTHORIZED, Some(failure.message()));
        }
        Err(TypedKeyRefusal::Throttled(wait)) => {
            let seconds = retry_after_seconds(wait);
            let notice = format!(
                "Too many wrong keys came from this address: wait {seconds} seconds, then try again."
            );
            let mut response = form_page(StatusCode::TOO_MANY_REQUESTS, Some(&notice))?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return Ok(response);
        }
    };
    let (subject, role, project_id) = match &identity {
        Identity::Key {
            id,
            prefix,
            project_id,
            role,
        } => (
            ConsoleSubject::Key {
                id: *id,
                prefix: prefix.clone(),
            },
            *role,
            Some(*project_id),
        ),
        Identity::Operator | Identity::Local => {
            let Some(fingerprint) = state.verifier.operator_fingerprint() else {
                return Err(ConsoleError::Internal);
            };
            (ConsoleSubject::Operator { fingerprint }, Role::Admin, None)
        }
    };
    if let Err(error) = state.store.delete_expired_console_sessions().await {
        tracing::warn!(%error, "could not forget expired console sessions");
    }
    let token = session::random_token();
    let created_at = now();
    let lifetime = chrono::Duration::from_std(state.console_session)
        .unwrap_or_else(|_| chrono::Duration::hours(12));
    let stored = ConsoleSession {
        token_hash: session::token_hash(&token),
        subject,
        role,
        project_id,
        csrf_token: session::random_token(),
        created_at,
        expires_at: created_at + lifetime,
    };
    state
        .store
        .create_console_session(&stored)
        .await
        .map_err(|error| ConsoleError::internal("storing a console session", error))?;
    tracing::info!(who = %identity.label(), "console sign-in");
    let cookie = session::session_cookie(
        &token,
        state.console_session.as_secs(),
        session::over_https(&state, &headers),
    );
    let mut response = Redirect::to("/console").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ConsoleError::internal("a cookie", e))?,
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct SignOutForm {}

pub async fn sign_out(
    State(state): State<HttpState>,
    headers: HeaderMap,
    posted: Posted<SignOutForm>,
) -> Result<Response, ConsoleError> {
    state
        .store
        .delete_console_session(&posted.signed.session.token_hash)
        .await
        .map_err(|error| ConsoleError::internal("ending a console session", error))?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    let cookie = session::cleared_cookie(session::over_https(&state, &headers));
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ConsoleError::internal("a cookie", e))?,
    );
    Ok(response)
}
