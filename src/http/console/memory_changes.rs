//! Changing a memory from the console: edit, restore a revision, delete. Each form goes
//! through [`Posted`] (session, same origin, CSRF token) and then the same memory services as
//! `update_memory`, `restore_memory` and `delete_memory`, which check the key's role.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::Value as Json;

use super::memories::{content_kind, content_text};
use super::session::{Posted, Signed};
use super::{ConsoleError, render};
use crate::domain::Role;
use crate::http::HttpState;
use crate::knowledge::memories::{self, MemoryChange};
use crate::knowledge::{KnowledgeError, projects};

/// The tool name these changes are audited under.
const TOOL: &str = "console";

fn memory_url(project: &str, id: &str) -> String {
    format!("/console/projects/{project}/memories/{id}")
}

pub async fn edit_form(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    // The edit form is for keys that may write; a read key gets the refusal a write would.
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Write).await?;
    let (current, _) =
        memories::history(&state.store, &signed.identity, &found.id.to_string(), &id).await?;
    let types: Vec<&str> = crate::domain::MemoryType::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    render(
        "memory_edit.html",
        &signed,
        Some(&found),
        context! {
            title => format!("Edit · {}", current.title),
            types,
            memory => context! {
                id => current.id.to_string(),
                title => current.title.clone(),
                memory_type => current.memory_type.as_str(),
                tags => current.tags.join(", "),
                description => current.description.clone().unwrap_or_default(),
                content => content_text(&current.content),
                content_kind => content_kind(&current.content),
            },
        },
    )
}

#[derive(Deserialize)]
pub struct EditForm {
    title: String,
    memory_type: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    description: String,
    content: String,
    /// `string`, `text` or `json`: see [`content_kind`].
    #[serde(default)]
    content_kind: String,
}

pub async fn edit(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    posted: Posted<EditForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    let content = match form.content_kind.as_str() {
        "json" => serde_json::from_str::<Json>(&form.content).map_err(|error| {
            ConsoleError::from(KnowledgeError::Invalid(format!(
                "The content is not valid JSON ({error}): fix it, or go back and edit it as it was."
            )))
        })?,
        "text" => serde_json::json!({ "text": form.content.replace("\r\n", "\n") }),
        _ => Json::String(form.content.replace("\r\n", "\n")),
    };
    let description = Some(form.description.trim().to_owned()).filter(|d| !d.is_empty());
    let change = MemoryChange {
        memory_type: Some(form.memory_type),
        title: Some(form.title),
        content: Some(content),
        description: Some(description),
        tags: Some(
            form.tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        ..MemoryChange::default()
    };
    let knowledge = &state.app.knowledge;
    let written = memories::write(
        knowledge,
        &signed.identity,
        TOOL,
        &project,
        Some(&id),
        change,
    )
    .await?;
    Ok(Redirect::to(&memory_url(&project, &written.memory.id.to_string())).into_response())
}

#[derive(Deserialize)]
pub struct RestoreForm {
    revision: i64,
}

pub async fn restore(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    posted: Posted<RestoreForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    let knowledge = &state.app.knowledge;
    memories::restore(
        knowledge,
        &signed.identity,
        TOOL,
        &project,
        &id,
        Some(form.revision),
    )
    .await?;
    Ok(Redirect::to(&memory_url(&project, &id)).into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    posted: Posted<DeleteForm>,
) -> Result<Response, ConsoleError> {
    memories::delete(&state.store, &posted.signed.identity, TOOL, &project, &id).await?;
    Ok(Redirect::to(&format!("/console/projects/{project}/memories")).into_response())
}
