//! Memory services: validate what a caller writes, check its key, and call the store.

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::auth::{Identity, Role};
use crate::store::{
    Actor, Cursor, Memory, MemoryDraft, MemoryFilter, MemoryPage, Store, WriteOutcome,
};

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
        content(&self.content)?;
        Ok(MemoryDraft {
            memory_type,
            title: required_text("title", &self.title, MAX_TITLE_CHARS)?,
            content: self.content,
            category: optional_text("category", self.category.as_deref(), MAX_NAME_CHARS)?,
            description: optional_text(
                "description",
                self.description.as_deref(),
                MAX_SHORT_TEXT_CHARS,
            )?,
            confidence: confidence(self.confidence)?,
            tags: tags(&self.tags)?,
            source_role: optional_text("source_role", self.source_role.as_deref(), MAX_NAME_CHARS)?,
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

/// Creates a memory, or updates the one `id` names.
pub async fn write(
    store: &Arc<dyn Store>,
    identity: &Identity,
    tool: &str,
    project: &str,
    id: Option<&str>,
    input: MemoryInput,
) -> Result<(Memory, WriteOutcome), KnowledgeError> {
    let id = id.map(parse_memory_id).transpose()?;
    let draft = input.parse()?;
    let project = projects::resolve(store, identity, project, Role::Write).await?;
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    Ok(match id {
        Some(id) => store.update_memory(project.id, &actor, id, &draft).await?,
        None => store.create_memory(project.id, &actor, &draft).await?,
    })
}

/// What a caller asks `fetch_context` for, before validation.
#[derive(Debug, Clone, Default)]
pub struct FetchInput {
    pub memory_type: Option<String>,
    pub tags: Vec<String>,
    pub query: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Reads one page of a project's memories, newest first.
pub async fn fetch(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    input: FetchInput,
) -> Result<(Uuid, MemoryPage), KnowledgeError> {
    let filter = MemoryFilter {
        memory_type: input.memory_type.as_deref().map(parse_memory_type).transpose()?,
        tags: tags(&input.tags)?,
        query: optional_text("query", input.query.as_deref(), MAX_QUERY_CHARS)?,
        limit: limit(input.limit)?,
        after: input
            .cursor
            .as_deref()
            .map(|text| {
                Cursor::parse(text).ok_or_else(|| {
                    KnowledgeError::Invalid(
                        "`cursor` is not one this server issued: send `next_cursor` from the previous page, or leave it out".into(),
                    )
                })
            })
            .transpose()?,
    };
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    Ok((project.id, store.fetch_memories(project.id, &filter).await?))
}

/// Hides a memory from every read (it stays in the store and the audit log).
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
    Ok(store.delete_memory(project.id, &actor, id).await?)
}
