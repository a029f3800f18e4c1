//! The Snapshots pages: a project's repository snapshots, newest first and paged (what
//! `list_snapshots` lists), and one snapshot read a page of files at a time, optionally only
//! the paths matching a glob (what `read_snapshot` reads).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::domain::Role;
use crate::http::HttpState;
use crate::knowledge::{projects, snapshots};

/// Snapshots listed per page, and bytes of file text shown per page of a snapshot.
const LIST_PAGE: u32 = 20;
const PAGE_BYTES: u64 = 50_000;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    cursor: String,
}

pub async fn list(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let cursor = Some(query.cursor.as_str()).filter(|c| !c.trim().is_empty());
    let listed = snapshots::list(
        &state.store,
        &signed.identity,
        &found.id.to_string(),
        None,
        LIST_PAGE,
        cursor,
    )
    .await?;
    let rows: Vec<Value> = listed
        .snapshots
        .iter()
        .map(|snapshot| {
            context! {
                id => snapshot.id.to_string(),
                url => snapshot.url.clone(),
                version => snapshot.version,
                version_label => snapshot.version_label.clone(),
                commit => snapshot.commit_sha.as_deref().map(|sha| sha.chars().take(12).collect::<String>()),
                branch => snapshot.branch.clone(),
                files => snapshot.file_count,
                tokens => snapshot.token_count,
                created_at => snapshot.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            }
        })
        .collect();
    render(
        "snapshots.html",
        &signed,
        Some(&found),
        context! {
            title => format!("Snapshots · {}", found.name),
            snapshots => rows,
            next => listed.next_cursor,
            paged => cursor.is_some(),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ReadQuery {
    page: Option<u32>,
    /// A glob of the paths to show (all files when empty).
    #[serde(default)]
    files: String,
}

pub async fn read(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    Query(query): Query<ReadQuery>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let filter: Vec<String> = Some(query.files.trim().to_owned())
        .filter(|glob| !glob.is_empty())
        .into_iter()
        .collect();
    let page = snapshots::read_page(
        &state.store,
        &signed.identity,
        &found.id.to_string(),
        &id,
        &filter,
        query.page.unwrap_or(1).max(1),
        PAGE_BYTES,
        false,
    )
    .await?;
    let files: Vec<Value> = page
        .files
        .iter()
        .map(|part| {
            context! { path => part.path.clone(), tokens => part.tokens, part => part.part.clone(), content => part.content.clone() }
        })
        .collect();
    let info = &page.snapshot;
    render(
        "snapshot.html",
        &signed,
        Some(&found),
        context! {
            title => format!("{} v{}", info.url, info.version),
            snapshot => context! {
                id => info.id.to_string(),
                url => info.url.clone(),
                version => info.version,
                commit => info.commit_sha.clone(),
                files => info.file_count,
                tokens => info.token_count,
            },
            files,
            page => page.page,
            pages => page.pages,
            next_page => page.next_page,
            previous_page => (page.page > 1).then(|| page.page - 1),
            matching_files => page.matching_files,
            glob => query.files,
        },
    )
}
