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

/// The claim's statement (`$1` project, `$2` model, `$3` dimensions, `$4` limit, `$5` the claim's
/// end, `$6` now). It picks from five arms, each answered from an index of migration 0021 without
/// reading the memories that already have the model's vector (which a single `IS DISTINCT FROM`
/// walked past, every batch): memories waiting for any vector, oldest first
/// (`memories_awaiting_vector`), and those whose vector is of a model or width before or after
/// `$2`/`$3` in the index's order (`memories_by_vector_model`; only after the model changed). The
/// other arms take no `ORDER BY`: a sort would read every row of the range, and without stored
/// statistics SQLite would rather walk the newest-first index than sort; they come in the index's
/// order (by model and width), and the union is then ordered by age. The model and its width are
/// stored and cleared together, so a vector of the model with no width never occurs. Rows another
/// server is claiming right now are skipped, not waited for (`lock_rows` non-empty: Postgres);
/// SQLite's write transaction is the only writer anyway. The pick is a materialized CTE: as an `IN (…)` subquery Postgres may run it again per
/// row and claim past the limit. The update finds the picked rows by id alone (they are the
/// project's already): with `project_id = $1` beside it, SQLite walked the project's whole
/// newest-first index and tested each id against the pick, on every claim.
pub(crate) fn claim_sql(lock_rows: &str) -> String {
    let lock = if lock_rows.is_empty() {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let arms = [
        ("waiting", "embedding_model IS NULL", " ORDER BY created_at"),
        ("model_before", "embedding_model < $2", ""),
        ("model_after", "embedding_model > $2", ""),
        (
            "narrower",
            "embedding_model = $2 AND embedding_dim < $3",
            "",
        ),
        ("wider", "embedding_model = $2 AND embedding_dim > $3", ""),
    ];
    let ctes: Vec<String> = arms
        .iter()
        .map(|(name, condition, order)| {
            format!(
                "{name} AS MATERIALIZED (SELECT id, created_at FROM memories \
                 WHERE project_id = $1 AND deleted_at IS NULL AND {condition} \
                 AND (embedding_claimed_until IS NULL OR embedding_claimed_until < $6)\
                 {order} LIMIT $4{lock})"
            )
        })
        .collect();
    let union: Vec<String> = arms
        .iter()
        .map(|(name, _, _)| format!("SELECT id, created_at FROM {name}"))
        .collect();
    format!(
        "WITH {}, picked AS MATERIALIZED (SELECT id FROM ({}) AS pending \
         ORDER BY created_at LIMIT $4) \
         UPDATE memories SET embedding_claimed_until = $5 WHERE id IN (SELECT id FROM picked) \
         RETURNING id, title, content, updated_at, created_at",
        ctes.join(", "),
        union.join(" UNION ALL ")
    )
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
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(claim_sql(B::LOCK_ROWS))
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
