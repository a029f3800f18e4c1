//! Memories: what kind of knowledge each holds, a memory as stored and as written, how they are
//! filtered and paged, their earlier versions, and the search candidates the store returns.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What kind of knowledge a memory holds (the names of Codifier v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryType {
    Rule,
    Document,
    ApiContract,
    Learning,
    ResearchFinding,
    /// A gotcha of a stack: its `content` is a [`SharpEdge`](super::guardrail::SharpEdge).
    SharpEdge,
    /// A check run on code: its `content` is a [`Validation`](super::guardrail::Validation).
    Validation,
    /// A decision an agent recorded: its `content` is a [`Decision`](super::guardrail::Decision).
    Decision,
    /// An open or resolved problem: its `content` is an [`Issue`](super::guardrail::Issue).
    Issue,
    /// What a working session did, recorded at its end (`content` `{"text": …}`).
    SessionSummary,
    /// A skill of the shared library: its `content` is a [`Skill`](super::guardrail::Skill).
    /// Only the library project holds skills.
    Skill,
}

impl MemoryType {
    pub const ALL: [MemoryType; 11] = [
        MemoryType::Rule,
        MemoryType::Document,
        MemoryType::ApiContract,
        MemoryType::Learning,
        MemoryType::ResearchFinding,
        MemoryType::SharpEdge,
        MemoryType::Validation,
        MemoryType::Decision,
        MemoryType::Issue,
        MemoryType::SessionSummary,
        MemoryType::Skill,
    ];

    /// The five kinds of knowledge of Codifier v2, before the guardrail kinds were added.
    pub const KNOWLEDGE: [MemoryType; 5] = [
        MemoryType::Rule,
        MemoryType::Document,
        MemoryType::ApiContract,
        MemoryType::Learning,
        MemoryType::ResearchFinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::Rule => "rule",
            MemoryType::Document => "document",
            MemoryType::ApiContract => "api_contract",
            MemoryType::Learning => "learning",
            MemoryType::ResearchFinding => "research_finding",
            MemoryType::SharpEdge => "sharp_edge",
            MemoryType::Validation => "validation",
            MemoryType::Decision => "decision",
            MemoryType::Issue => "issue",
            MemoryType::SessionSummary => "session_summary",
            MemoryType::Skill => "skill",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for MemoryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

impl Memory {
    /// The names of the written fields whose values differ in `after`, in schema order.
    pub fn changed_fields(&self, after: &Memory) -> Vec<&'static str> {
        [
            ("memory_type", self.memory_type != after.memory_type),
            ("title", self.title != after.title),
            ("content", self.content != after.content),
            ("category", self.category != after.category),
            ("description", self.description != after.description),
            ("confidence", self.confidence != after.confidence),
            ("tags", self.tags != after.tags),
            ("source_role", self.source_role != after.source_role),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
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

/// One search hit from one half of a hybrid search, before fusion. Lists are ordered best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    /// The half's own score: cosine similarity for vectors, a text-rank for full text.
    pub score: f64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_type_parses_from_its_own_name() {
        for kind in MemoryType::ALL {
            assert_eq!(MemoryType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MemoryType::parse("Rule"), None);
    }
}
