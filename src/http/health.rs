//! `/health`: answers without a key; 200 when the store answers, 503 when it does not. It also
//! says where the embedding provider stands (`embeddings.state`: `disabled`, `downloading`,
//! `loading`, `ready`, or `unavailable` with a `cause` and a `reason`), without waiting for it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;

pub async fn health(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let backend = state.store.backend();
    let embeddings = state.app.knowledge.embeddings.describe();
    let ping = tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await;
    match ping {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "store": backend,
                "version": env!("CARGO_PKG_VERSION"),
                "embeddings": embeddings,
            })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: store did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "store": backend, "reason": "the database did not answer", "embeddings": embeddings }),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "store": backend, "reason": "the database did not answer within 3 s", "embeddings": embeddings }),
            ),
        ),
    }
}
