//! The Server page (operator only): version, store and whether it answers, the embedding
//! provider's state (as `/health` reports it) with the backlog of memories still waiting for a
//! vector in each project, the Athena sidecar's state, and the key figures of this process's
//! metrics (what `/metrics` exports, as a table).

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use minijinja::{Value, context};

use super::session::Signed;
use super::{ConsoleError, render};
use crate::http::HttpState;
use crate::knowledge::projects;
use crate::metrics::Timed;

/// Projects whose backlog is counted (one count query each).
const BACKLOG_PROJECTS: usize = 200;

fn described(value: &serde_json::Value) -> Vec<(String, String)> {
    value
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
        .unwrap_or_default()
}

fn timed_rows(rows: &[Timed]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            context! {
                name => row.name.clone(),
                calls => row.calls,
                failures => row.failures,
                mean_ms => format!("{:.1}", row.mean_ms),
                p95 => row.p95_under_ms.map_or_else(|| "> 10 s".to_owned(), |ms| format!("≤ {ms} ms")),
            }
        })
        .collect()
}

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
    let embeddings = &state.app.knowledge.embeddings;
    let listed = projects::list(&state.store, &signed.identity).await?;
    // Memories waiting for a vector of the model in use, counted now (the metrics gauge is
    // what the worker last saw); nothing waits when no model is loaded.
    let mut backlog = Vec::new();
    let mut waiting_total = 0;
    if let Some(embedder) = embeddings.current() {
        for project in listed.iter().take(BACKLOG_PROJECTS) {
            let (done, total) = state
                .store
                .embedding_progress(project.id, embedder.model())
                .await
                .map_err(|e| ConsoleError::internal("counting the embedding backlog", e))?;
            let waiting = total.saturating_sub(done);
            waiting_total += waiting;
            if waiting > 0 {
                backlog.push(context! { name => project.name.clone(), waiting, total });
            }
        }
    }
    let sidecar = match &state.app.athena {
        None => "not configured".to_owned(),
        Some(athena) => match athena.sidecar_pid().await {
            Some(pid) => format!("running (process {pid})"),
            None => "configured; starts on the first data query".to_owned(),
        },
    };
    let figures = crate::metrics::global().figures();
    let sessions: Vec<(String, i64)> = figures
        .sessions
        .iter()
        .map(|(transport, open)| ((*transport).to_owned(), *open))
        .collect();
    let events: Vec<(String, u64)> = figures
        .guardrail_events
        .iter()
        .map(|(kind, count)| ((*kind).to_owned(), *count))
        .collect();
    render(
        "server.html",
        &signed,
        None,
        context! {
            title => "Server",
            version => env!("CARGO_PKG_VERSION"),
            store => state.store.backend(),
            store_answers,
            embeddings => described(&embeddings.describe()),
            model_loaded => embeddings.current().is_some(),
            backlog,
            waiting_total,
            backlog_gauge => figures.embedding_backlog,
            counted_projects => listed.len().min(BACKLOG_PROJECTS),
            project_count => listed.len(),
            sidecar,
            sidecar_restarts => figures.sidecar_restarts,
            argon2_verifications => figures.argon2_verifications,
            sessions,
            tools => timed_rows(&figures.tools),
            store_operations => timed_rows(&figures.store),
            events,
        },
    )
}
