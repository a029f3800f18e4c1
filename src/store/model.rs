//! The records the store reads and writes, which live in [`crate::domain`]; named here too so
//! `store::model::*` keeps meaning what it did.

pub use crate::domain::{
    Actor, ApiKey, ApiKeySecret, AuditEntry, Candidate, Cursor, EmbeddingJob, McpSessionRecord,
    Memory, MemoryDraft, MemoryFilter, MemoryPage, MemoryRevision, NewApiKey, Project,
    WriteOutcome, now,
};
