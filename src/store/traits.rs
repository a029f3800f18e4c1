//! The store's capabilities, one small trait each, and [`Store`], the one the application holds:
//! every capability plus the store's lifecycle. A backend implements each trait; a layer (see
//! [`forward_store`](crate::forward_store)) wraps any `Arc<dyn Store>`.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::*;

/// The persistence interface the application holds: every capability, plus the lifecycle.
#[async_trait]
pub trait Store:
    ProjectStore
    + MemoryStore
    + RevisionStore
    + AuditStore
    + SearchStore
    + EmbeddingStore
    + KeyStore
    + PlaybookSessionStore
    + McpSessionStore
    + ConsoleSessionStore
    + ServerSecretStore
    + OAuthStore
    + SnapshotStore
    + TelemetryStore
    + PlanStore
    + ProjectStateStore
    + EventStore
    + WebhookStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (`sqlite` or `postgres`), for health and logs.
    fn backend(&self) -> &'static str;
    /// Answers when the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Brings the schema up to date.
    async fn migrate(&self) -> StoreResult<()>;
}

/// Projects. Creating and listing every project is the operator's; a key sees only its own.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        org: Option<&str>,
    ) -> StoreResult<Project>;
    /// Every project, by name; never the skills library
    /// ([`LIBRARY_PROJECT`](crate::domain::guardrail::LIBRARY_PROJECT)), which is no one's.
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// Finds a project by id (when the text is a UUID) or else by exact name.
    async fn find_project(&self, id_or_name: &str) -> StoreResult<Option<Project>>;
    /// Sets top-level keys of a project's `metadata` object (`null` removes a key), audited as
    /// `project.update`; returns the project as it now is (unchanged when nothing differs).
    async fn update_project_metadata(
        &self,
        actor: &Actor,
        project: Uuid,
        changes: &serde_json::Map<String, Value>,
    ) -> StoreResult<Project>;
    /// How many live memories, snapshots, plans and playbook sessions `project` holds, counted
    /// inside its scope (row-level security applies as to any read of its rows).
    async fn project_counts(&self, project: Uuid) -> StoreResult<ProjectCounts>;
}

/// Memories, always inside one project.
#[async_trait]
pub trait MemoryStore: Send + Sync {
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
    /// Writes memories whose ids the caller chose, all in one transaction (any error writes
    /// none): each is inserted with its id, updated in place when it changed (a revision and an
    /// audit entry, as `update_memory`), brought back when it was deleted (`Created`), or left
    /// `Unchanged`. A new one whose type, title and content a live memory already has returns
    /// that memory `Unchanged`, as `create_memory` does. One result per item, in order.
    async fn put_memories(
        &self,
        project: Uuid,
        actor: &Actor,
        items: &[(Uuid, MemoryDraft)],
    ) -> StoreResult<Vec<(Memory, WriteOutcome)>>;
    async fn get_memory(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>>;
    async fn fetch_memories(&self, project: Uuid, filter: &MemoryFilter)
    -> StoreResult<MemoryPage>;
    /// Hides a memory from every read; the row and its audit trail stay.
    async fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory>;
    /// How many live memories a project has.
    async fn count_memories(&self, project: Uuid) -> StoreResult<u64>;
}

/// Earlier versions of memories and deleted memories, and bringing them back.
#[async_trait]
pub trait RevisionStore: MemoryStore {
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
    /// The deleted memory `id` of `project`; `None` when it is live or was never there.
    async fn find_deleted(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>>;
    /// Brings back a deleted memory.
    async fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory>;
}

/// The audit log: who changed what. Every write of the other capabilities appends to it.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// A project's entries, newest first.
    async fn list_audit(&self, project: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>>;
}

/// The two halves of a hybrid search. Both apply every filter of `filter` (type, tags, time
/// range) and return candidates best first; the caller fuses them.
#[async_trait]
pub trait SearchStore: Send + Sync {
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
    /// The exact nearest neighbours, by scanning every stored vector (no index, no cache), for
    /// measuring [`vector_candidates`](Self::vector_candidates)' recall. Only `codifier bench`
    /// uses it.
    async fn exact_vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>>;
}

/// Embedding jobs: which memories lack a vector of a model, and storing the vectors.
#[async_trait]
pub trait EmbeddingStore: Send + Sync {
    /// Prepares the store to search vectors of `model` (Postgres: its HNSW index), and makes
    /// every memory whose vector is of another model (or width) wait for one again, its old
    /// vector cleared: call it before claiming for `model`, and again when the model changes.
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()>;
    /// Claims for `claim` up to `limit` live memories of a project that wait for a vector
    /// (written, changed since their vector, or cleared by
    /// [`prepare_vectors`](Self::prepare_vectors)), oldest first, skipping those another caller
    /// claimed and still holds: two servers on one database never embed one memory twice
    /// (unless a claim runs out first). Storing the vector, or changing the memory, ends the
    /// claim.
    async fn claim_embeddings(
        &self,
        project: Uuid,
        limit: u32,
        claim: std::time::Duration,
    ) -> StoreResult<Vec<EmbeddingJob>>;
    /// Gives back claims taken by `claim_embeddings` and not used (the provider failed), so
    /// the next pass, here or on another server, takes those memories at once.
    async fn release_embeddings(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<()>;
    /// Records the vectors of a batch of jobs in one transaction; a memory whose text changed
    /// since its job was read keeps waiting (its vector is not stored).
    async fn store_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        done: &[(EmbeddingJob, Vec<f32>)],
    ) -> StoreResult<()>;
    /// Records a memory's vector, unless its text changed since the job was read.
    async fn store_embedding(
        &self,
        project: Uuid,
        job: &EmbeddingJob,
        model: &EmbeddingModel,
        vector: &[f32],
    ) -> StoreResult<()> {
        self.store_embeddings(project, model, &[(job.clone(), vector.to_vec())])
            .await
    }
    /// How many of a project's live memories have a vector of `model`, and how many there are.
    async fn embedding_progress(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<(u64, u64)>;
}

/// API keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, project: Option<Uuid>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key found by id or prefix; returns it, or `NotFound`.
    async fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> StoreResult<ApiKey>;
    /// The key with this public prefix and its hash, revoked or not.
    async fn find_api_key(&self, prefix: &str) -> StoreResult<Option<ApiKeySecret>>;
    async fn touch_api_key(&self, id: Uuid) -> StoreResult<()>;
}

/// Playbook sessions, always inside one project.
#[async_trait]
pub trait PlaybookSessionStore: Send + Sync {
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
        value: &Value,
    ) -> StoreResult<PlaybookSession>;
}

/// Web console sign-ins: a control table, found by the SHA-256 of the session token.
#[async_trait]
pub trait ConsoleSessionStore: Send + Sync {
    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    /// The session with this token hash, if it has not expired.
    async fn find_console_session(&self, token_hash: &str) -> StoreResult<Option<ConsoleSession>>;
    async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Forgets every session that has expired; returns how many.
    async fn delete_expired_console_sessions(&self) -> StoreResult<u64>;
}

/// Secrets every server on one database shares: a control table.
#[async_trait]
pub trait ServerSecretStore: Send + Sync {
    /// The secret called `name`: the stored one, or `candidate` when none was stored yet (it is
    /// stored then, so every server asking later gets the same value).
    async fn server_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
}

/// The OAuth authorization server's control tables: clients, grants and tokens, found by the
/// SHA-256 of a code or token.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn create_oauth_client(&self, client: &OAuthClient) -> StoreResult<()>;
    async fn find_oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>>;
    /// Stores a grant with its (unused) authorization code.
    async fn create_oauth_grant(&self, grant: &OAuthGrant) -> StoreResult<()>;
    /// The grant whose code has this hash, used or not, revoked or not.
    async fn find_oauth_code(&self, code_hash: &str) -> StoreResult<Option<OAuthGrant>>;
    /// Marks grant `grant`'s code used and stores `tokens` for it, in one transaction; a code
    /// used before revokes the grant (and so every token issued from it): `Reused`.
    async fn redeem_oauth_code(
        &self,
        grant: Uuid,
        tokens: &NewTokenPair,
    ) -> StoreResult<Redemption>;
    /// The grant a refresh token belongs to, used or not, revoked or not (to check a refresh
    /// request's resource and scope before the token is spent).
    async fn find_oauth_refresh(&self, refresh_hash: &str) -> StoreResult<Option<OAuthGrant>>;
    /// Rotates a refresh token: marks it used and stores `tokens` in its family, in one
    /// transaction; with `narrow_to` below the grant's role, the family is narrowed to it for
    /// good. A refresh token used before revokes its family (`Reused`); an unknown, expired or
    /// revoked one is `Invalid`.
    async fn rotate_oauth_refresh(
        &self,
        refresh_hash: &str,
        tokens: &NewTokenPair,
        narrow_to: Option<Role>,
    ) -> StoreResult<Redemption>;
    /// The grant of a live (unexpired, unrevoked) access token, with when the token ends.
    async fn find_oauth_access(
        &self,
        access_hash: &str,
    ) -> StoreResult<Option<(OAuthGrant, chrono::DateTime<chrono::Utc>)>>;
    /// Revokes the family of the access or refresh token with this hash (RFC 7009); whether
    /// there was one.
    async fn revoke_oauth_token(&self, token_hash: &str) -> StoreResult<bool>;
    /// Deletes tokens that ended by `at`, grants that are revoked or spent (code expired and
    /// no token left), and registered clients created before `unused_before` with no grant.
    async fn sweep_oauth(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        unused_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<OAuthSwept>;
}

/// MCP sessions of the Streamable HTTP transport.
#[async_trait]
pub trait McpSessionStore: Send + Sync {
    async fn load_mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>>;
    async fn save_mcp_session_params(&self, id: &str, params: &Value) -> StoreResult<()>;
    /// Records which key opened a session; a session already owned keeps its owner.
    async fn claim_mcp_session(&self, id: &str, owner: &str) -> StoreResult<()>;
    async fn set_mcp_session_project(&self, id: &str, project: Uuid) -> StoreResult<()>;
    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()>;
}

/// Repository snapshots and the shared token-count cache.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Writes a snapshot and the files received on `files` in one transaction, with the next
    /// version number for `draft.url` in `project`. Nothing is kept unless `Done` arrives.
    async fn save_snapshot(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &SnapshotDraft,
        files: &mut tokio::sync::mpsc::Receiver<SnapshotChunk>,
    ) -> StoreResult<Snapshot>;
    async fn get_snapshot(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>>;
    /// The project's snapshots, newest first (then by id), optionally of one URL and after a
    /// cursor; at most `filter.limit`.
    async fn list_snapshots(
        &self,
        project: Uuid,
        filter: &SnapshotFilter,
    ) -> StoreResult<Vec<Snapshot>>;
    /// Every file of a snapshot, in order, without text.
    async fn snapshot_files(
        &self,
        project: Uuid,
        snapshot: Uuid,
    ) -> StoreResult<Vec<SnapshotFileEntry>>;
    /// The text of some files of a snapshot, in order.
    async fn snapshot_texts(
        &self,
        project: Uuid,
        snapshot: Uuid,
        ordinals: &[i32],
    ) -> StoreResult<Vec<SnapshotFileText>>;
    /// Cached token counts for these blob ids.
    async fn token_counts(
        &self,
        encoding: &str,
        blob_ids: &[String],
    ) -> StoreResult<HashMap<String, u64>>;
    async fn record_token_counts(
        &self,
        encoding: &str,
        counts: &[(String, u64)],
    ) -> StoreResult<()>;
}

/// Guardrail telemetry, always inside one project.
#[async_trait]
pub trait TelemetryStore: Send + Sync {
    /// Records events in one transaction, all at the same time (now).
    async fn record_guardrail_events(
        &self,
        project: Uuid,
        events: &[NewGuardrailEvent],
    ) -> StoreResult<()>;
    /// How many events of each kind, subject and severity the project had since `since`, most
    /// frequent first.
    async fn guardrail_event_counts(
        &self,
        project: Uuid,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<GuardrailEventCount>>;
}

// Plans and project state (issue 18, plans half).

/// Plans and their tasks, always inside one project. Every change is audited in its
/// transaction (`plan.create`, `task.update` and the entries a [`TaskWrite`] carries).
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Stores a plan and its tasks (all `pending`), audited as `plan.create`. When the draft
    /// carries an idempotency key already used in the project, nothing is written: the plan made
    /// then is returned with `false`, or `Conflict` when it was made from another request.
    async fn create_plan(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &PlanDraft,
    ) -> StoreResult<(Plan, bool)>;
    async fn get_plan(&self, project: Uuid, plan: Uuid) -> StoreResult<Option<Plan>>;
    /// The project's plans, newest first (at most `limit`), each with its task counts, in one
    /// grouped query.
    async fn list_plans(&self, project: Uuid, limit: u32) -> StoreResult<Vec<PlanSummary>>;
    /// The plan id of a task of the project.
    async fn task_plan(&self, project: Uuid, task: Uuid) -> StoreResult<Option<Uuid>>;
    /// Writes a task's new state if it still has the status and attempt it was read with (else
    /// `Conflict`, and nothing changes), with the write's audit entries, checkpoint and reply.
    async fn write_task(&self, project: Uuid, actor: &Actor, write: &TaskWrite) -> StoreResult<()>;
    /// The reply kept for an `update_task` idempotency key of the project.
    async fn task_reply(&self, project: Uuid, key: &str) -> StoreResult<Option<StoredReply>>;
    /// Marks `failed` (reason `timeout`) every in-progress task of the project whose deadline
    /// is at or before `now`, each audited as `task.update`; returns them.
    async fn fail_overdue_tasks(
        &self,
        project: Uuid,
        actor: &Actor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<PlanTask>>;
    /// The audit entries about a plan and its tasks, oldest first.
    async fn plan_audit(&self, project: Uuid, plan: Uuid) -> StoreResult<Vec<AuditEntry>>;
}

/// A project's state (phase, checkpoint, confidence, assumptions, MCPs), every revision kept.
#[async_trait]
pub trait ProjectStateStore: Send + Sync {
    /// The current state; revision 0 with no fields when it was never set.
    async fn project_state(&self, project: Uuid) -> StoreResult<ProjectState>;
    /// Stores `fields` as revision `read + 1`, audited as `state.update`, if the current
    /// revision is still `read` (else `Conflict`, and nothing changes).
    async fn update_project_state(
        &self,
        project: Uuid,
        actor: &Actor,
        read: i32,
        fields: &StateFields,
    ) -> StoreResult<ProjectState>;
    /// Earlier and current revisions, newest first.
    async fn project_state_history(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<ProjectState>>;
}

// Events and webhooks (issue 18).

/// The event log: every audit entry of a project, numbered in commit order.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// A project's events after `filter.after`, in sequence order, at most `filter.limit`.
    async fn list_events(&self, project: Uuid, filter: &EventFilter) -> StoreResult<Vec<Event>>;
    /// The sequence number of a project's latest event (0 when it has none).
    async fn latest_event_sequence(&self, project: Uuid) -> StoreResult<i64>;
}

/// Webhook subscriptions, their outbox and its attempt log, always inside one project.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a subscription (audited as `webhook.create`, without its secret).
    async fn create_webhook(
        &self,
        project: Uuid,
        actor: &Actor,
        webhook: &NewWebhook,
    ) -> StoreResult<Webhook>;
    /// A project's subscriptions, oldest first.
    async fn list_webhooks(&self, project: Uuid) -> StoreResult<Vec<Webhook>>;
    /// Deletes a subscription with its pending deliveries and attempt log (audited as
    /// `webhook.delete`); `NotFound` when the project has no such webhook.
    async fn delete_webhook(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Webhook>;
    /// Writes a `webhook.test` event that only webhook `id` receives (through the outbox, like
    /// any event); returns the event's id. `NotFound` or `Conflict` (disabled) otherwise.
    async fn test_webhook(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<i64>;
    /// The latest attempts to deliver to a webhook, newest first.
    async fn webhook_attempts(
        &self,
        project: Uuid,
        webhook: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<WebhookAttempt>>;
    /// Whether a project has deliveries still to make (due now or later, leased or not).
    async fn has_pending_deliveries(&self, project: Uuid) -> StoreResult<bool>;
    /// Leases up to `limit` due deliveries of a project for `lease_for` (rows another server
    /// holds are skipped), oldest due first, with what is needed to send them.
    async fn lease_deliveries(
        &self,
        project: Uuid,
        lease_for: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<LeasedDelivery>>;
    /// One round of the deliverer, in one transaction: logs `attempts` (each in its event's
    /// project), moving each delivery on (delivered, due again, given up, or its webhook
    /// disabled) provided its lease still holds, then leases up to `limit` due deliveries in
    /// each of `projects` as [`lease_deliveries`](Self::lease_deliveries) does.
    async fn settle_and_lease(
        &self,
        attempts: &[(LeasedDelivery, AttemptOutcome)],
        projects: &[Uuid],
        lease_for: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<LeasedDelivery>>;
}
