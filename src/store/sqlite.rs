//! The embedded SQLite backend: one file (WAL mode), no setup. Project scoping is by `WHERE`
//! clauses on every tenant query; the trait makes the project a required argument. The shared
//! SQL ([`super::sql`]) does the rest; this file holds what is SQLite's own: connecting (reads
//! on a pool, every write on one connection of its own, in turn), write transactions that take
//! the lock up front, the tag filter over JSON tags, and the search
//! halves (FTS5 words in [`word_search`], the in-memory vector cache in [`vectors`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::sql::memories::{MEMORY_COLUMNS, memories};
use super::sql::{Access, Arg, Backend, Push, Sql, Tx};
use super::*;

mod vectors;
mod word_search;

pub use vectors::MAX_CACHED_VECTORS;
pub use word_search::{COMMON_TERM, RANKED_MATCHES};

/// Reading connections the pool may open, besides the one writing connection (the soak judges
/// connection growth against both).
pub const MAX_READERS: u32 = 8;

/// How long a pooled connection may sit unused before it is closed ([`SqliteStore::connect`]).
const IDLE_CONNECTION: Duration = Duration::from_secs(20);

/// How long a statement waits for SQLite's write lock while another *process* holds it (a
/// `codifier` command run beside the server); writers of this process queue for
/// [`SqliteStore`]'s one writing connection instead.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write waits in that queue before it fails.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// Connections for reads.
    pool: SqlitePool,
    /// The one connection every write of this process goes through, in turn (see
    /// [`SqliteStore::connect`]).
    writer: SqlitePool,
    /// In how many memories a word is common for the text half (see [`COMMON_TERM`]).
    common_term: i64,
    /// How many of a lookup's matches the text half ranks (see [`RANKED_MATCHES`]).
    ranked_matches: i64,
    /// The vectors searched so far, kept in memory (see [`vectors`]).
    vectors: Arc<vectors::VectorCache>,
    /// The text half's word counts since the last write (see [`word_search::TermCounts`]).
    term_counts: Arc<word_search::TermCounts>,
}

fn parse_ts(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("bad timestamp {text:?}")))
}

fn parse_uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("bad id {text:?}")))
}

/// Appends the conditions every read shares — live, in the project, and the caller's type, tags
/// and time range — for a query whose memories table is aliased `m`.
fn push_filters(sql: &mut impl Push, project: Uuid, filter: &MemoryFilter) {
    sql.text("m.deleted_at IS NULL AND m.project_id = ")
        .value(project.into());
    if let Some(kind) = filter.memory_type {
        sql.text(" AND m.memory_type = ")
            .value(kind.as_str().into());
    }
    if !filter.tags.is_empty() {
        sql.text(" AND NOT EXISTS (SELECT 1 FROM json_each(")
            .value(Arg::Tags(filter.tags.clone()))
            .text(") AS wanted WHERE wanted.value NOT IN (SELECT value FROM json_each(m.tags)))");
    }
    if let Some(since) = filter.since {
        sql.text(" AND m.created_at >= ").value(since.into());
    }
    if let Some(until) = filter.until {
        sql.text(" AND m.created_at < ").value(until.into());
    }
}

/// A vector as stored: little-endian f32s.
fn vector_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_vector(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

impl SqliteStore {
    /// A write transaction that takes SQLite's write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred one that reads first and writes later fails at once with "database is locked"
    /// when another writer got there first, while this one waits up to the busy timeout.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Opens (creating when missing) the database file a `sqlite:` URL names.
    ///
    /// Writes go through one connection of their own, so they wait for each other in the
    /// pool's queue, first come first served. When each took SQLite's lock on its own
    /// connection, waiting writers polled for it (SQLite's busy handler sleeps up to 100 ms
    /// between tries, and whoever tries at the right moment wins): under load one could lose
    /// for the whole busy timeout and fail with "database is locked" while others kept
    /// writing. SQLite lets one writer at a time anyway; reads (WAL) never wait for it.
    ///
    /// Each connection keeps its own page cache (up to 2 MB) and prepared statements; a
    /// connection idle for [`IDLE_CONNECTION`] is closed, so a server that went quiet gives
    /// that memory back. Opening one again costs about a millisecond.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::open(url, BUSY_TIMEOUT).await
    }

    /// [`connect`](Self::connect) with another busy timeout (tests shorten it).
    pub(crate) async fn open(url: &str, busy_timeout: Duration) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout);
        let file = options.get_filename();
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Corrupt(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(IDLE_CONNECTION)
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_READERS)
            .idle_timeout(IDLE_CONNECTION)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer,
            common_term: COMMON_TERM,
            ranked_matches: RANKED_MATCHES,
            vectors: Arc::default(),
            term_counts: Arc::default(),
        })
    }

    /// Sets in how many memories a word counts as common for the text half (default
    /// [`COMMON_TERM`]), so tests on a few memories can reach every plan of the lookup.
    pub fn with_common_term(mut self, memories: i64) -> Self {
        self.common_term = memories.max(1);
        // Counts are taken up to the threshold: those of another threshold do not hold here.
        self.term_counts = Arc::default();
        self
    }

    /// Sets how many matches, the newest, the text half ranks (default [`RANKED_MATCHES`]), so
    /// tests on a few memories can reach the bound.
    pub fn with_ranked_matches(mut self, matches: i64) -> Self {
        self.ranked_matches = matches.max(1);
        self
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    const NAME: &'static str = "sqlite";
    const LOCK_ROWS: &'static str = "";
    const SEARCH_TEXT: bool = true;
    const VECTOR_PLACEHOLDER: &'static str = "$1";

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn migrate_schema(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn tenant(&self, _project: Uuid, access: Access) -> StoreResult<Tx<Self>> {
        match access {
            Access::Read => Ok(self.pool.begin().await?),
            Access::Write => self.write_tx().await,
        }
    }

    async fn enter_project(_tx: &mut Tx<Self>, _project: Uuid) -> StoreResult<()> {
        Ok(())
    }

    fn push_filters(sql: &mut Sql, project: Uuid, filter: &MemoryFilter) {
        push_filters(sql, project, filter);
    }

    fn position_in(column: &str) -> String {
        format!("instr(lower({column}), ")
    }

    fn vector_value(vector: &[f32]) -> Arg {
        Arg::Bytes(vector_blob(vector))
    }

    async fn prepare_index(&self, _model: &EmbeddingModel) -> StoreResult<()> {
        Ok(())
    }

    /// Takes the write lock up front (see [`SqliteStore::write_tx`]).
    async fn control(&self) -> StoreResult<Tx<Self>> {
        self.write_tx().await
    }

    /// The writing connection (see [`SqliteStore::connect`]).
    async fn write_connection(&self) -> StoreResult<PoolConnection<Sqlite>> {
        Ok(self.writer.acquire().await?)
    }
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn text_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        terms: &[String],
        match_all: bool,
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        self.word_candidates(project, filter, terms, match_all, k)
            .await
    }

    async fn vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        self.vectors
            .nearest(&self.pool, project, filter, model, vector, k)
            .await
    }

    /// A scan of every stored vector, past the cache ([`vectors`] keeps in memory).
    async fn exact_vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT m.id, m.embedding FROM memories m WHERE ");
        vectors::push_vector_filters(&mut sql, project, filter, model);
        let rows: Vec<(String, Vec<u8>)> = sql.build_query_as().fetch_all(&self.pool).await?;
        let query = vector.to_vec();
        tokio::task::spawn_blocking(move || vectors::rank(rows, &query, k))
            .await
            .map_err(|error| StoreError::Corrupt(format!("vector scan failed: {error}")))?
    }

    async fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Memory>> {
        // CROSS JOIN from the ids: with `project_id = ?` the planner would otherwise walk
        // every memory of the project through its index (2 s at 100,000).
        let columns = MEMORY_COLUMNS.replace(", ", ", m.");
        let sql = Sql::new(format!(
            "SELECT m.{columns} FROM json_each($1) AS wanted CROSS JOIN memories m \
             ON m.id = wanted.value WHERE m.project_id = $2 AND m.deleted_at IS NULL"
        ))
        .arg(Arg::Ids(ids.to_vec()))
        .arg(project);
        memories(&mut *self.connection().await?, sql).await
    }
}

#[cfg(test)]
mod write_queue_tests;
