//! Memory services: validate what a caller writes, check its key, and call the store.

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::*;
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::search::{self, SearchMode, SearchResult};
use crate::auth::Identity;
use crate::domain::{
    Actor, Cursor, EmbeddingJob, Memory, MemoryDraft, MemoryFilter, MemoryPage, MemoryRevision,
    Role, WriteOutcome,
};
use crate::store::{Store, StoreError, embedding_text};

/// An existing memory that a new one nearly repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NearDuplicate {
    pub id: Uuid,
    pub title: String,
    /// Cosine similarity of the two memories' embeddings, 0 to 1.
    pub similarity: f64,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteResult {
    pub memory: Memory,
    pub outcome: WriteOutcome,
    /// The fields an update changed (empty for a new memory or an unchanged one).
    pub changed: Vec<String>,
    /// The most similar existing memory, when it is nearly the same. Nothing was merged.
    pub near_duplicate: Option<NearDuplicate>,
    /// Whether the memory already has a vector (else the background worker will add it).
    pub embedded: bool,
}

/// The fields of a memory as a caller sends them, before validation.
#[derive(Debug, Clone, Default)]
pub struct MemoryInput {
    pub memory_type: String,
    pub title: String,
    pub content: Value,
    pub category: Option<String>,
    pub description: Option<String>,
    pub confidence: Option<f64>,
    pub tags: Vec<String>,
    pub source_role: Option<String>,
}

impl MemoryInput {
    /// Validates every field, naming the first that is wrong.
    pub fn parse(self) -> Result<MemoryDraft, KnowledgeError> {
        let memory_type = parse_memory_type(&self.memory_type)?;
        let title = required_text("title", &self.title, MAX_TITLE_CHARS)?;
        let category = optional_text("category", self.category.as_deref(), MAX_NAME_CHARS)?;
        let description = optional_text(
            "description",
            self.description.as_deref(),
            MAX_SHORT_TEXT_CHARS,
        )?;
        let confidence = confidence(self.confidence)?;
        let tags = tags(&self.tags)?;
        let source_role =
            optional_text("source_role", self.source_role.as_deref(), MAX_NAME_CHARS)?;
        content(&self.content)?;
        let content = crate::guardrails::own::normalize(memory_type, self.content)
            .map_err(KnowledgeError::Invalid)?;
        Ok(MemoryDraft {
            memory_type,
            title,
            content,
            category,
            description,
            confidence,
            tags,
            source_role,
        })
    }
}

/// Reads a memory type, listing the accepted names when it is not one.
pub fn parse_memory_type(text: &str) -> Result<MemoryType, KnowledgeError> {
    MemoryType::parse(text.trim()).ok_or_else(|| {
        let names: Vec<&str> = MemoryType::ALL.iter().map(|kind| kind.as_str()).collect();
        KnowledgeError::Invalid(format!(
            "`memory_type` is `{text}`: send one of {}",
            names.join(", ")
        ))
    })
}

/// Parses a memory id.
pub fn parse_memory_id(text: &str) -> Result<Uuid, KnowledgeError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`id` is `{text}`: send the UUID of a memory, as fetch_context returns it"
        ))
    })
}

/// What `update_memory` sends. A new memory needs `memory_type`, `title` and `content`; an
/// update by id changes only the fields it names (`None` keeps a field, `Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct MemoryChange {
    pub memory_type: Option<String>,
    pub title: Option<String>,
    pub content: Option<Value>,
    pub category: Option<Option<String>>,
    pub description: Option<Option<String>>,
    /// `Some(None)` resets it to 1.
    pub confidence: Option<Option<f64>>,
    /// `Some(vec![])` clears them.
    pub tags: Option<Vec<String>>,
    pub source_role: Option<Option<String>>,
}

impl MemoryChange {
    /// The whole new memory, naming every required field that is missing.
    fn into_new(self) -> Result<MemoryInput, KnowledgeError> {
        let missing: Vec<&str> = [
            ("memory_type", self.memory_type.is_none()),
            ("title", self.title.is_none()),
            ("content", self.content.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(field, _)| field)
        .collect();
        if !missing.is_empty() {
            return Err(KnowledgeError::Invalid(format!(
                "{} missing: a new memory needs `memory_type`, `title` and `content` (send `id` to change only some fields of an existing memory)",
                missing
                    .iter()
                    .map(|field| format!("`{field}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if missing.len() == 1 { " is" } else { " are" }
            )));
        }
        Ok(MemoryInput {
            memory_type: self.memory_type.unwrap_or_default(),
            title: self.title.unwrap_or_default(),
            content: self.content.unwrap_or_default(),
            category: self.category.flatten(),
            description: self.description.flatten(),
            confidence: self.confidence.flatten(),
            tags: self.tags.unwrap_or_default(),
            source_role: self.source_role.flatten(),
        })
    }

    /// `current` with the fields this change names replaced.
    fn applied_to(self, current: &Memory) -> MemoryInput {
        MemoryInput {
            memory_type: self
                .memory_type
                .unwrap_or_else(|| current.memory_type.as_str().to_owned()),
            title: self.title.unwrap_or_else(|| current.title.clone()),
            content: self.content.unwrap_or_else(|| current.content.clone()),
            category: self.category.unwrap_or_else(|| current.category.clone()),
            description: self
                .description
                .unwrap_or_else(|| current.description.clone()),
            confidence: self.confidence.unwrap_or(Some(current.confidence)),
            tags: self.tags.unwrap_or_else(|| current.tags.clone()),
            source_role: self
                .source_role
                .unwrap_or_else(|| current.source_role.clone()),
        }
    }
}

/// Creates a memory, or changes the fields of the one `id` names (keeping the others). A new
/// or changed memory is embedded at once when a model is ready, and a near duplicate is named
/// in the result; nothing is merged or deleted.
pub async fn write(
    knowledge: &KnowledgeBase,
    identity: &Identity,
    tool: &str,
    project: &str,
    id: Option<&str>,
    change: MemoryChange,
) -> Result<WriteResult, KnowledgeError> {
    let store = &knowledge.store;
    let id = id.map(parse_memory_id).transpose()?;
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    let (memory, outcome, changed) = match id {
        Some(id) => {
            let project = projects::resolve(store, identity, project, Role::Write).await?;
            let current = store.get_memory(project.id, id).await?.ok_or_else(|| {
                KnowledgeError::NotFound(format!(
                    "memory {id} is not in this project (or is deleted: see fetch_context with `deleted: true`)"
                ))
            })?;
            let draft = change.applied_to(&current).parse()?;
            let (memory, outcome) = store.update_memory(project.id, &actor, id, &draft).await?;
            let changed = current
                .changed_fields(&memory)
                .into_iter()
                .map(str::to_owned)
                .collect();
            (memory, outcome, changed)
        }
        None => {
            let draft = change.into_new()?.parse()?;
            let project = projects::resolve(store, identity, project, Role::Write).await?;
            let (memory, outcome) = store.create_memory(project.id, &actor, &draft).await?;
            (memory, outcome, Vec::new())
        }
    };
    let mut result = WriteResult {
        memory,
        outcome,
        changed,
        near_duplicate: None,
        embedded: false,
    };
    if outcome == WriteOutcome::Unchanged {
        return Ok(result);
    }
    let project_id = result.memory.project_id;
    let Some(embedder) = knowledge.embeddings.current() else {
        knowledge.embeddings.wake();
        return Ok(result);
    };
    let job = EmbeddingJob {
        id: result.memory.id,
        text: embedding_text(&result.memory.title, &result.memory.content),
        updated_at: result.memory.updated_at,
    };
    // The memory is stored whatever happens here: a failed embedding is retried in the background.
    let vector = match embedder.embed(std::slice::from_ref(&job.text)).await {
        Ok(mut vectors) => vectors.pop().unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "embedding a new memory failed; the background worker will retry");
            knowledge.embeddings.wake();
            return Ok(result);
        }
    };
    let neighbours = store
        .vector_candidates(
            project_id,
            &MemoryFilter::default(),
            embedder.model(),
            &vector,
            2,
        )
        .await?;
    store
        .store_embedding(project_id, &job, embedder.model(), &vector)
        .await?;
    result.embedded = true;
    let nearest = neighbours.into_iter().find(|c| c.id != result.memory.id);
    if let Some(nearest) = nearest.filter(|c| c.score >= f64::from(knowledge.duplicate_threshold))
        && let Some(other) = store.get_memory(project_id, nearest.id).await?
    {
        result.near_duplicate = Some(NearDuplicate {
            id: other.id,
            title: other.title,
            similarity: nearest.score,
        });
    }
    Ok(result)
}

/// What a caller asks `fetch_context` for, before validation.
#[derive(Debug, Clone, Default)]
pub struct FetchInput {
    pub memory_type: Option<String>,
    pub tags: Vec<String>,
    pub query: Option<String>,
    pub mode: Option<SearchMode>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// List deleted memories instead (keys that may write).
    pub deleted: bool,
}

/// What `fetch` found: a page in time order, a ranked search, or deleted memories.
#[derive(Debug)]
pub enum Fetched {
    Page(MemoryPage),
    Search(SearchResult),
    Deleted(Vec<Memory>),
}

/// Reads a time bound: an RFC 3339 timestamp or a date (midnight UTC).
fn parse_time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, KnowledgeError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(time.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| Some(time.and_utc()))
        .ok_or_else(|| {
            KnowledgeError::Invalid(format!(
                "`{field}` is `{text}`: send a date like 2026-01-31 or a time like 2026-01-31T09:00:00Z"
            ))
        })
}

const SEARCH_CURSOR: &str = "search:";

/// Reads memories of a project: newest first, or ranked by a `query` (hybrid by default).
pub async fn fetch(
    knowledge: &KnowledgeBase,
    identity: &Identity,
    project: &str,
    input: FetchInput,
) -> Result<(Uuid, Fetched), KnowledgeError> {
    let store = &knowledge.store;
    let query = optional_text("query", input.query.as_deref(), MAX_QUERY_CHARS)?;
    let cursor = input
        .cursor
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let bad_cursor = || {
        KnowledgeError::Invalid(
            "`cursor` is not one this server issued for this kind of read: send `next_cursor` from the previous page, or leave it out".into(),
        )
    };
    let (after, offset) = match (cursor, &query) {
        (None, _) => (None, 0),
        (Some(text), Some(_)) => {
            let offset = text
                .strip_prefix(SEARCH_CURSOR)
                .and_then(|n| n.parse().ok());
            (None, offset.ok_or_else(bad_cursor)?)
        }
        (Some(text), None) => (Some(Cursor::parse(text).ok_or_else(bad_cursor)?), 0),
    };
    let filter = MemoryFilter {
        memory_type: input
            .memory_type
            .as_deref()
            .map(parse_memory_type)
            .transpose()?,
        tags: tags(&input.tags)?,
        query: None,
        since: parse_time("since", input.since.as_deref())?,
        until: parse_time("until", input.until.as_deref())?,
        limit: limit(input.limit)?,
        after,
    };
    if input.deleted {
        // A key that may delete may also see what it deleted, to undo it.
        let project = projects::resolve(store, identity, project, Role::Write).await?;
        return Ok((
            project.id,
            Fetched::Deleted(store.list_deleted(project.id, filter.limit).await?),
        ));
    }
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    let Some(query) = query else {
        return Ok((
            project.id,
            Fetched::Page(store.fetch_memories(project.id, &filter).await?),
        ));
    };
    let found = search::search(
        store,
        &knowledge.embeddings,
        project.id,
        &filter,
        &query,
        input.mode.unwrap_or_default(),
        offset,
    )
    .await?;
    Ok((project.id, Fetched::Search(found)))
}

/// The cursor for the page of a search that starts at `offset`.
pub fn search_cursor(offset: u32) -> String {
    format!("{SEARCH_CURSOR}{offset}")
}

/// How many live memories a project has (read role).
pub async fn count(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
) -> Result<u64, KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    Ok(store.count_memories(project.id).await?)
}

/// Earlier versions of a memory, newest first.
pub async fn history(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    id: &str,
) -> Result<(Memory, Vec<MemoryRevision>), KnowledgeError> {
    let id = parse_memory_id(id)?;
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    let current = store.get_memory(project.id, id).await?.ok_or_else(|| {
        KnowledgeError::NotFound(format!(
            "memory {id} is not in this project (or is deleted)"
        ))
    })?;
    Ok((current, store.memory_history(project.id, id).await?))
}

/// Restores revision `revision` of a memory, or with no revision brings back a deleted memory
/// (write role either way: a key that may delete may undo it).
pub async fn restore(
    knowledge: &KnowledgeBase,
    identity: &Identity,
    tool: &str,
    project: &str,
    id: &str,
    revision: Option<i64>,
) -> Result<Memory, KnowledgeError> {
    let store = &knowledge.store;
    let id = parse_memory_id(id)?;
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    let memory = match revision {
        Some(revision) => {
            let revision = i32::try_from(revision)
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| {
                    KnowledgeError::Invalid(format!(
                        "`revision` is {revision}: send a revision number from memory_history"
                    ))
                })?;
            let project = projects::resolve(store, identity, project, Role::Write).await?;
            store
                .restore_revision(project.id, &actor, id, revision)
                .await?
        }
        None => {
            let project = projects::resolve(store, identity, project, Role::Write).await?;
            store.restore_deleted(project.id, &actor, id).await?
        }
    };
    knowledge.embeddings.wake();
    Ok(memory)
}

/// Hides a memory from every read (it stays in the store and the audit log, and
/// `restore_memory` brings it back).
pub async fn delete(
    store: &Arc<dyn Store>,
    identity: &Identity,
    tool: &str,
    project: &str,
    id: &str,
) -> Result<Memory, KnowledgeError> {
    let id = parse_memory_id(id)?;
    let project = projects::resolve(store, identity, project, Role::Write).await?;
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    match store.delete_memory(project.id, &actor, id).await {
        Err(StoreError::NotFound(_)) if store.find_deleted(project.id, id).await?.is_some() => {
            Err(KnowledgeError::Conflict(format!(
                "memory {id} is already deleted: bring it back with restore_memory and this `id` (no `revision`)"
            )))
        }
        Err(StoreError::NotFound(_)) => Err(KnowledgeError::NotFound(format!(
            "memory {id} is not in this project: find its id with fetch_context"
        ))),
        other => Ok(other?),
    }
}
