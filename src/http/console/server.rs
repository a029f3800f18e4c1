//! The Server page (operator only): version, store and whether it answers, the embedding
//! provider's state (as `/health` reports it) and how many projects there are.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::http::HttpState;
use crate::knowledge::projects;

pub async fn page(
    State(state): State<HttpState>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    if !signed.identity.is_operator() {
        return Err(ConsoleError::Forbidden(
            "The Server page is for the operator: sign in with the operator token.".into(),
        ));
    }
    let ping = tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await;
    let store_answers = matches!(ping, Ok(Ok(())));
    let embeddings = state.app.knowledge.embeddings.describe();
    let rows: Vec<(String, String)> = embeddings
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (name.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    let project_count = projects::list(&state.store, &signed.identity).await?.len();
    render(
        "server.html",
        &signed,
        None,
        context! {
            title => "Server",
            version => env!("CARGO_PKG_VERSION"),
            store => state.store.backend(),
            store_answers,
            embeddings => rows,
            project_count,
        },
    )
}
