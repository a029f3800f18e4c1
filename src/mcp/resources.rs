//! Repository snapshots as MCP resources: `resources/list` names the snapshots of every project
//! the caller may read (a key: its own project only), newest first, in pages; `resources/read`
//! returns one snapshot's whole packed text. The first page also names each readable project's
//! event log ([`super::event_resource`]). A snapshot the caller may not read is answered as
//! one that does not exist.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};

use crate::auth::Identity;
use crate::domain::{Cursor, Snapshot, SnapshotFilter};
use crate::knowledge::snapshots::{self, SnapshotInfo};
use crate::knowledge::{KnowledgeError, projects};
use crate::store::Store;

/// How many resources one `resources/list` page holds.
const PAGE: u32 = 50;

/// One page of the snapshots the caller may read, newest first over all its projects.
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
    cursor: Option<String>,
) -> Result<ListResourcesResult, ErrorData> {
    let after = match cursor.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            ErrorData::invalid_params(
                "this cursor was not issued by resources/list: send nextCursor from the previous page",
                None,
            )
        })?),
        None => None,
    };
    let first_page = after.is_none();
    let visible = projects::list(store, identity).await.map_err(internal)?;
    let filter = SnapshotFilter {
        url: None,
        limit: PAGE + 1,
        after,
    };
    let mut found: Vec<(Snapshot, String)> = Vec::new();
    for project in &visible {
        let snapshots = store
            .list_snapshots(project.id, &filter)
            .await
            .map_err(|error| internal(error.into()))?;
        found.extend(snapshots.into_iter().map(|s| (s, project.name.clone())));
    }
    found.sort_by_key(|(snapshot, _)| std::cmp::Reverse((snapshot.created_at, snapshot.id)));
    let more = found.len() > PAGE as usize;
    found.truncate(PAGE as usize);
    let next_cursor = more.then(|| found.last()).flatten().map(|(last, _)| {
        Cursor {
            created_at: last.created_at,
            id: last.id,
        }
        .encode()
    });
    let logs = match first_page {
        true => super::event_resource::listed(&visible),
        false => Vec::new(),
    };
    let mut result = ListResourcesResult::with_all_items(
        logs.into_iter()
            .chain(
                found
                    .iter()
                    .map(|(snapshot, project)| resource(snapshot, project)),
            )
            .collect(),
    );
    result.next_cursor = next_cursor;
    Ok(result)
}

/// A snapshot's whole packed text.
pub async fn read(
    store: &Arc<dyn Store>,
    identity: &Identity,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let (project, snapshot) = snapshots::parse_resource_uri(uri).ok_or_else(|| {
        ErrorData::invalid_params(
            format!(
                "`{uri}` is not a snapshot's URI: resources/list gives them, shaped {}<project id>/snapshots/<snapshot id>",
                snapshots::RESOURCE_PREFIX
            ),
            None,
        )
    })?;
    match snapshots::read_whole(store, identity, project, snapshot).await {
        Ok((found, text)) => Ok(ReadResourceResult::new(vec![
            ResourceContents::TextResourceContents {
                uri: uri.trim().to_owned(),
                mime_type: Some(mime_type(found.style.as_deref()).to_owned()),
                text,
                meta: None,
            },
        ])),
        // Another project's snapshot and a missing one read the same.
        Err(KnowledgeError::NotFound(_) | KnowledgeError::Forbidden(_)) => Err(
            ErrorData::resource_not_found(format!("no snapshot at `{uri}` for this caller"), None),
        ),
        Err(KnowledgeError::Invalid(message)) => Err(ErrorData::invalid_params(message, None)),
        Err(error) => Err(internal(error)),
    }
}

fn resource(snapshot: &Snapshot, project: &str) -> Resource {
    let info = SnapshotInfo::from(snapshot);
    let label = info
        .version_label
        .as_deref()
        .map(|label| format!(" ({label})"))
        .unwrap_or_default();
    let commit = match &info.commit_sha {
        Some(commit) => {
            let dirty = info
                .working_tree
                .as_ref()
                .filter(|tree| tree.dirty)
                .map(|_| " with uncommitted changes")
                .unwrap_or_default();
            format!("commit {}{dirty}; ", &commit[..commit.len().min(12)])
        }
        None => String::new(),
    };
    Resource::new(info.uri.clone(), format!("{} v{}", info.url, info.version))
        .with_title(format!(
            "Snapshot of {}, version {}{label}",
            info.url, info.version
        ))
        .with_description(format!(
            "Project {project}; {commit}{} files, {} tokens; packed {}",
            info.file_count,
            info.token_count,
            info.created_at.format("%Y-%m-%d %H:%M UTC")
        ))
        .with_mime_type(mime_type(info.style.as_deref()))
}

fn mime_type(style: Option<&str>) -> &'static str {
    match style {
        Some("markdown") => "text/markdown",
        Some("json") => "application/json",
        // The xml style is repomix's layout, text around elements: not an XML document.
        _ => "text/plain",
    }
}

fn internal(error: KnowledgeError) -> ErrorData {
    tracing::error!(%error, "a snapshot resource could not be read");
    ErrorData::internal_error(
        "the server could not read its snapshots; try again shortly",
        None,
    )
}
