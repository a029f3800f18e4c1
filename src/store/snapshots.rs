//! Repository snapshots in the store: one `repositories` row per pack (its version counts up
//! per repository URL per project) and one `repository_files` row per packed file, written in
//! a single transaction as the packer streams them; plus the shared token-count cache. The
//! records live in [`crate::domain::snapshot`]; the trait is [`super::SnapshotStore`].

pub use crate::domain::snapshot::*;

/// Rows per multi-row INSERT when a snapshot's files are written.
pub(crate) const INSERT_ROWS: usize = 200;
