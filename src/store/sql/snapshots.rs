//! Snapshots (tenant rows: a `repositories` row per pack, a `repository_files` row per file,
//! written in one transaction as the packer streams them) and the shared token-count cache
//! (no tenant data).

use std::collections::HashMap;

use async_trait::async_trait;
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Id, Json, Sql, Time, is_unique};
use crate::store::snapshots::*;
use crate::store::{Actor, SnapshotStore, StoreError, StoreResult, now};

const SNAPSHOT_COLUMNS: &str = "id, project_id, url, commit_sha, branch, version_label, version, \
     file_count, token_count, total_bytes, file_tree, encoding, style, report, created_at";

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    id: Id,
    project_id: Id,
    url: String,
    commit_sha: Option<String>,
    branch: Option<String>,
    version_label: Option<String>,
    version: i32,
    file_count: i32,
    token_count: i64,
    total_bytes: i64,
    file_tree: Option<String>,
    encoding: Option<String>,
    style: Option<String>,
    report: Json,
    created_at: Time,
}

impl From<SnapshotRow> for Snapshot {
    fn from(row: SnapshotRow) -> Self {
        Snapshot {
            id: row.id.0,
            project_id: row.project_id.0,
            url: row.url,
            commit_sha: row.commit_sha,
            branch: row.branch,
            version_label: row.version_label,
            version: row.version,
            file_count: i64::from(row.file_count),
            token_count: row.token_count,
            total_bytes: row.total_bytes,
            file_tree: row.file_tree,
            encoding: row.encoding,
            style: row.style,
            report: row.report.0,
            created_at: row.created_at.0,
        }
    }
}

/// `INSERT … VALUES` for `rows` rows of `columns` values each: `($1, $2), ($3, $4)`.
fn values(insert: &str, rows: usize, columns: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!("{insert} VALUES {}", tuples.join(", "))
}

/// `$first, $first+1, …`: placeholders for `count` values bound from the `first`.
fn list(first: usize, count: usize) -> String {
    let cells: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    cells.join(", ")
}

/// Inserts the snapshot row with the next version of its URL in the project.
async fn insert_snapshot<B: Backend>(
    tx: &mut impl Conn,
    project: Uuid,
    draft: &SnapshotDraft,
) -> StoreResult<SnapshotRow> {
    // Two packs of one repository at once would read the same `MAX(version)` and the second
    // to commit would fail on the unique key. SQLite's write transaction already runs them one
    // after the other; on Postgres each waits for the other's transaction on a lock of the
    // (project, url) pair, then reads the version that one committed. A lock, not a retry: the
    // transaction holds the pack's files, so retrying would mean packing again.
    if !B::LOCK_ROWS.is_empty() {
        let key = format!("repositories {project} {}", draft.url);
        let lock = Sql::new("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").arg(key);
        tx.execute(lock).await?;
    }
    let sql = Sql::new(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM repositories WHERE project_id = $1 AND url = $2",
    )
    .arg(project)
    .arg(&draft.url);
    let (version,): (i32,) = tx.fetch_one(sql).await?;
    let insert = format!("INSERT INTO repositories ({SNAPSHOT_COLUMNS})");
    let sql = Sql::new(format!(
        "{} RETURNING {SNAPSHOT_COLUMNS}",
        values(&insert, 1, 15)
    ))
    .arg(Uuid::new_v4())
    .arg(project)
    .arg(&draft.url)
    .arg(draft.commit_sha.as_deref())
    .arg(draft.branch.as_deref())
    .arg(draft.version_label.as_deref())
    .arg(version)
    .arg(draft.file_count as i32)
    .arg(draft.token_count)
    .arg(draft.total_bytes)
    .arg(draft.file_tree.as_str())
    .arg(draft.encoding.as_str())
    .arg(draft.style.as_str())
    .arg(&draft.report)
    .arg(now());
    tx.fetch_one(sql).await.map_err(|error| {
        if is_unique(&error) {
            StoreError::Conflict(
                "another pack of this repository was stored at the same moment: pack again".into(),
            )
        } else {
            error
        }
    })
}

/// Stores the files received until `Done`; returns how many. A channel that closes first
/// means the pack failed.
async fn insert_files(
    tx: &mut impl Conn,
    project: Uuid,
    snapshot: Uuid,
    files: &mut Receiver<SnapshotChunk>,
) -> StoreResult<i32> {
    let mut ordinal = 0i32;
    loop {
        let batch = match files.recv().await {
            Some(SnapshotChunk::Files(batch)) => batch,
            Some(SnapshotChunk::Done) => return Ok(ordinal),
            None => {
                return Err(StoreError::Conflict(
                    "the pack stopped before it finished; nothing was stored".into(),
                ));
            }
        };
        for rows in batch.chunks(INSERT_ROWS) {
            let insert = "INSERT INTO repository_files \
                          (snapshot_id, project_id, ordinal, path, blob_id, tokens, bytes, content)";
            let mut sql = Sql::new(values(insert, rows.len(), 8));
            for file in rows {
                sql = sql
                    .arg(snapshot)
                    .arg(project)
                    .arg(ordinal)
                    .arg(file.path.as_str())
                    .arg(file.blob_id.as_str())
                    .arg(file.tokens)
                    .arg(file.content.len() as i64)
                    .arg(file.content.as_str());
                ordinal += 1;
            }
            tx.execute(sql).await?;
        }
    }
}

#[async_trait]
impl<B: Backend> SnapshotStore for B {
    async fn save_snapshot(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &SnapshotDraft,
        files: &mut Receiver<SnapshotChunk>,
    ) -> StoreResult<Snapshot> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let row = insert_snapshot::<B>(&mut *tx, project, draft).await?;
        let count = insert_files(&mut *tx, project, row.id.0, files).await?;
        let detail =
            serde_json::json!({ "url": draft.url, "version": row.version, "files": count });
        audit(
            &mut *tx,
            project,
            actor,
            "snapshot.store",
            &row.id.0.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(row.into())
    }

    async fn get_snapshot(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>> {
        let sql = Sql::new(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = $1 AND id = $2"
        ))
        .arg(project)
        .arg(id);
        let mut tx = self.tenant(project, Access::Read).await?;
        let row: Option<SnapshotRow> = tx.fetch_optional(sql).await?;
        Ok(row.map(Snapshot::from))
    }

    async fn list_snapshots(
        &self,
        project: Uuid,
        filter: &SnapshotFilter,
    ) -> StoreResult<Vec<Snapshot>> {
        let mut sql = Sql::new(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = "
        ));
        sql.push_arg(project);
        if let Some(url) = &filter.url {
            sql.push(" AND url = ").push_arg(url.as_str());
        }
        if let Some(after) = &filter.after {
            sql.push(" AND (created_at, id) < (")
                .push_arg(after.created_at)
                .push(", ")
                .push_arg(after.id)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_arg(i64::from(filter.limit));
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<SnapshotRow> = tx.fetch_all(sql).await?;
        Ok(rows.into_iter().map(Snapshot::from).collect())
    }

    async fn snapshot_files(
        &self,
        project: Uuid,
        snapshot: Uuid,
    ) -> StoreResult<Vec<SnapshotFileEntry>> {
        let sql = Sql::new(
            "SELECT ordinal, path, tokens, bytes FROM repository_files \
             WHERE project_id = $1 AND snapshot_id = $2 ORDER BY ordinal",
        )
        .arg(project)
        .arg(snapshot);
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<(i32, String, i64, i64)> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|(ordinal, path, tokens, bytes)| SnapshotFileEntry {
                ordinal,
                path,
                tokens,
                bytes,
            })
            .collect())
    }

    async fn snapshot_texts(
        &self,
        project: Uuid,
        snapshot: Uuid,
        ordinals: &[i32],
    ) -> StoreResult<Vec<SnapshotFileText>> {
        if ordinals.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(format!(
            "SELECT ordinal, path, tokens, content FROM repository_files \
             WHERE project_id = $1 AND snapshot_id = $2 AND ordinal IN ({}) ORDER BY ordinal",
            list(3, ordinals.len())
        ))
        .arg(project)
        .arg(snapshot);
        for ordinal in ordinals {
            sql = sql.arg(*ordinal);
        }
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<(i32, String, i64, String)> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|(ordinal, path, tokens, content)| SnapshotFileText {
                ordinal,
                path,
                tokens,
                content,
            })
            .collect())
    }

    async fn token_counts(
        &self,
        encoding: &str,
        blob_ids: &[String],
    ) -> StoreResult<HashMap<String, u64>> {
        let mut known = HashMap::new();
        let mut connection = self.connection().await?;
        for ids in blob_ids.chunks(500) {
            let mut sql = Sql::new(format!(
                "SELECT blob_id, tokens FROM token_counts WHERE encoding = $1 AND blob_id IN ({})",
                list(2, ids.len())
            ))
            .arg(encoding);
            for id in ids {
                sql = sql.arg(id.as_str());
            }
            let rows: Vec<(String, i64)> = connection.fetch_all(sql).await?;
            known.extend(rows.into_iter().map(|(id, tokens)| (id, tokens as u64)));
        }
        Ok(known)
    }

    async fn record_token_counts(
        &self,
        encoding: &str,
        counts: &[(String, u64)],
    ) -> StoreResult<()> {
        let mut tx = self.control().await?;
        for rows in counts.chunks(INSERT_ROWS) {
            let insert = "INSERT INTO token_counts (blob_id, encoding, tokens)";
            let mut sql = Sql::new(format!(
                "{} ON CONFLICT DO NOTHING",
                values(insert, rows.len(), 3)
            ));
            for (id, tokens) in rows {
                sql = sql.arg(id.as_str()).arg(encoding).arg(*tokens as i64);
            }
            tx.execute(sql).await?;
        }
        B::commit(tx).await
    }
}
