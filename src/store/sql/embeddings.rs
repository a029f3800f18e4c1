//! Embedding jobs: which live memories lack a vector of the configured model, and storing one.
//! How a vector is kept differs (SQLite: little-endian f32s; Postgres: pgvector), so the
//! backend gives the value and its placeholder; its index is the backend's too.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Access, Backend, Conn, Id, Json, Sql, Time};
use crate::store::{
    EmbeddingJob, EmbeddingModel, EmbeddingStore, StoreResult, embedding_text, now,
};

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Id,
    title: String,
    content: Json,
    updated_at: Time,
    created_at: Time,
}

#[async_trait]
impl<B: Backend> EmbeddingStore for B {
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()> {
        self.prepare_index(model).await
    }

    async fn claim_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        limit: u32,
        claim: std::time::Duration,
    ) -> StoreResult<Vec<EmbeddingJob>> {
        let at = now();
        let until = at + chrono::Duration::from_std(claim).unwrap_or(chrono::TimeDelta::MAX);
        // Rows another server is claiming right now are skipped, not waited for (Postgres);
        // SQLite's write transaction is the only writer anyway. The pick is a materialized CTE:
        // as an `IN (…)` subquery Postgres may run it again per row and claim past the limit.
        let lock = if B::LOCK_ROWS.is_empty() {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "WITH picked AS MATERIALIZED (\
             SELECT id FROM memories WHERE project_id = $1 AND deleted_at IS NULL \
             AND (embedding_model IS DISTINCT FROM $2 OR embedding_dim IS DISTINCT FROM $3) \
             AND (embedding_claimed_until IS NULL OR embedding_claimed_until < $6) \
             ORDER BY created_at LIMIT $4{lock}) \
             UPDATE memories SET embedding_claimed_until = $5 \
             WHERE project_id = $1 AND id IN (SELECT id FROM picked) \
             RETURNING id, title, content, updated_at, created_at"
        ))
        .arg(project)
        .arg(&model.name)
        .arg(model.dimensions as i32)
        .arg(i64::from(limit))
        .arg(until)
        .arg(at);
        let mut rows: Vec<JobRow> = tx.fetch_all(sql).await?;
        B::commit(tx).await?;
        rows.sort_by_key(|row| row.created_at.0);
        Ok(rows
            .into_iter()
            .map(|row| EmbeddingJob {
                id: row.id.0,
                text: embedding_text(&row.title, &row.content.0),
                updated_at: row.updated_at.0,
            })
            .collect())
    }

    async fn release_embeddings(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<()> {
        let mut tx = self.tenant(project, Access::Write).await?;
        for id in ids {
            let sql = Sql::new(
                "UPDATE memories SET embedding_claimed_until = NULL \
                 WHERE project_id = $1 AND id = $2",
            )
            .arg(project)
            .arg(*id);
            tx.execute(sql).await?;
        }
        B::commit(tx).await
    }

    async fn store_embedding(
        &self,
        project: Uuid,
        job: &EmbeddingJob,
        model: &EmbeddingModel,
        vector: &[f32],
    ) -> StoreResult<()> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "UPDATE memories SET embedding = {}, embedding_model = $2, embedding_dim = $3, \
             embedding_claimed_until = NULL WHERE project_id = $4 AND id = $5 AND updated_at = $6",
            B::VECTOR_PLACEHOLDER
        ))
        .arg(B::vector_value(vector))
        .arg(&model.name)
        .arg(model.dimensions as i32)
        .arg(project)
        .arg(job.id)
        .arg(job.updated_at);
        tx.execute(sql).await?;
        B::commit(tx).await
    }

    async fn embedding_progress(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<(u64, u64)> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT count(*) FILTER (WHERE embedding_model = $1 AND embedding_dim = $2), \
             count(*) FROM memories WHERE project_id = $3 AND deleted_at IS NULL",
        )
        .arg(&model.name)
        .arg(model.dimensions as i32)
        .arg(project);
        let (done, total): (i64, i64) = tx.fetch_one(sql).await?;
        Ok((done as u64, total as u64))
    }
}
