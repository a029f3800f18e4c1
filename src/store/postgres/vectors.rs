//! The vector half of a search on Postgres: pgvector, one partial HNSW index per embedding
//! model (built by `prepare_vectors`), searched with iterative scans so filters apply inside
//! the index scan.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{PgStore, end_read, push_filters};
use crate::store::{Candidate, EmbeddingModel, MemoryFilter, StoreResult};

/// A vector in pgvector's text form, `[0.1,0.2,…]`.
pub(super) fn vector_text(vector: &[f32]) -> String {
    let values: Vec<String> = vector.iter().map(|x| x.to_string()).collect();
    format!("[{}]", values.join(","))
}

/// A model name as an SQL string literal. Names come from the operator's configuration, never
/// from callers; quoting still makes any name safe.
fn model_literal(model: &EmbeddingModel) -> String {
    format!("'{}'", model.name.replace('\'', "''"))
}

/// The expression the HNSW index of a model is built on and searched by.
fn vector_expression(model: &EmbeddingModel) -> String {
    format!("(m.embedding::vector({}))", model.dimensions)
}

impl PgStore {
    /// Creates the HNSW index that searches vectors of `model`, unless it exists.
    pub(super) async fn create_vector_index(&self, model: &EmbeddingModel) -> StoreResult<()> {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(model.name.as_bytes());
        let sql = format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS memories_hnsw_{dims}_{suffix} ON memories \
             USING hnsw ((embedding::vector({dims})) vector_cosine_ops) \
             WHERE embedding_model = {name} AND embedding_dim = {dims}",
            dims = model.dimensions,
            suffix = &hex::encode(digest)[..12],
            name = model_literal(model),
        );
        sqlx::query(&sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Nearest neighbours by cosine similarity: through the model's HNSW index, or with
    /// `exact` by scanning every row (index scans turned off for the transaction).
    pub(super) async fn nearest(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
        exact: bool,
    ) -> StoreResult<Vec<Candidate>> {
        let settings: &[(&str, &str)] = if exact {
            &[("enable_indexscan", "off"), ("enable_bitmapscan", "off")]
        } else {
            // Filters are applied inside the index scan; iterative scans keep searching until
            // enough rows pass them (pgvector 0.8+).
            &[
                ("hnsw.ef_search", "100"),
                ("hnsw.iterative_scan", "relaxed_order"),
            ]
        };
        let mut tx = self.scoped_with(project, settings).await?;
        let expression = vector_expression(model);
        let distance = format!("{expression} <=> CAST(");
        let mut sql = QueryBuilder::<Postgres>::new(format!("SELECT m.id, 1 - ({distance}"));
        sql.push_bind(vector_text(vector)).push(format!(
            " AS vector({})))::float8 AS similarity FROM memories m WHERE ",
            model.dimensions
        ));
        push_filters(&mut sql, project, filter);
        sql.push(format!(
            " AND m.embedding_model = {} AND m.embedding_dim = {} ORDER BY {distance}",
            model_literal(model),
            model.dimensions
        ));
        sql.push_bind(vector_text(vector))
            .push(format!(" AS vector({})) LIMIT ", model.dimensions))
            .push_bind(i64::from(k));
        let rows: Vec<(Uuid, f64)> = sql.build_query_as().fetch_all(&mut *tx).await?;
        end_read(tx);
        let mut candidates: Vec<Candidate> = rows
            .into_iter()
            .map(|(id, score)| Candidate { id, score })
            .collect();
        // relaxed_order may return neighbours slightly out of order.
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(candidates)
    }
}
