//! The SQLite vector half: every vector of a project and model kept in memory as int8 codes,
//! scanned exactly for each query, and the best candidates re-ranked by their stored f32
//! vectors, so the scores returned are exact cosine similarities.
//!
//! Why a scan and not an index: at 100,000 memories of 384 dimensions the int8 scan (with its
//! top-k heap) takes 2–10 ms on one core when compiled for AVX2, which is picked at run time on
//! CPUs that have it; built for the x86-64 baseline (SSE2) the same loop took 35–66 ms, most of
//! a hybrid search (README, Benchmark). It needs no dependency, applies every filter exactly
//! and finds the true neighbours (recall 1.0 up to the re-rank pool); an HNSW index would cost
//! more memory, a build, and recall below 1 with filters.
//!
//! What is cached, per project and model: the row id, memory id, type, creation time and tags
//! (so filters are applied inside the scan) and one byte per dimension (the vector scaled by
//! its largest component). Sets load on a project's first vector search and are evicted, least
//! recently used first, when the cache holds more than [`MAX_CACHED_VECTORS`].
//!
//! Staying in step: triggers on `memories` append the row id of every change that matters
//! here (insert, delete, embedding, deletion mark, type, tags, time) to `memory_changes`
//! (migration 0010). Each search reads the log's last sequence number (one indexed lookup);
//! when it moved, the changed rows are read again and applied. Writes by another process (the
//! CLI, a second server on the same file) are seen the same way. The log keeps its last 65,536
//! changes (its triggers delete older ones); a cache further behind reloads its sets.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::TryStreamExt;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

mod scan;

use scan::{Entry, VectorSet};

use super::{blob_vector, parse_ts, parse_uuid, push_filters};
use crate::domain::EmbeddingModel;
use crate::domain::MemoryType;
use crate::store::{Candidate, MemoryFilter, StoreError, StoreResult};

/// The most vectors the cache holds over every project and model (~0.5 KB each at 384
/// dimensions); sets used least recently are dropped beyond it. One set is always kept.
pub const MAX_CACHED_VECTORS: usize = 400_000;

/// Which vectors a set holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SetKey {
    project: Uuid,
    model: String,
    dimensions: usize,
}

/// A memory row as the cache reads it.
#[derive(sqlx::FromRow)]
struct VectorRow {
    rowid: i64,
    project_id: String,
    memory_type: String,
    tags: String,
    created_at: String,
    live: bool,
    embedding_model: Option<String>,
    embedding_dim: Option<i64>,
    embedding: Option<Vec<u8>>,
}

impl VectorRow {
    /// The set this row belongs in and its entry, or `None` when it has no live vector.
    fn into_entry(self) -> StoreResult<Option<(SetKey, Entry, Vec<f32>)>> {
        let (Some(model), Some(dimensions), Some(blob), true) = (
            self.embedding_model,
            self.embedding_dim,
            self.embedding,
            self.live,
        ) else {
            return Ok(None);
        };
        let vector = blob_vector(&blob);
        if vector.len() != dimensions as usize {
            return Ok(None);
        }
        let key = SetKey {
            project: parse_uuid(&self.project_id)?,
            model,
            dimensions: dimensions as usize,
        };
        let entry = Entry {
            rowid: self.rowid,
            kind: MemoryType::parse(&self.memory_type)
                .ok_or_else(|| StoreError::Corrupt(format!("memory type {}", self.memory_type)))?,
            created_at: parse_ts(&self.created_at)?,
            tags: serde_json::from_str::<Vec<String>>(&self.tags)
                .map_err(|_| StoreError::Corrupt("bad tags".into()))?
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            scale: 0.0,
        };
        Ok(Some((key, entry, vector)))
    }
}

const ROW_COLUMNS: &str = "m.rowid AS rowid, m.project_id, m.memory_type, m.tags, m.created_at, \
     m.deleted_at IS NULL AS live, m.embedding_model, m.embedding_dim, m.embedding";

#[derive(Default)]
struct State {
    /// The last `memory_changes` sequence number applied.
    seen: i64,
    sets: HashMap<SetKey, (Arc<RwLock<VectorSet>>, Instant)>,
}

/// The in-memory vectors of every project and model searched so far.
#[derive(Default)]
pub struct VectorCache {
    state: tokio::sync::Mutex<State>,
}

impl VectorCache {
    /// The set for `project` and `model`, brought up to date with every committed change.
    async fn current(
        &self,
        pool: &SqlitePool,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<Arc<RwLock<VectorSet>>> {
        let key = SetKey {
            project,
            model: model.name.clone(),
            dimensions: model.dimensions,
        };
        let mut state = self.state.lock().await;
        // One read transaction: the log position and the rows read belong to one snapshot.
        let mut tx = pool.begin().await?;
        let (last, first): (i64, Option<i64>) =
            // Two subqueries: SQLite reads a lone MIN or MAX from the index end, not both at once.
            sqlx::query_as(
                "SELECT COALESCE((SELECT MAX(seq) FROM memory_changes), 0), \
                 (SELECT MIN(seq) FROM memory_changes)",
            )
                .fetch_one(&mut *tx)
                .await?;
        if last != state.seen {
            if first.is_some_and(|first| first > state.seen + 1) {
                // Further behind than the log reaches: load afresh.
                state.sets.clear();
            } else {
                apply_changes(&mut tx, &state, state.seen).await?;
            }
            state.seen = last;
        }
        let set = match state.sets.get_mut(&key) {
            Some((set, used)) => {
                *used = Instant::now();
                set.clone()
            }
            None => {
                let set = Arc::new(RwLock::new(load(&mut tx, &key).await?));
                state
                    .sets
                    .insert(key.clone(), (set.clone(), Instant::now()));
                evict(&mut state, &key);
                set
            }
        };
        drop(tx);
        Ok(set)
    }

    /// The `k` nearest neighbours of `vector` passing `filter`, by exact cosine similarity.
    pub async fn nearest(
        &self,
        pool: &SqlitePool,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        if vector.len() != model.dimensions || k == 0 {
            return Ok(Vec::new());
        }
        let set = self.current(pool, project, model).await?;
        // The codes order candidates almost exactly; re-ranking a pool this much larger than
        // `k` by the stored vectors makes the top `k` exact in practice.
        let pool_size = (k as usize * 2).max(k as usize + 32);
        let (query, scan_filter) = (vector.to_vec(), filter.clone());
        let rowids = tokio::task::spawn_blocking(move || {
            let set = set.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            set.nearest(&query, &scan_filter, pool_size)
        })
        .await
        .map_err(|error| StoreError::Corrupt(format!("vector scan failed: {error}")))?;
        if rowids.is_empty() {
            return Ok(Vec::new());
        }
        // The filters again, on the rows as they are now: nothing deleted or changed since the
        // cache was brought up to date is returned.
        // CROSS JOIN from the ids: the planner must not walk the project's index instead.
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT m.id, m.embedding FROM json_each(");
        sql.push_bind(serde_json::to_string(&rowids).unwrap_or_default())
            .push(") AS wanted CROSS JOIN memories m ON m.rowid = wanted.value WHERE ");
        push_vector_filters(&mut sql, project, filter, model);
        let rows: Vec<(String, Vec<u8>)> = sql.build_query_as().fetch_all(pool).await?;
        rank(rows, vector, k)
    }
}

/// The filters of a vector read: `filter`'s, and vectors of `model` only.
pub(super) fn push_vector_filters(
    sql: &mut QueryBuilder<'_, Sqlite>,
    project: Uuid,
    filter: &MemoryFilter,
    model: &EmbeddingModel,
) {
    push_filters(sql, project, filter);
    sql.push(" AND m.embedding_model = ")
        .push_bind(model.name.clone())
        .push(" AND m.embedding_dim = ")
        .push_bind(model.dimensions as i64);
}

/// The best `k` of `rows` (memory id, stored vector) by cosine similarity to `vector`, best
/// first, ties by id.
pub(super) fn rank(
    rows: Vec<(String, Vec<u8>)>,
    vector: &[f32],
    k: u32,
) -> StoreResult<Vec<Candidate>> {
    let mut scored = rows
        .into_iter()
        .map(|(id, blob)| {
            Ok(Candidate {
                id: parse_uuid(&id)?,
                score: f64::from(crate::domain::cosine(vector, &blob_vector(&blob))),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    scored.truncate(k as usize);
    Ok(scored)
}

/// Reads the rows changed after `seen` and applies them to every loaded set.
async fn apply_changes(tx: &mut SqliteConnection, state: &State, seen: i64) -> StoreResult<()> {
    if state.sets.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM (SELECT DISTINCT memory_rowid FROM memory_changes \
         WHERE seq > ?) AS changed CROSS JOIN memories m ON m.rowid = changed.memory_rowid"
    );
    let rows: Vec<VectorRow> = sqlx::query_as(&sql).bind(seen).fetch_all(&mut *tx).await?;
    let changed: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT memory_rowid FROM memory_changes WHERE seq > ?")
            .bind(seen)
            .fetch_all(&mut *tx)
            .await?;
    for (set, _) in state.sets.values() {
        let mut set = set.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for rowid in &changed {
            set.remove(*rowid);
        }
    }
    for row in rows {
        if let Some((key, entry, vector)) = row.into_entry()?
            && let Some((set, _)) = state.sets.get(&key)
        {
            let mut set = set.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            set.insert(entry, &vector);
        }
    }
    Ok(())
}

/// Reads every live vector of a set. Rows are quantized as they stream in, so the f32
/// vectors are never all held at once (154 MB at 100,000 × 384).
async fn load(tx: &mut SqliteConnection, key: &SetKey) -> StoreResult<VectorSet> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM memories m WHERE m.project_id = ? AND m.deleted_at IS NULL \
         AND m.embedding_model = ? AND m.embedding_dim = ?"
    );
    let mut set = VectorSet::new(key.dimensions);
    let mut rows = sqlx::query_as::<_, VectorRow>(&sql)
        .bind(key.project.to_string())
        .bind(&key.model)
        .bind(key.dimensions as i64)
        .fetch(&mut *tx);
    while let Some(row) = rows.try_next().await? {
        if let Some((_, entry, vector)) = row.into_entry()? {
            set.insert(entry, &vector);
        }
    }
    set.entries.shrink_to_fit();
    set.codes.shrink_to_fit();
    Ok(set)
}

/// Drops the least recently used sets other than `keep` while the cache holds too many vectors.
fn evict(state: &mut State, keep: &SetKey) {
    loop {
        let held: usize = state
            .sets
            .values()
            .map(|(set, _)| set.read().map_or(0, |set| set.entries.len()))
            .sum();
        if held <= MAX_CACHED_VECTORS {
            return;
        }
        let oldest = state
            .sets
            .iter()
            .filter(|(key, _)| *key != keep)
            .min_by_key(|(_, (_, used))| *used)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => {
                state.sets.remove(&key);
            }
            None => return,
        }
    }
}
