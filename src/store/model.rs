//! Records the store reads and writes, shared by both backends.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Role;
use crate::knowledge::MemoryType;

/// A project: the unit of tenancy. Every memory, snapshot and session belongs to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub org: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored memory, as every read returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Memory {
    pub id: Uuid,
    pub project_id: Uuid,
    pub memory_type: MemoryType,
    pub title: String,
    pub content: Value,
    pub category: Option<String>,
    pub description: Option<String>,
    pub confidence: f64,
    pub tags: Vec<String>,
    pub source_role: Option<String>,
    pub usage_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a memory as a caller writes them, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryDraft {
    pub memory_type: MemoryType,
    pub title: String,
    pub content: Value,
    pub category: Option<String>,
    pub description: Option<String>,
    pub confidence: f64,
    pub tags: Vec<String>,
    pub source_role: Option<String>,
}

/// What a write did, so the caller can be told plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// A new memory was stored.
    Created,
    /// An existing memory was changed.
    Updated,
    /// The same content already existed in the project; nothing was written.
    Unchanged,
}

/// Filters for reading memories; every filter must match.
#[derive(Debug, Clone, Default)]
pub struct MemoryFilter {
    pub memory_type: Option<MemoryType>,
    /// Every tag listed must be on the memory.
    pub tags: Vec<String>,
    /// Case-insensitive text that must occur in the title or the content.
    pub query: Option<String>,
    /// Only memories created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only memories created before this time.
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    pub after: Option<Cursor>,
}

/// A position in the newest-first order of memories: the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Reads a cursor produced by [`Cursor::encode`].
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some(Self {
            created_at,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// One page of memories and where the next one starts.
#[derive(Debug, Clone)]
pub struct MemoryPage {
    pub memories: Vec<Memory>,
    pub next: Option<Cursor>,
}

/// An API key as listed: never the secret, never the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub project_id: Uuid,
    pub prefix: String,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API key with its argon2id hash, for verification only.
#[derive(Debug, Clone)]
pub struct ApiKeySecret {
    pub key: ApiKey,
    pub hash: String,
}

/// A new API key to store; the secret itself is never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub project_id: Uuid,
    pub prefix: String,
    pub hash: String,
    pub role: Role,
    pub label: Option<String>,
}

/// One entry of the audit log: who changed what, when, through which tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub project_id: Option<Uuid>,
    pub actor: String,
    pub tool: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

/// Who is making a change and through which tool, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A label that identifies the caller without revealing a secret (key prefix, `operator`, `local`).
    pub label: String,
    /// The MCP tool or CLI command that made the change.
    pub tool: String,
}

/// An MCP session over Streamable HTTP, kept so it survives a restart and stays with its key.
#[derive(Debug, Clone, Default)]
pub struct McpSessionRecord {
    pub owner: Option<String>,
    pub initialize_params: Option<Value>,
    pub active_project_id: Option<Uuid>,
}

/// The current time at the precision both stores keep (microseconds).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// One search hit from one half of a hybrid search, before fusion. Lists are ordered best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    /// The half's own score: cosine similarity for vectors, a text-rank for full text.
    pub score: f64,
}

/// A memory whose vector is missing: its id, the text to embed, and the version it was read at
/// (a vector is only stored if the memory has not changed since).
#[derive(Debug, Clone)]
pub struct EmbeddingJob {
    pub id: Uuid,
    pub text: String,
    pub updated_at: DateTime<Utc>,
}

/// An earlier version of a memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryRevision {
    /// 1 for the first version replaced, counting up.
    pub revision: i32,
    /// The memory as it was before the change that replaced it.
    pub memory: Memory,
    /// Who replaced it, and through which tool.
    pub actor: String,
    pub tool: Option<String>,
    /// When it was replaced.
    pub replaced_at: DateTime<Utc>,
}

impl From<&Memory> for MemoryDraft {
    fn from(memory: &Memory) -> Self {
        MemoryDraft {
            memory_type: memory.memory_type,
            title: memory.title.clone(),
            content: memory.content.clone(),
            category: memory.category.clone(),
            description: memory.description.clone(),
            confidence: memory.confidence,
            tags: memory.tags.clone(),
            source_role: memory.source_role.clone(),
        }
    }
}
