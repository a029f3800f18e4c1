//! Embedding jobs: which live memories lack a vector of the configured model, and storing one.
//! How a vector is kept differs (SQLite: little-endian f32s; Postgres: pgvector), so the
//! backend gives the value and its placeholder; its index is the backend's too.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Access, Backend, Conn, Id, Json, Sql, Time};
use crate::store::{EmbeddingJob, EmbeddingModel, EmbeddingStore, StoreResult, embedding_text};

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Id,
    title: String,
    content: Json,
    updated_at: Time,
}

#[async_trait]
impl<B: Backend> EmbeddingStore for B {
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()> {
        self.prepare_index(model).await
    }

    async fn pending_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        limit: u32,
    ) -> StoreResult<Vec<EmbeddingJob>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT id, title, content, updated_at FROM memories WHERE project_id = $1 \
             AND deleted_at IS NULL AND (embedding_model IS DISTINCT FROM $2 \
             OR embedding_dim IS DISTINCT FROM $3) ORDER BY created_at LIMIT $4",
        )
        .arg(project)
        .arg(&model.name)
        .arg(model.dimensions as i32)
        .arg(i64::from(limit));
        let rows: Vec<JobRow> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| EmbeddingJob {
                id: row.id.0,
                text: embedding_text(&row.title, &row.content.0),
                updated_at: row.updated_at.0,
            })
            .collect())
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
            "UPDATE memories SET embedding = {}, embedding_model = $2, embedding_dim = $3 \
             WHERE project_id = $4 AND id = $5 AND updated_at = $6",
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
