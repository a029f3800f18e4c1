//! The store: small capability traits ([`ProjectStore`], [`MemoryStore`], [`RevisionStore`],
//! [`AuditStore`], [`SearchStore`], [`EmbeddingStore`], [`KeyStore`], [`PlaybookSessionStore`],
//! [`McpSessionStore`], [`SnapshotStore`], [`TelemetryStore`], [`PlanStore`], [`ProjectStateStore`]) combined into [`Store`], the one the application
//! holds, and two backends: embedded SQLite (the default) and Postgres with pgvector, where
//! tenant isolation is enforced by row-level security.
//!
//! Every tenant operation takes the project it acts in. The services above check that the caller
//! may act there; the Postgres backend checks again in the database (RLS), so a bug above cannot
//! read or change another project's rows.
//!
//! Layout:
//! - `traits.rs`: the capability traits and [`Store`].
//! - `sql/`: the SQL both databases accept, written once, and every capability over it,
//!   implemented for any [`sql::Backend`]; `sql/values.rs` says how UUIDs, times and JSON cross
//!   into each database (Postgres natively, SQLite as text).
//! - `sqlite.rs` + `sqlite/`, `postgres.rs` + `postgres/`: what truly differs — connecting,
//!   transactions (SQLite's up-front write lock; Postgres's tenant transactions under RLS), the
//!   tag filter, and the search halves (FTS5 and a vector cache; the tsvector word planner and
//!   pgvector).
//! - `layer.rs` ([`forward_store!`](crate::forward_store)) and `cache.rs`: layers that wrap any
//!   `Arc<dyn Store>` (the project cache here; the metrics layer lives in `metrics`).
//!
//! # Adding a table
//! 1. A migration for each backend, numbered next: `migrations/sqlite/NNNN_name.sql` (UUIDs,
//!    times and JSON as `TEXT`; times written by [`sql::values`] sort as text) and
//!    `migrations/postgres/NNNN_name.sql` (`uuid`, `timestamptz`, `jsonb`). A tenant table on
//!    Postgres must also, as `migrations/postgres/0001_foundation.sql` shows: `GRANT` its
//!    operations to `codifier_tenant`, `ENABLE` and `FORCE ROW LEVEL SECURITY`, and
//!    `CREATE POLICY tenant_scope … TO codifier_tenant USING (project_id =
//!    nullif(current_setting('codifier.project_id', true), '')::uuid)` with the same
//!    `WITH CHECK`. Without the policy the table is open to every project. Never edit a
//!    migration that has shipped.
//! 2. Its records in the domain module, and a capability trait in `traits.rs` (added to
//!    [`Store`]'s supertraits and to the list in `layer.rs`).
//! 3. One file in `sql/`: a row type whose columns use [`sql::Id`], [`sql::Time`],
//!    [`sql::Json`] and [`sql::Tags`] where the databases differ, `$N` placeholders, and
//!    `impl<B: Backend> NewStore for B`. Tenant statements run in `self.tenant(project, …)`
//!    and still filter on `project_id` (the second guard, and SQLite's only one); tables no
//!    project owns use `self.control()` or `self.connection()`; every change writes
//!    [`sql::audit::audit`] in its transaction.
//! 4. A backend adds code only for what its database does differently; give the fragment a
//!    hook on [`sql::Backend`] (as `LOCK_ROWS`, `position_in` and `push_filters` are) rather
//!    than a second implementation.
//! 5. Tests in the store conformance suite run the new capability on both backends.

pub mod cache;
pub mod layer;
pub mod model;
pub mod postgres;
#[cfg(test)]
pub(crate) mod scratch;
pub mod sessions;
pub mod snapshots;
pub(crate) mod sql;
pub mod sqlite;
mod traits;

use std::sync::Arc;

// The records' enums and the embedding model live in the domain module.
pub use crate::domain::{EmbeddingModel, MemoryType, Role};

pub use crate::domain::{
    AttemptOutcome, Event, EventFilter, LeasedDelivery, NewWebhook, NextStep, Webhook,
    WebhookAttempt,
};
pub use crate::domain::{ConsoleSession, ConsoleSubject, ProjectCounts};
pub use crate::domain::{GuardrailEventCount, GuardrailEventKind, NewGuardrailEvent};
pub use crate::domain::{NewTokenPair, OAuthClient, OAuthGrant, OAuthSwept, Redemption};
// Plans and project state (issue 18, plans half).
pub use crate::domain::{
    AuditDraft, Plan, PlanDraft, PlanSummary, PlanTask, ProjectState, StateFields, StoredReply,
    TaskStatus, TaskWrite,
};
pub use model::*;
pub use sessions::{
    PlaybookSession, SessionStatus, StepMemory, StepResult, StepResults, StepStatus,
};
pub use snapshots::{
    NewSnapshotFile, Snapshot, SnapshotChunk, SnapshotDraft, SnapshotFileEntry, SnapshotFileText,
    SnapshotFilter,
};
pub use traits::{
    AuditStore, ConsoleSessionStore, EmbeddingStore, EventStore, KeyStore, McpSessionStore,
    MemoryStore, PlaybookSessionStore, ProjectStore, RevisionStore, SearchStore, SnapshotStore,
    Store, TelemetryStore, WebhookStore,
};
pub use traits::{OAuthStore, PlanStore, ProjectStateStore, ServerSecretStore};

/// The statement [`EmbeddingStore::claim_embeddings`] runs on `backend` (a [`Store::backend`]
/// name), for tests that read its query plan.
pub fn embedding_claim_sql(backend: &str) -> String {
    let lock_rows = if backend == "postgres" {
        <postgres::PgStore as sql::Backend>::LOCK_ROWS
    } else {
        <sqlite::SqliteStore as sql::Backend>::LOCK_ROWS
    };
    sql::embeddings::claim_sql(lock_rows)
}

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

/// Opens the store a database URL names (`sqlite:` or `postgres:`/`postgresql:`), behind the
/// project cache. (The server also times it for `/metrics`: see `app::open_store`.)
pub async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(postgres::PgStore::connect(url).await?)
    } else {
        anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:")
    };
    Ok(Arc::new(cache::ProjectCache::new(store)))
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

/// The audit detail (the event's `data`) of a memory write, small whatever the memory's size:
/// its title and type, and for a change of one that existed the names of the fields that
/// changed and the `revision` that keeps the previous version (`memory_history` reads it).
pub(crate) fn memory_audit_detail(
    before: Option<(&Memory, i64)>,
    after: &Memory,
) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "title": after.title,
        "memory_type": after.memory_type,
    });
    if let Some((before, revision)) = before {
        detail["changed"] = before.changed_fields(after).into();
        detail["revision"] = revision.into();
    }
    detail
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
