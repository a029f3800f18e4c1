//! Snapshots and token counts on Postgres. Snapshot rows and their files are tenant rows, read
//! and written only in [`PgStore::scoped`] transactions (row-level security) and also filtered
//! by project; the token-count cache holds no tenant data and uses the pool directly.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{PgStore, audit};
use crate::store::snapshots::*;
use crate::store::{Actor, SnapshotStore, StoreError, StoreResult, now};

const SNAPSHOT_COLUMNS: &str = "id, project_id, url, commit_sha, branch, version_label, version, \
     file_count, token_count, total_bytes, file_tree, encoding, style, report, created_at";

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    id: Uuid,
    project_id: Uuid,
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
    report: Value,
    created_at: DateTime<Utc>,
}

impl From<SnapshotRow> for Snapshot {
    fn from(row: SnapshotRow) -> Self {
        Snapshot {
            id: row.id,
            project_id: row.project_id,
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
            report: row.report,
            created_at: row.created_at,
        }
    }
}

#[async_trait]
impl SnapshotStore for PgStore {
    async fn save_snapshot(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &SnapshotDraft,
        files: &mut tokio::sync::mpsc::Receiver<SnapshotChunk>,
    ) -> StoreResult<Snapshot> {
        let mut tx = self.scoped(project).await?;
        let (version,): (i32,) = sqlx::query_as(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM repositories WHERE project_id = $1 AND url = $2",
        )
        .bind(project)
        .bind(&draft.url)
        .fetch_one(&mut *tx)
        .await?;
        let id = Uuid::new_v4();
        let row: SnapshotRow = sqlx::query_as(&format!(
            "INSERT INTO repositories ({SNAPSHOT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {SNAPSHOT_COLUMNS}"
        ))
        .bind(id)
        .bind(project)
        .bind(&draft.url)
        .bind(&draft.commit_sha)
        .bind(&draft.branch)
        .bind(&draft.version_label)
        .bind(version)
        .bind(draft.file_count as i32)
        .bind(draft.token_count)
        .bind(draft.total_bytes)
        .bind(&draft.file_tree)
        .bind(&draft.encoding)
        .bind(&draft.style)
        .bind(&draft.report)
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| {
            if crate::store::is_unique_violation(&error) {
                StoreError::Conflict(
                    "another pack of this repository was stored at the same moment: pack again".into(),
                )
            } else {
                error.into()
            }
        })?;
        let mut ordinal = 0i32;
        loop {
            match files.recv().await {
                Some(SnapshotChunk::Files(batch)) => {
                    for rows in batch.chunks(INSERT_ROWS) {
                        let mut insert = QueryBuilder::<Postgres>::new(
                            "INSERT INTO repository_files (snapshot_id, project_id, ordinal, path, blob_id, tokens, bytes, content) ",
                        );
                        insert.push_values(rows, |mut values, file| {
                            values
                                .push_bind(id)
                                .push_bind(project)
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
            project,
            actor,
            "pack_repo",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn get_snapshot(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Snapshot>> {
        let mut tx = self.scoped(project).await?;
        let row: Option<SnapshotRow> = sqlx::query_as(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = $1 AND id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(Snapshot::from))
    }

    async fn list_snapshots(
        &self,
        project: Uuid,
        filter: &SnapshotFilter,
    ) -> StoreResult<Vec<Snapshot>> {
        let mut tx = self.scoped(project).await?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM repositories WHERE project_id = "
        ));
        query.push_bind(project);
        if let Some(url) = &filter.url {
            query.push(" AND url = ").push_bind(url.clone());
        }
        if let Some(after) = &filter.after {
            query
                .push(" AND (created_at, id) < (")
                .push_bind(after.created_at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        query
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows: Vec<SnapshotRow> = query.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Snapshot::from).collect())
    }

    async fn snapshot_files(
        &self,
        project: Uuid,
        snapshot: Uuid,
    ) -> StoreResult<Vec<SnapshotFileEntry>> {
        let mut tx = self.scoped(project).await?;
        let rows: Vec<(i32, String, i64, i64)> = sqlx::query_as(
            "SELECT ordinal, path, tokens, bytes FROM repository_files \
             WHERE project_id = $1 AND snapshot_id = $2 ORDER BY ordinal",
        )
        .bind(project)
        .bind(snapshot)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let mut tx = self.scoped(project).await?;
        let rows: Vec<(i32, String, i64, String)> = sqlx::query_as(
            "SELECT ordinal, path, tokens, content FROM repository_files \
             WHERE project_id = $1 AND snapshot_id = $2 AND ordinal = ANY($3) ORDER BY ordinal",
        )
        .bind(project)
        .bind(snapshot)
        .bind(ordinals)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT blob_id, tokens FROM token_counts WHERE encoding = $1 AND blob_id = ANY($2)",
        )
        .bind(encoding)
        .bind(blob_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, tokens)| (id, tokens as u64))
            .collect())
    }

    async fn record_token_counts(
        &self,
        encoding: &str,
        counts: &[(String, u64)],
    ) -> StoreResult<()> {
        let (ids, tokens): (Vec<String>, Vec<i64>) = counts
            .iter()
            .map(|(id, tokens)| (id.clone(), *tokens as i64))
            .unzip();
        sqlx::query(
            "INSERT INTO token_counts (blob_id, encoding, tokens) \
             SELECT id, $1, tokens FROM UNNEST($2::text[], $3::bigint[]) AS t(id, tokens) \
             ON CONFLICT DO NOTHING",
        )
        .bind(encoding)
        .bind(&ids)
        .bind(&tokens)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
