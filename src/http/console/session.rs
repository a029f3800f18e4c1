//! Console sign-ins: the session cookie (a random token; the store keeps only its SHA-256), the
//! [`Signed`] extractor that finds the session and re-checks its key on every request, and the
//! [`Posted`] extractor every form that changes something goes through: same-origin, a live
//! session, and the session's CSRF token in the form's `csrf` field (compared in constant time).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use rand::RngCore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ConsoleError;
use crate::auth::Identity;
use crate::domain::{ConsoleSession, ConsoleSubject};
use crate::http::HttpState;

/// The session cookie's name.
pub const COOKIE: &str = "codifier_console";
/// Where the cookie is sent (and nowhere else on this host).
pub const COOKIE_PATH: &str = "/console";

/// 32 random bytes from the thread's CSPRNG, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of the cookie `name` when it is a [`random_token`] (64 hex digits); the first
/// cookie of that name counts, whatever it holds.
pub fn token_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The session token the request's cookie carries, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    token_cookie(headers, COOKIE)
}

/// Whether the request reached us over https (directly, or through a proxy such as Fly's that
/// says so in `X-Forwarded-Proto`), so the cookie must be `Secure`.
pub fn over_https(state: &HttpState, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    forwarded
        || state
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
}

/// The `Set-Cookie` value that starts a session lasting `max_age` seconds.
pub fn session_cookie(token: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn cleared_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// A request made in a live console session: who signed in, as the key is now.
#[derive(Debug, Clone)]
pub struct Signed {
    pub identity: Identity,
    pub session: ConsoleSession,
}

impl Signed {
    /// Whether the request's form token is this session's CSRF token.
    fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.session.csrf_token.as_bytes();
        presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected))
    }
}

/// Finds the request's session and re-checks who it belongs to: the key through the key
/// verifier (revoked → the session ends), the operator by the token's fingerprint.
async fn signed(state: &HttpState, headers: &HeaderMap) -> Result<Signed, ConsoleError> {
    let token = cookie_token(headers).ok_or(ConsoleError::SignIn(None))?;
    let hash = token_hash(&token);
    let session = state
        .store
        .find_console_session(&hash)
        .await
        .map_err(|error| ConsoleError::internal("reading the console session", error))?
        .ok_or(ConsoleError::SignIn(Some(
            "Your session has ended: sign in again.",
        )))?;
    let identity = match &session.subject {
        ConsoleSubject::Key { id, prefix } => state.verifier.recheck(*id, prefix).await.ok(),
        ConsoleSubject::Operator { fingerprint } => state
            .verifier
            .operator_fingerprint()
            .filter(|current| current == fingerprint)
            .map(|_| Identity::Operator),
    };
    let Some(identity) = identity else {
        if let Err(error) = state.store.delete_console_session(&hash).await {
            tracing::warn!(%error, "could not forget a console session whose key is gone");
        }
        return Err(ConsoleError::SignIn(Some(
            "Your key was revoked or changed: sign in with a valid key.",
        )));
    };
    Ok(Signed { identity, session })
}

impl FromRequestParts<HttpState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        signed(state, &parts.headers).await
    }
}

/// Refuses a form posted from another site: browsers send `Origin` with every POST, and its
/// host must be the one the request was sent to.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|text| text.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(ConsoleError::Forbidden(
            "This form was posted from another site and was refused.".into(),
        )),
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form that changes something: a live session, same origin, the session's CSRF token, and
/// the fields `T` reads (a form without a valid token gets 403 before `T` is read).
pub struct Posted<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<HttpState> for Posted<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        same_origin(&parts.headers)?;
        let signed = match Signed::from_request_parts(&mut parts, state).await {
            Ok(signed) => signed,
            // A POST with no live session changes nothing and is not redirected.
            Err(ConsoleError::SignIn(_)) => {
                return Err(ConsoleError::Status(
                    StatusCode::UNAUTHORIZED,
                    "Sign in first: this form needs a live console session.".into(),
                ));
            }
            Err(other) => return Err(other),
        };
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                ConsoleError::Status(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read.".into(),
                )
            })?;
        let csrf: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField {
            csrf: String::new(),
        });
        if !signed.csrf_matches(&csrf.csrf) {
            return Err(ConsoleError::Forbidden(
                "This form carried no valid CSRF token: reload the page and send it again.".into(),
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|error| {
            ConsoleError::Status(
                StatusCode::BAD_REQUEST,
                format!("The form is not complete: {error}."),
            )
        })?;
        Ok(Posted { signed, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_http_only_strict_and_scoped_to_the_console() {
        let cookie = session_cookie("abc", 60, false);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Path=/console") && cookie.contains("Max-Age=60"));
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie("abc", 60, true).ends_with("; Secure"));
    }

    #[test]
    fn only_a_well_formed_session_token_is_read_from_the_cookie_header() {
        let token = random_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={token}")).unwrap(),
        );
        assert_eq!(cookie_token(&headers), Some(token));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("codifier_console=short"),
        );
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn a_token_cookie_is_read_by_its_own_name_only() {
        let (console, csrf) = (random_token(), random_token());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={console}; codifier_oauth_csrf={csrf}"))
                .unwrap(),
        );
        assert_eq!(token_cookie(&headers, "codifier_oauth_csrf"), Some(csrf));
        assert_eq!(cookie_token(&headers), Some(console));
        assert_eq!(token_cookie(&headers, "codifier_oauth"), None);
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        assert!(
            same_origin(&headers).is_ok(),
            "no Origin: not a browser form"
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:8080"),
        );
        assert!(same_origin(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(same_origin(&headers).is_err());
    }
}
