//! Embedding jobs: which live memories wait for a vector, making those of another model wait
//! again when the configured model changes, and storing vectors.
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

/// The claim's statement (`$1` project, `$2` limit, `$3` the claim's end, `$4` now): the oldest
/// live memories waiting for a vector, read from the partial index `memories_awaiting_vector` of
/// migration 0021, which holds those alone, in the order they are taken (with no index the claim
/// walked past every memory embedded before them: 27.5 ms a batch at 14,500 embedded). A memory
/// waits when it has no vector: written, changed since its vector, or cleared by
/// [`clear_other_models`] because its vector was of another model. Rows another server is
/// claiming right now are skipped, not waited for (`lock_rows` non-empty: Postgres); SQLite's
/// write transaction is the only writer anyway. The pick is a materialized CTE: as an `IN (…)`
/// subquery Postgres may run it again per row and claim past the limit. The update finds the
/// picked rows by id alone (they are the project's already): with `project_id = $1` beside it,
/// SQLite walked the project's whole newest-first index and tested each id against the pick,
/// on every claim.
pub(crate) fn claim_sql(lock_rows: &str) -> String {
    let lock = if lock_rows.is_empty() {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    format!(
        "WITH picked AS MATERIALIZED (SELECT id FROM memories \
         WHERE project_id = $1 AND deleted_at IS NULL AND embedding_model IS NULL \
         AND (embedding_claimed_until IS NULL OR embedding_claimed_until < $4) \
         ORDER BY created_at LIMIT $2{lock}) \
         UPDATE memories SET embedding_claimed_until = $3 WHERE id IN (SELECT id FROM picked) \
         RETURNING id, title, content, updated_at, created_at"
    )
}

/// A vector of another model than `$2` or of another width than `$3` (a memory with no
/// vector has neither, and compares as unknown: not matched).
const OTHER_MODEL: &str = "(embedding_model <> $2 OR embedding_dim <> $3)";

/// Clears every vector of another model than `model` (another name, or the same name at
/// another width) with its model and width, so those memories wait for a vector again and the
/// claim takes them as it takes new ones. The old vectors are not kept until replaced: search
/// reads only vectors of the configured model (its query vector is that model's, and vectors of
/// two models do not compare), so nothing reads them. Deleted memories are cleared too, so one
/// restored later waits like the rest. Each project is first read (a walk of its memories: on
/// SQLite at 100,000, 1.4 s the first time and 0.15 s once the file is in the page cache; once
/// per start, in the background) and written only when it holds such a vector, so a start with
/// an unchanged model writes nothing and SQLite's one writer is not held for the walk. Per
/// project, as every memory statement is (row-level security on Postgres). Returns how many
/// vectors it cleared.
async fn clear_other_models<B: Backend>(store: &B, model: &EmbeddingModel) -> StoreResult<u64> {
    let projects: Vec<(Id,)> = store
        .connection()
        .await?
        .fetch_all(Sql::new("SELECT id FROM projects"))
        .await?;
    let mut cleared = 0;
    for (Id(project),) in projects {
        let of_project = |text: String| {
            Sql::new(text)
                .arg(project)
                .arg(&model.name)
                .arg(model.dimensions as i32)
        };
        let mut tx = store.tenant(project, Access::Read).await?;
        let found: Option<(i32,)> = tx
            .fetch_optional(of_project(format!(
                "SELECT 1 FROM memories WHERE project_id = $1 AND {OTHER_MODEL} LIMIT 1"
            )))
            .await?;
        drop(tx);
        if found.is_none() {
            continue;
        }
        let mut tx = store.tenant(project, Access::Write).await?;
        cleared += tx
            .execute(of_project(format!(
                "UPDATE memories SET embedding = NULL, embedding_model = NULL, \
                 embedding_dim = NULL WHERE project_id = $1 AND {OTHER_MODEL}"
            )))
            .await?;
        B::commit(tx).await?;
    }
    Ok(cleared)
}

#[async_trait]
impl<B: Backend> EmbeddingStore for B {
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()> {
        let cleared = clear_other_models(self, model).await?;
        if cleared > 0 {
            tracing::info!(cleared, model = %model.name, dimensions = model.dimensions,
                "cleared the vectors of another model; those memories are embedded again");
        }
        self.prepare_index(model).await
    }

    async fn claim_embeddings(
        &self,
        project: Uuid,
        limit: u32,
        claim: std::time::Duration,
    ) -> StoreResult<Vec<EmbeddingJob>> {
        let at = now();
        let until = at + chrono::Duration::from_std(claim).unwrap_or(chrono::TimeDelta::MAX);
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(claim_sql(B::LOCK_ROWS))
            .arg(project)
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

    async fn store_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        done: &[(EmbeddingJob, Vec<f32>)],
    ) -> StoreResult<()> {
        if done.is_empty() {
            return Ok(());
        }
        // One transaction for the batch: on SQLite each commit is a write of the WAL (and a
        // turn of the one writer), which 32 separate ones paid per batch.
        let statement = format!(
            "UPDATE memories SET embedding = {}, embedding_model = $2, embedding_dim = $3, \
             embedding_claimed_until = NULL \
             WHERE project_id = $4 AND id = $5 AND updated_at = $6",
            B::VECTOR_PLACEHOLDER
        );
        let mut tx = self.tenant(project, Access::Write).await?;
        for (job, vector) in done {
            let sql = Sql::new(statement.as_str())
                .arg(B::vector_value(vector))
                .arg(&model.name)
                .arg(model.dimensions as i32)
                .arg(project)
                .arg(job.id)
                .arg(job.updated_at);
            tx.execute(sql).await?;
        }
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
