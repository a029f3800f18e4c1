//! Observability at the HTTP edge: every request gets an id (the caller's `x-request-id` when it
//! is a sane token, else a new one) that is logged, echoed in the response and visible to the
//! tool handlers, and is counted as activity ([`crate::allocator::trim_when_idle`]); and
//! `/metrics` serves the Prometheus registry, to the operator token only on the public port, or
//! to anyone on the separate `CODIFIER_METRICS_LISTEN` address.

use std::time::Instant;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::{ApiError, HttpState, REQUEST_ID};
use crate::auth::Identity;

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    sane.then(|| text.to_owned())
}

/// Gives the request an id, runs it inside a span carrying that id, logs its outcome; counts it
/// as activity (the server gives free memory back when requests stop).
pub async fn request_context(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    state.activity.touch();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
    let header_value = HeaderValue::from_str(&id).expect("a request id is a valid header value");
    request
        .headers_mut()
        .insert(REQUEST_ID, header_value.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    response.headers_mut().insert(REQUEST_ID, header_value);
    response
}

fn exposition() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::global().render(),
    )
        .into_response()
}

/// `/metrics` on the public port: the operator token only (metrics describe every project).
pub async fn metrics_for_operator(Extension(identity): Extension<Identity>) -> Response {
    match identity {
        Identity::Operator | Identity::Local => exposition(),
        Identity::Key { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "operator_only",
            "/metrics needs the operator token (API_AUTH_TOKEN), or scrape the separate \
             CODIFIER_METRICS_LISTEN address",
        )
        .into_response(),
    }
}

/// `/metrics` on the separate metrics address, which only the operator's network reaches.
pub async fn metrics_open() -> Response {
    exposition()
}
