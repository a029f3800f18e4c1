//! [`MeteredStore`]: any [`Store`], with the time and failure of each operation recorded under
//! the operation's name. Every server store is wrapped in one (see `store::connect`).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::EmbeddingModel;
use crate::store::model::*;
use crate::store::{
    PlaybookSession, Snapshot, SnapshotChunk, SnapshotDraft, SnapshotFileEntry, SnapshotFileText,
    SnapshotFilter, SnapshotStore, StepMemory,
};
use crate::store::{Store, StoreResult};

/// A store whose operations are timed into [`super::global`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }
}

/// Implements a store trait for `MeteredStore` by timing a call to the inner store, one line per
/// operation: the compiler checks the list against the trait, so none can be forgotten.
macro_rules! metered {
    ($store_trait:ident { $($plain:item)* } $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl $store_trait for MeteredStore {
            $($plain)*
            $(
                async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    super::global().store_call(stringify!($name), started.elapsed(), result.is_err());
                    result
                }
            )*
        }
    };
}

metered! {
    Store {
        fn backend(&self) -> &'static str {
            self.inner.backend()
        }
    }
    fn ping(&self) -> ();
    fn migrate(&self) -> ();
    fn create_project(&self, actor: &Actor, name: &str, org: Option<&str>) -> Project;
    fn list_projects(&self) -> Vec<Project>;
    fn find_project(&self, id_or_name: &str) -> Option<Project>;
    fn create_memory(&self, project: Uuid, actor: &Actor, draft: &MemoryDraft) -> (Memory, WriteOutcome);
    fn update_memory(&self, project: Uuid, actor: &Actor, id: Uuid, draft: &MemoryDraft) -> (Memory, WriteOutcome);
    fn get_memory(&self, project: Uuid, id: Uuid) -> Option<Memory>;
    fn fetch_memories(&self, project: Uuid, filter: &MemoryFilter) -> MemoryPage;
    fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> Memory;
    fn list_audit(&self, project: Uuid, limit: u32) -> Vec<AuditEntry>;
    fn text_candidates(&self, project: Uuid, filter: &MemoryFilter, terms: &[String], match_all: bool, k: u32) -> Vec<Candidate>;
    fn vector_candidates(&self, project: Uuid, filter: &MemoryFilter, model: &EmbeddingModel, vector: &[f32], k: u32) -> Vec<Candidate>;
    fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> Vec<Memory>;
    fn prepare_vectors(&self, model: &EmbeddingModel) -> ();
    fn pending_embeddings(&self, project: Uuid, model: &EmbeddingModel, limit: u32) -> Vec<EmbeddingJob>;
    fn store_embedding(&self, project: Uuid, job: &EmbeddingJob, model: &EmbeddingModel, vector: &[f32]) -> ();
    fn embedding_progress(&self, project: Uuid, model: &EmbeddingModel) -> (u64, u64);
    fn memory_history(&self, project: Uuid, id: Uuid) -> Vec<MemoryRevision>;
    fn restore_revision(&self, project: Uuid, actor: &Actor, id: Uuid, revision: i32) -> Memory;
    fn list_deleted(&self, project: Uuid, limit: u32) -> Vec<Memory>;
    fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> Memory;
    fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> ApiKey;
    fn list_api_keys(&self, project: Option<Uuid>) -> Vec<ApiKey>;
    fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> ApiKey;
    fn find_api_key(&self, prefix: &str) -> Option<ApiKeySecret>;
    fn touch_api_key(&self, id: Uuid) -> ();
    fn create_playbook_session(&self, project: Uuid, actor: &Actor, session: &PlaybookSession) -> ();
    fn get_playbook_session(&self, project: Uuid, id: Uuid) -> Option<PlaybookSession>;
    fn list_playbook_sessions(&self, project: Uuid, limit: u32) -> Vec<PlaybookSession>;
    fn save_playbook_session(&self, project: Uuid, actor: &Actor, session: PlaybookSession, memories: &[StepMemory]) -> (PlaybookSession, Vec<(Memory, WriteOutcome)>);
    fn record_session_data(&self, project: Uuid, actor: &Actor, id: Uuid, key: &str, value: &serde_json::Value) -> PlaybookSession;
    fn load_mcp_session(&self, id: &str) -> Option<McpSessionRecord>;
    fn save_mcp_session_params(&self, id: &str, params: &serde_json::Value) -> ();
    fn claim_mcp_session(&self, id: &str, owner: &str) -> ();
    fn set_mcp_session_project(&self, id: &str, project: Uuid) -> ();
    fn delete_mcp_session(&self, id: &str) -> ();
}

metered! {
    SnapshotStore {}
    fn save_snapshot(&self, project: Uuid, actor: &Actor, draft: &SnapshotDraft, files: &mut tokio::sync::mpsc::Receiver<SnapshotChunk>) -> Snapshot;
    fn get_snapshot(&self, project: Uuid, id: Uuid) -> Option<Snapshot>;
    fn list_snapshots(&self, project: Uuid, filter: &SnapshotFilter) -> Vec<Snapshot>;
    fn snapshot_files(&self, project: Uuid, snapshot: Uuid) -> Vec<SnapshotFileEntry>;
    fn snapshot_texts(&self, project: Uuid, snapshot: Uuid, ordinals: &[i32]) -> Vec<SnapshotFileText>;
    fn token_counts(&self, encoding: &str, blob_ids: &[String]) -> std::collections::HashMap<String, u64>;
    fn record_token_counts(&self, encoding: &str, counts: &[(String, u64)]) -> ();
}
