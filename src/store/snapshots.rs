//! Repository snapshots in the store: one `repositories` row per pack (its version counts up
//! per repository URL per project) and one `repository_files` row per packed file, written in
//! a single transaction as the packer streams them; plus the shared token-count cache.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Cursor;

/// The snapshot row of a pack about to be written.
#[derive(Debug, Clone)]
pub struct SnapshotDraft {
    /// The repository URL without credentials (or the local path).
    pub url: String,
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub version_label: Option<String>,
    pub file_count: i64,
    pub token_count: i64,
    pub total_bytes: i64,
    pub file_tree: String,
    pub encoding: String,
    pub style: String,
    /// The pack's report: top files, skipped and redacted files.
    pub report: Value,
}

/// A stored snapshot, without its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    pub id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub version_label: Option<String>,
    /// 1 for the first pack of this URL in this project, counting up.
    pub version: i32,
    pub file_count: i64,
    pub token_count: i64,
    pub total_bytes: i64,
    pub file_tree: Option<String>,
    pub encoding: Option<String>,
    pub style: Option<String>,
    pub report: Value,
    pub created_at: DateTime<Utc>,
}

/// One file to store with a snapshot.
#[derive(Debug, Clone)]
pub struct NewSnapshotFile {
    pub path: String,
    pub blob_id: String,
    pub tokens: i64,
    pub content: String,
}

/// What the packer sends while a snapshot is written: batches of files, then `Done`. A channel
/// that closes before `Done` means the pack failed, and nothing is kept.
#[derive(Debug)]
pub enum SnapshotChunk {
    Files(Vec<NewSnapshotFile>),
    Done,
}

/// Which snapshots to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of this source (URL or path, as stored).
    pub url: Option<String>,
    pub limit: u32,
    /// Only snapshots older than this one (the last of the previous page).
    pub after: Option<Cursor>,
}

/// A stored file of a snapshot, without its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotFileEntry {
    /// The file's position in the pack (path order), from 0.
    pub ordinal: i32,
    pub path: String,
    pub tokens: i64,
    pub bytes: i64,
}

/// A stored file's text.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotFileText {
    pub ordinal: i32,
    pub path: String,
    pub tokens: i64,
    pub content: String,
}

/// The most rows a single insert statement carries.
pub(crate) const INSERT_ROWS: usize = 200;
