//! Snapshots and token counts on SQLite. Tenant rows are confined by `project_id` filters.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::{SqliteStore, audit, parse_json, parse_ts, parse_uuid, ts};
use crate::store::snapshots::*;
use crate::store::{Actor, SnapshotStore, StoreError, StoreResult, now};

const SNAPSHOT_COLUMNS: &str = "id, project_id, url, commit_sha, branch, version_label, version, \
     file_count, token_count, total_bytes, file_tree, encoding, style, report, created_at";

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    id: String,
    project_id: String,
    url: String,
    commit_sha: Option<String>,
    branch: Option<String>,
    version_label: Option<String>,
    version: i32,
    file_count: i64,
    token_count: i64,
    total_bytes: i64,
    file_tree: Option<String>,
    encoding: Option<String>,
    style: Option<String>,
    report: String,
    created_at: String,
}

impl SnapshotRow {
    fn into_snapshot(self) -> StoreResult<Snapshot> {
        Ok(Snapshot {
            id: parse_uuid(&self.id)?,
            project_id: parse_uuid(&self.project_id)?,
            url: self.url,
            commit_sha: self.commit_sha,
            branch: self.branch,
            version_label: self.version_label,
            version: self.version,
            file_count: self.file_count,
            token_count: self.token_count,
            total_bytes: self.total_bytes,
            file_tree: self.file_tree,
            encoding: self.encoding,
            style: self.style,
            report: parse_json(&self.report)?,
            created_at: parse_ts(&self.created_at)?,
        })
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn save_snapshot(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &SnapshotDraft,
        files: &mut tokio::sync::mpsc::Receiver<SnapshotChunk>,
    ) -> StoreResult<Snapshot> {
        let mut tx = self.write_tx().await?;
        let (version,): (i32,) = sqlx::query_as(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM repositories WHERE project_id = ? AND url = ?",
        )
        .bind(project.to_string())
        .bind(&draft.url)
        .fetch_one(&mut *tx)
        .await?;
        let id = Uuid::new_v4();
        let row: SnapshotRow = sqlx::query_as(&format!(
            "INSERT INTO repositories ({SNAPSHOT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {SNAPSHOT_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(project.to_string())
        .bind(&draft.url)
        .bind(&draft.commit_sha)
        .bind(&draft.branch)
        .bind(&draft.version_label)
        .bind(version)
        .bind(draft.file_count)
        .bind(draft.token_count)
        .bind(draft.total_bytes)
        .bind(&draft.file_tree)
        .bind(&draft.encoding)
        .bind(&draft.style)
        .bind(draft.report.to_string())
        .bind(ts(now()))
        .fetch_one(&mut *tx)
        .await?;
        let mut ordinal = 0i32;
        loop {
            match files.recv().await {
                Some(SnapshotChunk::Files(batch)) => {
                    for rows in batch.chunks(INSERT_ROWS) {
                        let mut insert = QueryBuilder::<Sqlite>::new(
                            "INSERT INTO repository_files (snapshot_id, project_id, ordinal, path, blob_id, tokens, bytes, content) ",
                        );
                        insert.push_values(rows, |mut values, file| {
                            values
                                .push_bind(id.to_string())
                                .push_bind(project.to_string())
                                .push_bind(ordinal)
                                .push_bind(&file.path)
                                .push_bind(&file.blob_id)
                                .push_bind(file.tokens)
                                .push_bind(file.content.len() as i64)
                                .push_bind(&file.content);
                            ordinal += 1;
                        });
                        insert.build().execute(&mut *tx).await?;
                    }
                }
                Some(SnapshotChunk::Done) => break,
                None => {
                    return Err(StoreError::Conflict(
                        "the pack stopped before it finished; nothing was stored".into(),
                    ));
                }
            }
        }
        let detail = serde_json::json!({ "url": draft.url, "version": version, "files": ordinal });
        audit(
            &mut tx,
            Some(project),
            actor,
            "pack_repo",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        row.into_snapshot()
    }

    async fn get_snapshot(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>> {
        sqlx::query_as::<_, SnapshotRow>(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = ? AND id = ?"
        ))
        .bind(project.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(SnapshotRow::into_snapshot)
        .transpose()
    }

    async fn list_snapshots(
        &self,
        project: Uuid,
        filter: &SnapshotFilter,
    ) -> StoreResult<Vec<Snapshot>> {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = "
        ));
        query.push_bind(project.to_string());
        if let Some(url) = &filter.url {
            query.push(" AND url = ").push_bind(url.clone());
        }
        if let Some(after) = &filter.after {
            // Timestamps are stored in one fixed-width format, so text order is time order.
            query
                .push(" AND (created_at < ")
                .push_bind(ts(after.created_at))
                .push(" OR (created_at = ")
                .push_bind(ts(after.created_at))
                .push(" AND id < ")
                .push_bind(after.id.to_string())
                .push("))");
        }
        query
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        query
            .build_query_as::<SnapshotRow>()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(SnapshotRow::into_snapshot)
            .collect()
    }

    async fn snapshot_files(
        &self,
        project: Uuid,
        snapshot: Uuid,
    ) -> StoreResult<Vec<SnapshotFileEntry>> {
        let rows: Vec<(i32, String, i64, i64)> = sqlx::query_as(
            "SELECT ordinal, path, tokens, bytes FROM repository_files \
             WHERE project_id = ? AND snapshot_id = ? ORDER BY ordinal",
        )
        .bind(project.to_string())
        .bind(snapshot.to_string())
        .fetch_all(&self.pool)
        .await?;
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
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT ordinal, path, tokens, content FROM repository_files WHERE project_id = ",
        );
        query
            .push_bind(project.to_string())
            .push(" AND snapshot_id = ")
            .push_bind(snapshot.to_string())
            .push(" AND ordinal IN (");
        let mut list = query.separated(", ");
        for ordinal in ordinals {
            list.push_bind(*ordinal);
        }
        query.push(") ORDER BY ordinal");
        let rows: Vec<(i32, String, i64, String)> =
            query.build_query_as().fetch_all(&self.pool).await?;
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
        for ids in blob_ids.chunks(500) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT blob_id, tokens FROM token_counts WHERE encoding = ",
            );
            query
                .push_bind(encoding.to_owned())
                .push(" AND blob_id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            query.push(")");
            let rows: Vec<(String, i64)> = query.build_query_as().fetch_all(&self.pool).await?;
            known.extend(rows.into_iter().map(|(id, tokens)| (id, tokens as u64)));
        }
        Ok(known)
    }

    async fn record_token_counts(
        &self,
        encoding: &str,
        counts: &[(String, u64)],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for rows in counts.chunks(INSERT_ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO token_counts (blob_id, encoding, tokens) ",
            );
            insert.push_values(rows, |mut values, (id, tokens)| {
                values
                    .push_bind(id.clone())
                    .push_bind(encoding.to_owned())
                    .push_bind(*tokens as i64);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
