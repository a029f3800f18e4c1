//! The records Codifier keeps and the enums they carry: projects, memories, API keys and roles,
//! the audit log, playbook and MCP sessions, repository snapshots, embedding models, and the
//! guardrail records (skills, sharp edges, validations, decisions, issues). Every
//! other module speaks in these types; this one imports nothing else of ours, so the store, the
//! services and the transports can all depend on it without depending on each other.

pub mod access;
pub mod embedding;
/// Events and webhooks.
pub mod event;
pub mod guardrail;
pub mod memory;
/// The OAuth authorization server's clients, grants and tokens.
pub mod oauth;
pub mod plan;
pub mod project;
pub mod session;
pub mod snapshot;
/// Guardrail telemetry events.
pub mod telemetry;

use chrono::{DateTime, Utc};

pub use access::{
    Actor, ApiKey, ApiKeySecret, AuditEntry, ConsoleSession, ConsoleSubject, NewApiKey, Role,
};
pub use embedding::{EmbeddingJob, EmbeddingModel, cosine};
pub use event::{
    AttemptOutcome, Event, EventFilter, LeasedDelivery, NewWebhook, NextStep, Webhook,
    WebhookAttempt,
};
pub use memory::{
    Candidate, Cursor, Memory, MemoryDraft, MemoryFilter, MemoryPage, MemoryRevision, MemoryType,
    WriteOutcome,
};
pub use oauth::{NewTokenPair, OAuthClient, OAuthGrant, OAuthSwept, Redemption};
pub use plan::{
    AuditDraft, Plan, PlanDraft, PlanSummary, PlanTask, ProjectState, StateFields, StoredReply,
    TaskStatus, TaskWrite,
};
pub use project::{Project, ProjectCounts};
pub use session::{
    McpSessionRecord, PlaybookSession, SessionStatus, StepMemory, StepResult, StepResults,
    StepStatus,
};
pub use snapshot::{
    NewSnapshotFile, Snapshot, SnapshotChunk, SnapshotDraft, SnapshotFileEntry, SnapshotFileText,
    SnapshotFilter,
};
pub use telemetry::{GuardrailEventCount, GuardrailEventKind, NewGuardrailEvent};

/// The current time at the precision both stores keep (microseconds).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
