//! The Memories pages: search and list (the same hybrid search and filters as `fetch_context`,
//! paged by its cursors) and one memory with its revision history and a diff between versions.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::Value as Json;

use super::diff;
use super::session::Signed;
use super::{ConsoleError, render};
use crate::domain::{Memory, Role};
use crate::http::HttpState;
use crate::knowledge::memories::{self, FetchInput, Fetched};
use crate::knowledge::projects;
use crate::knowledge::search::SearchMode;

/// Memories shown per page.
const PAGE: i64 = 20;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    memory_type: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
    /// `hybrid` (or empty), `text` or `semantic`.
    #[serde(default)]
    mode: String,
}

/// The search mode the form chose; `None` for the default (hybrid, or words alone without a
/// model).
fn search_mode(text: &str) -> Result<Option<SearchMode>, ConsoleError> {
    match text.trim() {
        "" => Ok(None),
        "hybrid" => Ok(Some(SearchMode::Hybrid)),
        "text" => Ok(Some(SearchMode::Text)),
        "semantic" => Ok(Some(SearchMode::Semantic)),
        other => Err(ConsoleError::Status(
            axum::http::StatusCode::BAD_REQUEST,
            format!("The search mode `{other}` is not one of hybrid, text or semantic."),
        )),
    }
}

fn filled(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// How a memory's content is shown and edited: `string` (a JSON string), `text` (an object
/// holding only `text`, as `update_memory` stores plain text) or `json` (anything else).
pub fn content_kind(content: &Json) -> &'static str {
    match content {
        Json::String(_) => "string",
        Json::Object(fields)
            if fields.len() == 1 && fields.get("text").is_some_and(Json::is_string) =>
        {
            "text"
        }
        _ => "json",
    }
}

/// A memory's content as text: its words when it is text, else indented JSON.
pub fn content_text(content: &Json) -> String {
    match (content_kind(content), content) {
        (_, Json::String(text)) => text.clone(),
        ("text", _) => content["text"].as_str().unwrap_or_default().to_owned(),
        (_, other) => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn summary(memory: &Memory) -> Value {
    let text = content_text(&memory.content);
    let excerpt: String = text.chars().take(240).collect();
    context! {
        id => memory.id.to_string(),
        title => memory.title.clone(),
        memory_type => memory.memory_type.as_str(),
        tags => memory.tags.clone(),
        excerpt,
        truncated => text.chars().count() > 240,
        updated_at => memory.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

pub async fn list(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let tags: Vec<String> = query
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let input = FetchInput {
        memory_type: filled(&query.memory_type),
        tags,
        query: filled(&query.q),
        mode: search_mode(&query.mode)?,
        since: filled(&query.since),
        until: filled(&query.until),
        limit: Some(PAGE),
        cursor: filled(&query.cursor),
        deleted: false,
    };
    let knowledge = &state.app.knowledge;
    let (_, fetched) =
        memories::fetch(knowledge, &signed.identity, &found.id.to_string(), input).await?;
    let (rows, next, notice, mode) = match fetched {
        Fetched::Page(page) => (
            page.memories.iter().map(summary).collect::<Vec<_>>(),
            page.next.map(|cursor| cursor.encode()),
            None,
            None,
        ),
        Fetched::Search(result) => (
            result.memories.iter().map(summary).collect(),
            result.next_offset.map(memories::search_cursor),
            result.notice,
            Some(format!("{:?}", result.mode).to_lowercase()),
        ),
        Fetched::Deleted(_) => (Vec::new(), None, None, None),
    };
    let types: Vec<&str> = crate::domain::MemoryType::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    render(
        "memories.html",
        &signed,
        Some(&found),
        context! {
            title => format!("Memories · {}", found.name),
            memories => rows,
            next,
            notice,
            mode,
            types,
            query => context! {
                q => query.q, memory_type => query.memory_type, tags => query.tags,
                since => query.since, until => query.until, paged => !query.cursor.is_empty(),
                mode => query.mode,
            },
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Show what revision N changed: revision N against the version that replaced it.
    diff: Option<i32>,
}

/// A memory as lines for a diff: its fields, then its content.
fn diff_text(memory: &Memory) -> String {
    format!(
        "title: {}\ntype: {}\ntags: {}\ncategory: {}\ndescription: {}\n\n{}",
        memory.title,
        memory.memory_type.as_str(),
        memory.tags.join(", "),
        memory.category.as_deref().unwrap_or(""),
        memory.description.as_deref().unwrap_or(""),
        content_text(&memory.content)
    )
}

pub async fn page(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let (current, revisions) =
        memories::history(&state.store, &signed.identity, &found.id.to_string(), &id).await?;
    // Revisions come newest first; the version after revision N is N+1's, or the current one.
    let compared = query
        .diff
        .or_else(|| revisions.first().map(|revision| revision.revision));
    let diff = match compared {
        Some(number) => {
            let before = revisions
                .iter()
                .find(|revision| revision.revision == number)
                .ok_or_else(|| {
                    ConsoleError::NotFound(format!("this memory has no revision {number}"))
                })?;
            let next = revisions
                .iter()
                .find(|revision| revision.revision == number + 1);
            let (after, against) = match next {
                Some(next) => (&next.memory, format!("revision {}", number + 1)),
                None => (&current, "the current version".to_owned()),
            };
            let lines = diff::lines(&diff_text(&before.memory), &diff_text(after));
            Some(context! {
                revision => number,
                against,
                lines => lines.into_iter().map(|(kind, text)| context! { kind, text }).collect::<Vec<_>>(),
            })
        }
        None => None,
    };
    let history: Vec<Value> = revisions
        .iter()
        .map(|revision| {
            context! {
                revision => revision.revision,
                title => revision.memory.title.clone(),
                actor => revision.actor.clone(),
                tool => revision.tool.clone(),
                replaced_at => revision.replaced_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            }
        })
        .collect();
    render(
        "memory.html",
        &signed,
        Some(&found),
        context! {
            title => current.title.clone(),
            memory => context! {
                id => current.id.to_string(),
                title => current.title.clone(),
                memory_type => current.memory_type.as_str(),
                tags => current.tags.clone(),
                category => current.category.clone(),
                description => current.description.clone(),
                confidence => current.confidence,
                content => content_text(&current.content),
                created_at => current.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                updated_at => current.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            },
            history,
            diff,
        },
    )
}
