//! Repository snapshots in the store: one `repositories` row per pack (its version counts up
//! per repository URL per project) and one `repository_files` row per packed file, written in
//! a single transaction as the packer streams them; plus the shared token-count cache. The
//! records live in [`crate::domain::snapshot`].

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::domain::snapshot::*;

use super::{Actor, StoreResult};

/// Storage for snapshots and token counts, implemented by both backends.
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

/// The most rows a single insert statement carries.
pub(crate) const INSERT_ROWS: usize = 200;
