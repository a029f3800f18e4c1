//! The Events page: a project's event timeline, a page at a time, and below it the events as
//! they happen, streamed from the same code as `GET /events` (the browser's `EventSource` sends
//! the session cookie, as it cannot send a bearer key).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::events::{self as timeline, EventQuery};
use crate::http::HttpState;
use crate::http::events::EventsQuery;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    cursor: String,
}

pub async fn page(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    Query(query): Query<PageQuery>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let wanted = EventQuery {
        cursor: Some(query.cursor.clone()).filter(|c| !c.trim().is_empty()),
        ..EventQuery::default()
    };
    let (found, page) = timeline::list(&state.store, &signed.identity, &project, &wanted).await?;
    let rows: Vec<Value> = page
        .events
        .iter()
        .map(|event| {
            context! {
                sequence => event.sequence,
                kind => event.kind.clone(),
                time => event.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor => event.actor.clone(),
                subject => event.subject.clone(),
            }
        })
        .collect();
    render(
        "events.html",
        &signed,
        Some(&found),
        context! {
            title => format!("Events · {}", found.name),
            events => rows,
            next => page.next_cursor,
        },
    )
}

/// The live stream for the page's script: `GET /events` for the session's identity.
pub async fn stream(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    signed: Signed,
) -> Response {
    let query = EventsQuery {
        project: Some(project),
        after: None,
    };
    crate::http::events::stream(
        State(state),
        Extension(signed.identity),
        Query(query),
        headers,
    )
    .await
}
