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

/// The advisory lock a server holds while it builds a vector index: two `CREATE INDEX
/// CONCURRENTLY` on one table deadlock (each waits for the other's transaction to end), as two
/// servers starting at once with the same model would.
const INDEX_BUILD_LOCK: i64 = 0x636f_6469_6669_6572;

impl PgStore {
    /// Creates the HNSW index that searches vectors of `model`, unless it exists. When another
    /// server is building one right now this returns at once (that server finishes it); an
    /// index a cut-off build left invalid is dropped and built again.
    pub(super) async fn create_vector_index(&self, model: &EmbeddingModel) -> StoreResult<()> {
        use sqlx::Connection;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(model.name.as_bytes());
        let name = format!(
            "memories_hnsw_{}_{}",
            model.dimensions,
            &hex::encode(digest)[..12]
        );
        let sql = format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON memories \
             USING hnsw ((embedding::vector({dims})) vector_cosine_ops) \
             WHERE embedding_model = {literal} AND embedding_dim = {dims}",
            dims = model.dimensions,
            literal = model_literal(model),
        );
        // A connection of its own: closing it releases the session's advisory lock whatever
        // happened, and no pooled connection is handed on still holding it.
        let mut connection = sqlx::PgConnection::connect_with(&self.pool.connect_options()).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(INDEX_BUILD_LOCK)
            .fetch_one(&mut connection)
            .await?;
        if !locked {
            tracing::info!(index = %name, "another server is building a vector index; leaving it to that one");
            let _ = connection.close().await;
            return Ok(());
        }
        let invalid: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = $1 AND NOT i.indisvalid)",
        )
        .bind(&name)
        .fetch_one(&mut connection)
        .await?;
        if invalid {
            tracing::warn!(index = %name, "rebuilding a vector index a cut-off build left invalid");
            sqlx::query(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                .execute(&mut connection)
                .await?;
        }
        let built = sqlx::query(&sql).execute(&mut connection).await;
        let _ = connection.close().await;
        built?;
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
