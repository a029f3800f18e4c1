//! The [`Store`] trait and its two backends: embedded SQLite (the default) and Postgres with
//! pgvector, where tenant isolation is enforced by row-level security.
//!
//! Every tenant operation takes the project it acts in. The services above check that the caller
//! may act there; the Postgres backend checks again in the database (RLS), so a bug above cannot
//! read or change another project's rows.

pub mod model;
pub mod postgres;
pub mod sessions;
pub mod snapshots;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::EmbeddingModel;

pub use model::*;
pub use sessions::{PlaybookSession, SessionStatus, StepMemory};
pub use snapshots::{
    NewSnapshotFile, Snapshot, SnapshotChunk, SnapshotDraft, SnapshotFileEntry, SnapshotFileText,
    SnapshotFilter, SnapshotStore,
};

/// What can go wrong in the store, by the kind a caller branches on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The persistence interface shared by the SQLite and Postgres backends.
#[async_trait]
pub trait Store: SnapshotStore + Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for health and logs.
    fn backend(&self) -> &'static str;
    /// Answers when the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Brings the schema up to date.
    async fn migrate(&self) -> StoreResult<()>;

    // Projects. Creating and listing every project is the operator's; a key sees only its own.
    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        org: Option<&str>,
    ) -> StoreResult<Project>;
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// Finds a project by id (when the text is a UUID) or else by exact name.
    async fn find_project(&self, id_or_name: &str) -> StoreResult<Option<Project>>;

    // Memories, always inside one project.
    /// Creates a memory, or returns the existing one when the same content is already stored.
    async fn create_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)>;
    /// Replaces the fields of an existing memory.
    async fn update_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)>;
    async fn get_memory(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>>;
    async fn fetch_memories(&self, project: Uuid, filter: &MemoryFilter)
    -> StoreResult<MemoryPage>;
    /// Hides a memory from every read; the row and its audit trail stay.
    async fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory>;
    async fn list_audit(&self, project: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    // Search halves. Both apply every filter of `filter` (type, tags, time range) and return
    // candidates best first; the caller fuses them.
    /// Full-text candidates containing every one of `terms` (`match_all`) or any of them
    /// (already split into words).
    async fn text_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        terms: &[String],
        match_all: bool,
        k: u32,
    ) -> StoreResult<Vec<Candidate>>;
    /// Nearest neighbours of `vector` among memories embedded by `model` (cosine similarity).
    async fn vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>>;
    /// The live memories with these ids, in no particular order.
    async fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Memory>>;

    // Embeddings.
    /// Prepares the store to search vectors of `model` (Postgres: its HNSW index).
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()>;
    /// Live memories of a project with no vector of `model` yet, oldest first.
    async fn pending_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        limit: u32,
    ) -> StoreResult<Vec<EmbeddingJob>>;
    /// Records a memory's vector, unless its text changed since the job was read.
    async fn store_embedding(
        &self,
        project: Uuid,
        job: &EmbeddingJob,
        model: &EmbeddingModel,
        vector: &[f32],
    ) -> StoreResult<()>;
    /// How many of a project's live memories have a vector of `model`, and how many there are.
    async fn embedding_progress(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<(u64, u64)>;

    // Revisions and restore.
    /// Earlier versions of a memory, newest first.
    async fn memory_history(&self, project: Uuid, id: Uuid) -> StoreResult<Vec<MemoryRevision>>;
    /// Makes revision `revision` the current version; the version it replaces becomes a revision.
    async fn restore_revision(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        revision: i32,
    ) -> StoreResult<Memory> {
        let wanted = self
            .memory_history(project, id)
            .await?
            .into_iter()
            .find(|entry| entry.revision == revision)
            .ok_or_else(|| StoreError::NotFound(format!("revision {revision} of memory {id}")))?;
        let draft = MemoryDraft::from(&wanted.memory);
        Ok(self.update_memory(project, actor, id, &draft).await?.0)
    }
    /// Deleted memories, most recently deleted first.
    async fn list_deleted(&self, project: Uuid, limit: u32) -> StoreResult<Vec<Memory>>;
    /// Brings back a deleted memory.
    async fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory>;

    // API keys.
    async fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, project: Option<Uuid>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key found by id or prefix; returns it, or `NotFound`.
    async fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> StoreResult<ApiKey>;
    /// The key with this public prefix and its hash, revoked or not.
    async fn find_api_key(&self, prefix: &str) -> StoreResult<Option<ApiKeySecret>>;
    async fn touch_api_key(&self, id: Uuid) -> StoreResult<()>;

    // Playbook sessions, always inside one project.
    async fn create_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: &PlaybookSession,
    ) -> StoreResult<()>;
    async fn get_playbook_session(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<PlaybookSession>>;
    /// A project's sessions, most recently changed first.
    async fn list_playbook_sessions(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<PlaybookSession>>;
    /// Saves a session's new state, which must carry the stored revision plus one (else
    /// `Conflict`, and nothing changes), and creates the memories its steps produced in the same
    /// transaction, noting each one's id as `memory_id` in its step's result.
    async fn save_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: PlaybookSession,
        memories: &[StepMemory],
    ) -> StoreResult<(PlaybookSession, Vec<(Memory, WriteOutcome)>)>;
    /// Keeps `value` under `key` in an active session's collected data (e.g. a `query_data`
    /// result); the caller caps its size.
    async fn record_session_data(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        key: &str,
        value: &serde_json::Value,
    ) -> StoreResult<PlaybookSession>;

    // MCP sessions of the Streamable HTTP transport.
    async fn load_mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>>;
    async fn save_mcp_session_params(
        &self,
        id: &str,
        params: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Records which key opened a session; a session already owned keeps its owner.
    async fn claim_mcp_session(&self, id: &str, owner: &str) -> StoreResult<()>;
    async fn set_mcp_session_project(&self, id: &str, project: Uuid) -> StoreResult<()>;
    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()>;
}

/// Opens the store a database URL names (`sqlite:` or `postgres:`/`postgresql:`), its
/// operations timed for `/metrics`.
pub async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(postgres::PgStore::connect(url).await?)
    } else {
        anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:")
    };
    Ok(Arc::new(crate::metrics::MeteredStore::new(store)))
}

/// True when a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The identity of a memory's content: the same type, title and content hash the same.
/// JSON objects serialise with sorted keys, so key order does not change the hash.
pub(crate) fn content_hash(draft: &MemoryDraft) -> String {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for part in [
        draft.memory_type.as_str().as_bytes(),
        b"\0",
        draft.title.as_bytes(),
        b"\0",
        draft.content.to_string().as_bytes(),
    ] {
        sha2::Digest::update(&mut hasher, part);
    }
    hex::encode(sha2::Digest::finalize(hasher))
}

/// Whether writing `draft` over `memory` would change nothing.
pub(crate) fn draft_matches(memory: &Memory, draft: &MemoryDraft) -> bool {
    memory.memory_type == draft.memory_type
        && memory.title == draft.title
        && memory.content == draft.content
        && memory.category == draft.category
        && memory.description == draft.description
        && memory.confidence == draft.confidence
        && memory.tags == draft.tags
        && memory.source_role == draft.source_role
}

/// The audit detail for a memory write: what it looked like before, when it existed.
pub(crate) fn memory_audit_detail(before: Option<&Memory>, after: &Memory) -> serde_json::Value {
    serde_json::json!({
        "title": after.title,
        "memory_type": after.memory_type,
        "before": before,
    })
}

/// Cuts a result fetched with one extra row down to `limit` and says where the next page starts.
pub(crate) fn page(memories: &mut Vec<Memory>, limit: u32) -> MemoryPage {
    let limit = limit as usize;
    let next = (memories.len() > limit).then(|| {
        memories.truncate(limit);
        memories.last().map(|last| Cursor {
            created_at: last.created_at,
            id: last.id,
        })
    });
    MemoryPage {
        memories: std::mem::take(memories),
        next: next.flatten(),
    }
}

/// The strings of a memory's content, joined by newlines: what full-text search and embeddings read.
pub fn content_text(content: &serde_json::Value) -> String {
    fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => out.push(text.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
            serde_json::Value::Object(map) => map.values().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut parts = Vec::new();
    collect(content, &mut parts);
    parts.join("\n")
}

/// The text a memory is embedded from: its title and the strings of its content.
pub fn embedding_text(title: &str, content: &serde_json::Value) -> String {
    format!("{title}\n{}", content_text(content))
}
