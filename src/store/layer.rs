//! Layers: a type that holds an `inner: Arc<dyn Store>` and implements [`Store`](super::Store)
//! by passing each call through a hook of its own (timing it, answering from a cache, …).
//! [`forward_store!`](crate::forward_store) writes the forwarding for every operation, so a
//! layer names only what it does differently; the compiler checks the list against the traits,
//! so none can be forgotten. Used by the project cache ([`super::cache`]) and by `metrics`.

/// Implements every store trait for `$layer` (which has a field `inner: Arc<dyn Store>`): each
/// async operation's body is `$hook!(self, operation(args…))`, and the hook macro expands to
/// the call's result, usually by awaiting `self.inner.operation(args…)`.
#[macro_export]
macro_rules! forward_store {
    ($layer:ty, $hook:ident) => {
        const _: () = {
            use std::collections::HashMap;

            use async_trait::async_trait;
            use serde_json::Value;
            use tokio::sync::mpsc::Receiver;
            use uuid::Uuid;

            use $crate::store::*;

            #[async_trait]
            impl Store for $layer {
                fn backend(&self) -> &'static str {
                    self.inner.backend()
                }
                async fn ping(&self) -> StoreResult<()> {
                    $hook!(self, ping())
                }
                async fn migrate(&self) -> StoreResult<()> {
                    $hook!(self, migrate())
                }
            }

            $crate::forward_store!(@impl $layer, $hook, ProjectStore {
                fn create_project(actor: &Actor, name: &str, org: Option<&str>) -> Project;
                fn list_projects() -> Vec<Project>;
                fn find_project(id_or_name: &str) -> Option<Project>;
                fn update_project_metadata(actor: &Actor, project: Uuid, changes: &serde_json::Map<String, Value>) -> Project;
                fn project_counts(project: Uuid) -> ProjectCounts;
            });
            $crate::forward_store!(@impl $layer, $hook, MemoryStore {
                fn create_memory(project: Uuid, actor: &Actor, draft: &MemoryDraft) -> (Memory, WriteOutcome);
                fn update_memory(project: Uuid, actor: &Actor, id: Uuid, draft: &MemoryDraft) -> (Memory, WriteOutcome);
                fn put_memories(project: Uuid, actor: &Actor, items: &[(Uuid, MemoryDraft)]) -> Vec<(Memory, WriteOutcome)>;
                fn get_memory(project: Uuid, id: Uuid) -> Option<Memory>;
                fn fetch_memories(project: Uuid, filter: &MemoryFilter) -> MemoryPage;
                fn delete_memory(project: Uuid, actor: &Actor, id: Uuid) -> Memory;
                fn count_memories(project: Uuid) -> u64;
            });
            $crate::forward_store!(@impl $layer, $hook, RevisionStore {
                fn memory_history(project: Uuid, id: Uuid) -> Vec<MemoryRevision>;
                fn restore_revision(project: Uuid, actor: &Actor, id: Uuid, revision: i32) -> Memory;
                fn list_deleted(project: Uuid, limit: u32) -> Vec<Memory>;
                fn find_deleted(project: Uuid, id: Uuid) -> Option<Memory>;
                fn restore_deleted(project: Uuid, actor: &Actor, id: Uuid) -> Memory;
            });
            $crate::forward_store!(@impl $layer, $hook, AuditStore {
                fn list_audit(project: Uuid, limit: u32) -> Vec<AuditEntry>;
            });
            $crate::forward_store!(@impl $layer, $hook, SearchStore {
                fn text_candidates(project: Uuid, filter: &MemoryFilter, terms: &[String], match_all: bool, k: u32) -> Vec<Candidate>;
                fn vector_candidates(project: Uuid, filter: &MemoryFilter, model: &EmbeddingModel, vector: &[f32], k: u32) -> Vec<Candidate>;
                fn memories_by_ids(project: Uuid, ids: &[Uuid]) -> Vec<Memory>;
                fn exact_vector_candidates(project: Uuid, filter: &MemoryFilter, model: &EmbeddingModel, vector: &[f32], k: u32) -> Vec<Candidate>;
            });
            $crate::forward_store!(@impl $layer, $hook, EmbeddingStore {
                fn prepare_vectors(model: &EmbeddingModel) -> ();
                fn claim_embeddings(project: Uuid, limit: u32, claim: std::time::Duration) -> Vec<EmbeddingJob>;
                fn release_embeddings(project: Uuid, ids: &[Uuid]) -> ();
                fn store_embeddings(project: Uuid, model: &EmbeddingModel, done: &[(EmbeddingJob, Vec<f32>)]) -> ();
                fn embedding_progress(project: Uuid, model: &EmbeddingModel) -> (u64, u64);
            });
            $crate::forward_store!(@impl $layer, $hook, OAuthStore {
                fn create_oauth_client(client: &OAuthClient) -> ();
                fn find_oauth_client(client_id: &str) -> Option<OAuthClient>;
                fn create_oauth_grant(grant: &OAuthGrant) -> ();
                fn find_oauth_code(code_hash: &str) -> Option<OAuthGrant>;
                fn redeem_oauth_code(grant: Uuid, tokens: &NewTokenPair) -> Redemption;
                fn find_oauth_refresh(refresh_hash: &str) -> Option<OAuthGrant>;
                fn rotate_oauth_refresh(refresh_hash: &str, tokens: &NewTokenPair, narrow_to: Option<Role>) -> Redemption;
                fn find_oauth_access(access_hash: &str) -> Option<(OAuthGrant, chrono::DateTime<chrono::Utc>)>;
                fn revoke_oauth_token(token_hash: &str) -> bool;
                fn sweep_oauth(at: chrono::DateTime<chrono::Utc>, unused_before: chrono::DateTime<chrono::Utc>) -> OAuthSwept;
            });
            $crate::forward_store!(@impl $layer, $hook, KeyStore {
                fn create_api_key(actor: &Actor, key: &NewApiKey) -> ApiKey;
                fn list_api_keys(project: Option<Uuid>) -> Vec<ApiKey>;
                fn revoke_api_key(actor: &Actor, id_or_prefix: &str) -> ApiKey;
                fn find_api_key(prefix: &str) -> Option<ApiKeySecret>;
                fn touch_api_key(id: Uuid) -> ();
            });
            $crate::forward_store!(@impl $layer, $hook, PlaybookSessionStore {
                fn create_playbook_session(project: Uuid, actor: &Actor, session: &PlaybookSession) -> ();
                fn get_playbook_session(project: Uuid, id: Uuid) -> Option<PlaybookSession>;
                fn list_playbook_sessions(project: Uuid, limit: u32) -> Vec<PlaybookSession>;
                fn save_playbook_session(project: Uuid, actor: &Actor, session: PlaybookSession, memories: &[StepMemory]) -> (PlaybookSession, Vec<(Memory, WriteOutcome)>);
                fn record_session_data(project: Uuid, actor: &Actor, id: Uuid, key: &str, value: &Value) -> PlaybookSession;
            });
            $crate::forward_store!(@impl $layer, $hook, ConsoleSessionStore {
                fn create_console_session(session: &ConsoleSession) -> ();
                fn find_console_session(token_hash: &str) -> Option<ConsoleSession>;
                fn delete_console_session(token_hash: &str) -> ();
                fn delete_expired_console_sessions() -> u64;
            });
            $crate::forward_store!(@impl $layer, $hook, ServerSecretStore {
                fn server_secret(name: &str, candidate: &str) -> String;
            });
            $crate::forward_store!(@impl $layer, $hook, McpSessionStore {
                fn load_mcp_session(id: &str) -> Option<McpSessionRecord>;
                fn save_mcp_session_params(id: &str, params: &Value) -> ();
                fn claim_mcp_session(id: &str, owner: &str) -> ();
                fn set_mcp_session_project(id: &str, project: Uuid) -> ();
                fn delete_mcp_session(id: &str) -> ();
            });
            $crate::forward_store!(@impl $layer, $hook, SnapshotStore {
                fn save_snapshot(project: Uuid, actor: &Actor, draft: &SnapshotDraft, files: &mut Receiver<SnapshotChunk>) -> Snapshot;
                fn get_snapshot(project: Uuid, id: Uuid) -> Option<Snapshot>;
                fn list_snapshots(project: Uuid, filter: &SnapshotFilter) -> Vec<Snapshot>;
                fn snapshot_files(project: Uuid, snapshot: Uuid) -> Vec<SnapshotFileEntry>;
                fn snapshot_texts(project: Uuid, snapshot: Uuid, ordinals: &[i32]) -> Vec<SnapshotFileText>;
                fn token_counts(encoding: &str, blob_ids: &[String]) -> HashMap<String, u64>;
                fn record_token_counts(encoding: &str, counts: &[(String, u64)]) -> ();
            });
            $crate::forward_store!(@impl $layer, $hook, TelemetryStore {
                fn record_guardrail_events(project: Uuid, events: &[NewGuardrailEvent]) -> ();
                fn guardrail_event_counts(project: Uuid, since: chrono::DateTime<chrono::Utc>) -> Vec<GuardrailEventCount>;
            });
            // Plans and project state (issue 18, plans half).
            $crate::forward_store!(@impl $layer, $hook, PlanStore {
                fn create_plan(project: Uuid, actor: &Actor, draft: &PlanDraft) -> (Plan, bool);
                fn get_plan(project: Uuid, plan: Uuid) -> Option<Plan>;
                fn list_plans(project: Uuid, limit: u32) -> Vec<PlanSummary>;
                fn task_plan(project: Uuid, task: Uuid) -> Option<Uuid>;
                fn write_task(project: Uuid, actor: &Actor, write: &TaskWrite) -> ();
                fn task_reply(project: Uuid, key: &str) -> Option<StoredReply>;
                fn fail_overdue_tasks(project: Uuid, actor: &Actor, now: chrono::DateTime<chrono::Utc>) -> Vec<PlanTask>;
                fn plan_audit(project: Uuid, plan: Uuid) -> Vec<AuditEntry>;
            });
            $crate::forward_store!(@impl $layer, $hook, ProjectStateStore {
                fn project_state(project: Uuid) -> ProjectState;
                fn update_project_state(project: Uuid, actor: &Actor, read: i32, fields: &StateFields) -> ProjectState;
                fn project_state_history(project: Uuid, limit: u32) -> Vec<ProjectState>;
            });
            $crate::forward_store!(@impl $layer, $hook, EventStore {
                fn list_events(project: Uuid, filter: &EventFilter) -> Vec<Event>;
                fn latest_event_sequence(project: Uuid) -> i64;
            });
            $crate::forward_store!(@impl $layer, $hook, WebhookStore {
                fn create_webhook(project: Uuid, actor: &Actor, webhook: &NewWebhook) -> Webhook;
                fn list_webhooks(project: Uuid) -> Vec<Webhook>;
                fn delete_webhook(project: Uuid, actor: &Actor, id: Uuid) -> Webhook;
                fn test_webhook(project: Uuid, actor: &Actor, id: Uuid) -> i64;
                fn webhook_attempts(project: Uuid, webhook: Uuid, limit: u32) -> Vec<WebhookAttempt>;
                fn has_pending_deliveries(project: Uuid) -> bool;
                fn lease_deliveries(project: Uuid, lease_for: std::time::Duration, limit: u32) -> Vec<LeasedDelivery>;
                fn settle_and_lease(attempts: &[(LeasedDelivery, AttemptOutcome)], projects: &[Uuid], lease_for: std::time::Duration, limit: u32) -> Vec<LeasedDelivery>;
            });
        };
    };
    (@impl $layer:ty, $hook:ident, $store_trait:ident {
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*
    }) => {
        #[async_trait]
        impl $store_trait for $layer {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    $hook!(self, $name($($arg),*))
                }
            )*
        }
    };
}
