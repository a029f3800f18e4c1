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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

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

/// What a scan filters on, for one memory.
#[derive(Debug)]
struct Entry {
    rowid: i64,
    kind: MemoryType,
    created_at: DateTime<Utc>,
    tags: Box<[Box<str>]>,
    /// The vector's largest absolute component / 127: code × scale ≈ component.
    scale: f32,
}

/// The vectors of one project and model.
#[derive(Debug, Default)]
struct VectorSet {
    dimensions: usize,
    entries: Vec<Entry>,
    /// `dimensions` codes per entry, in entry order.
    codes: Vec<i8>,
    position: HashMap<i64, usize>,
}

/// Scales a vector into int8 codes; the scale maps them back.
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let largest = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    if largest == 0.0 || !largest.is_finite() {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = largest / 127.0;
    let codes = vector
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// The dot product of two code vectors, shaped so the compiler vectorises it: 32 lanes of
/// i16 products (each at most 127², which fits) widened into i32 sums, the shape of x86's
/// `pmaddwd`. An i32 lane cannot overflow below 2^17 dimensions.
#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 32];
    let (chunks_a, tail_a) = a.as_chunks::<32>();
    let (chunks_b, tail_b) = b.as_chunks::<32>();
    for (x, y) in chunks_a.iter().zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(i16::from(*x) * i16::from(*y));
        }
    }
    let tail: i32 = tail_a
        .iter()
        .zip(tail_b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    lanes.iter().sum::<i32>() + tail
}

impl VectorSet {
    fn insert(&mut self, entry: Entry, vector: &[f32]) {
        self.remove(entry.rowid);
        let (codes, scale) = quantize(vector);
        self.position.insert(entry.rowid, self.entries.len());
        self.entries.push(Entry { scale, ..entry });
        self.codes.extend_from_slice(&codes);
    }

    fn remove(&mut self, rowid: i64) {
        let Some(index) = self.position.remove(&rowid) else {
            return;
        };
        let last = self.entries.len() - 1;
        self.entries.swap_remove(index);
        let dims = self.dimensions;
        if index != last {
            self.codes
                .copy_within(last * dims..(last + 1) * dims, index * dims);
            self.position.insert(self.entries[index].rowid, index);
        }
        self.codes.truncate(last * dims);
    }

    fn accepts(entry: &Entry, filter: &MemoryFilter) -> bool {
        filter.memory_type.is_none_or(|kind| kind == entry.kind)
            && filter.since.is_none_or(|since| entry.created_at >= since)
            && filter.until.is_none_or(|until| entry.created_at < until)
            && filter
                .tags
                .iter()
                .all(|tag| entry.tags.iter().any(|have| **have == **tag))
    }

    /// The row ids of the `n` entries passing `filter` whose codes are nearest `query`.
    fn nearest(&self, query: &[f32], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        let (query, _) = quantize(query);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.nearest_avx2(&query, filter, n) };
        }
        self.nearest_codes(&query, filter, n)
    }

    /// [`Self::nearest_codes`] compiled for AVX2 (sign-extending loads and 256-bit multiply-adds).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn nearest_avx2(&self, query: &[i8], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        self.nearest_codes(query, filter, n)
    }

    /// The scan itself, for query codes. Inlined into each build of it, so the dot product is
    /// compiled (and vectorised) for that build's instructions.
    #[inline(always)]
    fn nearest_codes(&self, query: &[i8], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        let mut best: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::with_capacity(n + 1);
        if self.dimensions == 0 {
            return Vec::new();
        }
        let everything = filter.memory_type.is_none()
            && filter.tags.is_empty()
            && filter.since.is_none()
            && filter.until.is_none();
        for (index, (entry, codes)) in self
            .entries
            .iter()
            .zip(self.codes.chunks_exact(self.dimensions))
            .enumerate()
        {
            if !everything && !Self::accepts(entry, filter) {
                continue;
            }
            // Scaled to an integer so the heap orders it; the query's own scale is common to all.
            let score = (f64::from(dot(query, codes)) * f64::from(entry.scale) * 1e6) as i64;
            if best.len() < n {
                best.push(Reverse((score, index)));
            } else if best.peek().is_some_and(|worst| worst.0.0 < score) {
                best.pop();
                best.push(Reverse((score, index)));
            }
        }
        best.into_iter()
            .map(|Reverse((_, index))| self.entries[index].rowid)
            .collect()
    }
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
        push_filters(&mut sql, project, filter);
        sql.push(" AND m.embedding_model = ")
            .push_bind(model.name.clone())
            .push(" AND m.embedding_dim = ")
            .push_bind(model.dimensions as i64);
        let rows: Vec<(String, Vec<u8>)> = sql.build_query_as().fetch_all(pool).await?;
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
    let mut set = VectorSet {
        dimensions: key.dimensions,
        ..VectorSet::default()
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rowid: i64) -> Entry {
        Entry {
            rowid,
            kind: MemoryType::Rule,
            created_at: Utc::now(),
            tags: Box::new([]),
            scale: 0.0,
        }
    }

    #[test]
    fn codes_rank_vectors_as_their_cosine_does() {
        let mut set = VectorSet {
            dimensions: 20,
            ..VectorSet::default()
        };
        let vectors: Vec<Vec<f32>> = (0..50)
            .map(|n| {
                (0..20)
                    .map(|d| ((n * 7 + d * 3) % 11) as f32 - 5.0)
                    .collect()
            })
            .collect();
        for (n, vector) in vectors.iter().enumerate() {
            set.insert(entry(n as i64), vector);
        }
        let query: Vec<f32> = (0..20).map(|d| (d % 5) as f32 - 2.0).collect();
        let mut exact: Vec<(f32, i64)> = vectors
            .iter()
            .enumerate()
            .map(|(n, v)| (crate::domain::cosine(&query, v), n as i64))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let found = set.nearest(&query, &MemoryFilter::default(), 5);
        for (_, rowid) in &exact[..3] {
            assert!(found.contains(rowid), "{rowid} missing from {found:?}");
        }
    }

    #[test]
    fn a_filtered_scan_finds_the_exact_neighbours_among_the_memories_that_pass() {
        let mut set = VectorSet {
            dimensions: 48,
            ..VectorSet::default()
        };
        let vectors: Vec<Vec<f32>> = (0..400)
            .map(|n| {
                (0..48)
                    .map(|d| (((n * 31 + d * 17) % 23) as f32 - 11.0) / 7.0)
                    .collect()
            })
            .collect();
        for (n, vector) in vectors.iter().enumerate() {
            let kind = MemoryType::ALL[n % 5];
            set.insert(
                Entry {
                    kind,
                    ..entry(n as i64)
                },
                vector,
            );
        }
        let query: Vec<f32> = (0..48).map(|d| ((d * 5) % 9) as f32 - 4.0).collect();
        let by_type = MemoryFilter {
            memory_type: Some(MemoryType::ALL[2]),
            ..MemoryFilter::default()
        };
        let mut exact: Vec<(f32, i64)> = vectors
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 5 == 2)
            .map(|(n, v)| (crate::domain::cosine(&query, v), n as i64))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let found = set.nearest(&query, &by_type, 20);
        assert_eq!(found.len(), 20);
        assert!(found.iter().all(|rowid| rowid % 5 == 2), "{found:?}");
        for (_, rowid) in &exact[..10] {
            assert!(found.contains(rowid), "{rowid} missing from {found:?}");
        }
    }

    #[test]
    fn the_scan_built_for_the_cpu_agrees_with_the_baseline_build() {
        let mut set = VectorSet {
            dimensions: 384,
            ..VectorSet::default()
        };
        for n in 0..300i64 {
            let vector: Vec<f32> = (0..384)
                .map(|d| (((n * 13 + d * 7) % 29) as f32 - 14.0) / 3.0)
                .collect();
            set.insert(entry(n), &vector);
        }
        let (query, _) = quantize(&(0..384).map(|d| (d % 11) as f32 - 5.0).collect::<Vec<_>>());
        let mut baseline = set.nearest_codes(&query, &MemoryFilter::default(), 25);
        let mut dispatched = set.nearest(
            &(0..384).map(|d| (d % 11) as f32 - 5.0).collect::<Vec<_>>(),
            &MemoryFilter::default(),
            25,
        );
        baseline.sort_unstable();
        dispatched.sort_unstable();
        assert_eq!(baseline, dispatched);
        let (a, b) = (&set.codes[..384], &set.codes[384..768]);
        let plain: i32 = a
            .iter()
            .zip(b)
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum();
        assert_eq!(dot(a, b), plain);
    }

    #[test]
    fn removing_an_entry_keeps_the_others_codes_with_them() {
        let mut set = VectorSet {
            dimensions: 2,
            ..VectorSet::default()
        };
        set.insert(entry(1), &[1.0, 0.0]);
        set.insert(entry(2), &[0.0, 1.0]);
        set.insert(entry(3), &[-1.0, 0.0]);
        set.remove(1);
        assert_eq!(set.entries.len(), 2);
        assert_eq!(set.nearest(&[-1.0, 0.0], &MemoryFilter::default(), 1), [3]);
        assert_eq!(set.nearest(&[0.0, 1.0], &MemoryFilter::default(), 1), [2]);
        set.insert(entry(2), &[1.0, 0.0]);
        assert_eq!(set.nearest(&[1.0, 0.0], &MemoryFilter::default(), 1), [2]);
        assert_eq!(set.codes.len(), 4);
    }
}
