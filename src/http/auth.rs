//! Request guards: the `Host` header must be an allowed host (DNS-rebinding defence), and the
//! bearer key must verify; the resulting [`Identity`] travels in the request's extensions. A
//! refused request's body is read before the answer ([`refuse`]), so the connection stays
//! usable.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::{ApiError, HttpState};
use crate::auth::keys::AuthFailure;

/// The host part of a `Host` header value (`[::1]:8080` → `::1`, `example.com:443` → `example.com`).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Whether a `Host` header value is one of `allowed` (by name, or by name and port).
pub fn host_allowed(authority: &str, allowed: &[String]) -> bool {
    let authority = authority.trim().to_ascii_lowercase();
    let name = host_name(&authority);
    allowed
        .iter()
        .any(|entry| entry == name || *entry == authority)
}

pub async fn require_allowed_host(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let refusal = match host {
        Some(host) if host_allowed(&host, &state.allowed_hosts) => return next.run(request).await,
        Some(host) => ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "the Host `{host}` is not served here: the operator can add it to CODIFIER_ALLOWED_HOSTS"
            ),
        ),
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_host",
            "send a Host header",
        ),
    };
    refuse(request, state.max_body_bytes, refusal.into_response()).await
}

pub async fn require_key(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or("\u{0}"));
    let audience = super::oauth::resource(&state, request.headers());
    let client = client_address(&state, request.headers(), request.extensions());
    let wait = client.and_then(|client| state.throttle.retry_after(client));
    match state
        .verifier
        .verify_header_with(header, Some(&audience), wait.is_none())
        .await
    {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(AuthFailure::Throttled) => {
            let response = throttled(wait.unwrap_or_default());
            refuse(request, state.max_body_bytes, response).await
        }
        Err(failure) => {
            if let (AuthFailure::Unknown, Some(client)) = (failure, client) {
                state.throttle.failed(client);
            }
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, failure.code(), failure.message())
                    .into_response();
            if !state.authorization_servers.is_empty() || state.oauth.is_some() {
                // Point OAuth-capable clients at the protected-resource document.
                let metadata = format!(
                    "{}{}",
                    super::discovery::base_url(&state, request.headers()),
                    super::discovery::PATH
                );
                let challenge = format!(
                    "Bearer resource_metadata=\"{metadata}\", error=\"invalid_token\", error_description=\"{}\"",
                    failure.code()
                );
                if let Ok(value) = header::HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
            }
            refuse(request, state.max_body_bytes, response).await
        }
    }
}

/// How long a refused request's body may take to arrive before the answer goes out without it.
const REFUSED_BODY_WAIT: Duration = Duration::from_secs(2);

/// The most of a refused request's body read to keep its connection: a client without a valid
/// key does not get the server to read megabytes for it. MCP and OAuth requests are far smaller.
const REFUSED_BODY_BYTES: usize = 64 * 1024;

/// Reads and drops the body of a request answered with `response` without being served (at
/// most `limit` bytes, and never more than [`REFUSED_BODY_BYTES`], for at most
/// [`REFUSED_BODY_WAIT`]); when the body is larger or slower, the response says
/// `Connection: close`.
///
/// hyper, when an answer is ready before the request's body was read, reads on only what has
/// already arrived; when more is on its way it closes the connection after the answer, without
/// saying so. A client that keeps connections open (httpx, reqwest) then sends its next request
/// on a connection that is being closed and sees "Server disconnected". OAuth clients do just
/// that: their first `POST /mcp` is answered 401, and their next request is discovery.
///
/// A client that asked `Expect: 100-continue` has not sent its body: reading it would invite it
/// to, so the answer goes out at once with `Connection: close` instead.
async fn refuse(request: Request, limit: usize, mut response: Response) -> Response {
    let waits_to_send = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let drained = !waits_to_send
        && matches!(
            tokio::time::timeout(
                REFUSED_BODY_WAIT,
                discard(request.into_body(), limit.min(REFUSED_BODY_BYTES))
            )
            .await,
            Ok(true)
        );
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end, keeping none of it: true when it ended within `limit` bytes.
async fn discard(body: Body, limit: usize) -> bool {
    let mut chunks = body.into_data_stream();
    let mut read = 0usize;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) if read + bytes.len() <= limit => read += bytes.len(),
            _ => return false,
        }
    }
    true
}

/// The client address of a request, as the throttles count it: the socket's peer, or the
/// trusted proxy's header ([`crate::auth::throttle::ThrottleConfig::client_address`]).
pub fn client_address(
    state: &HttpState,
    headers: &header::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<std::net::IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    state.throttle.config().client_address(headers, peer)
}

/// Why a key typed into a form (the console's sign-in, the OAuth consent page) was refused.
pub enum TypedKeyRefusal {
    /// The address sent too many wrong keys: wait this long.
    Throttled(std::time::Duration),
    /// The key is wrong, revoked or malformed.
    Failed(AuthFailure),
}

/// Verifies a key typed into a form under the same per-address throttle as bearer keys: a
/// wrong key counts against the address, a throttled address gets in only with a key this
/// process has already proven.
pub async fn verify_typed_key(
    state: &HttpState,
    client: Option<std::net::IpAddr>,
    key: &str,
) -> Result<crate::auth::Identity, TypedKeyRefusal> {
    let wait = client.and_then(|client| state.throttle.retry_after(client));
    match state.verifier.verify_with(key, wait.is_none()).await {
        Ok(identity) => Ok(identity),
        Err(AuthFailure::Throttled) => Err(TypedKeyRefusal::Throttled(wait.unwrap_or_default())),
        Err(failure) => {
            if let (AuthFailure::Unknown, Some(client)) = (failure, client) {
                state.throttle.failed(client);
            }
            Err(TypedKeyRefusal::Failed(failure))
        }
    }
}

/// Whole seconds to put in `Retry-After` for `wait` (at least 1).
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A 429 for a client address that sent too many wrong keys, with how long to wait.
fn throttled(wait: std::time::Duration) -> Response {
    let failure = AuthFailure::Throttled;
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        failure.code(),
        failure.message(),
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry_after_seconds(wait)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_whatever_the_port() {
        let allowed = vec!["localhost".to_owned(), "codifier.example.com".to_owned()];
        assert!(host_allowed("localhost:8080", &allowed));
        assert!(host_allowed("Codifier.Example.com", &allowed));
        assert!(!host_allowed("evil.example.com", &allowed));
        assert!(!host_allowed("localhost.evil.com:80", &allowed));
    }

    #[test]
    fn ipv6_hosts_are_read_inside_their_brackets() {
        assert!(host_allowed("[::1]:3000", &["::1".to_owned()]));
    }
}
