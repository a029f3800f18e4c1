//! The Postgres backend (15+, with pgvector). Tenant queries run in [`PgStore::scoped`]
//! transactions: `SET LOCAL ROLE codifier_tenant` plus the transaction-local setting
//! `codifier.project_id`, so row-level security confines them to one project whatever role
//! `DATABASE_URL` names. Control tables (projects, api_keys, mcp_sessions) use the pool directly.
//! The shared SQL ([`super::sql`]) does the rest; this file holds what is Postgres's own:
//! connecting, tenant transactions, the tag filter over `memory_tags`, and the search halves
//! (the word planner in [`word_search`], pgvector in [`vectors`]).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::sql::memories::{MEMORY_COLUMNS, memories};
use super::sql::{Access, Arg, Backend, Push, Sql, Tx};
use super::*;

mod vectors;
mod word_search;

pub use word_search::COMMON_TERM;

/// The role tenant transactions switch to; RLS policies apply to it.
pub const TENANT_ROLE: &str = "codifier_tenant";

/// Connections the pool may open (the soak judges connection growth against it).
pub const MAX_CONNECTIONS: u32 = 16;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// How long a call waits for a connection (`CODIFIER_DB_ACQUIRE_TIMEOUT_SECONDS`, default 5):
/// while the database is down sqlx keeps retrying to connect until then, so this bounds how long
/// a tool call hangs before it fails with "Store unavailable".
fn acquire_timeout() -> Duration {
    let seconds = std::env::var("CODIFIER_DB_ACQUIRE_TIMEOUT_SECONDS")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// The Postgres store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// In how many memories a word is common for the text half (see [`COMMON_TERM`]).
    common_term: i64,
}

/// The statement that confines a transaction to `project`, plus `extra` settings (names and
/// values written in this backend, never a caller's text). `set_config('role', …, true)` is
/// `SET LOCAL ROLE`. Statements are planned for their actual values (`force_custom_plan`):
/// whether a tag or a word is rare decides whether a search starts from the term and tag
/// indexes or from the newest memories, and a cached generic plan would pick one way for every
/// value. The project is a [`Uuid`], whose text is only hex digits and dashes, so it can be
/// written into the statement.
fn tenant_settings(project: Uuid, extra: &[(&'static str, &'static str)]) -> String {
    let mut sql = format!(
        "SELECT set_config('codifier.project_id', '{project}', true), \
         set_config('role', '{TENANT_ROLE}', true), \
         set_config('plan_cache_mode', 'force_custom_plan', true)"
    );
    for (name, value) in extra {
        sql.push_str(&format!(", set_config('{name}', '{value}', true)"));
    }
    sql
}

/// Whether `error` says the connection itself failed (closed by the server or the network), so
/// that a transaction which has not started can be retried on another connection.
fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        // 08: connection exception; 57P0x: the server is shutting down or restarting.
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// Ends a transaction that only read, without waiting: sqlx queues its `ROLLBACK` and sends it
/// as the connection goes back to the pool, so the caller saves a round trip. Nothing is lost,
/// since nothing was written (the tenant settings are local to the transaction either way).
fn end_read(tx: Transaction<'static, Postgres>) {
    drop(tx);
}

/// Appends the conditions every read shares — live, in the project (RLS confines the rows too;
/// the explicit filter keeps the indexes in use), and the caller's type, tags and time range —
/// for a query whose memories table is aliased `m`.
fn push_filters(sql: &mut impl Push, project: Uuid, filter: &MemoryFilter) {
    sql.text("m.deleted_at IS NULL AND m.project_id = ")
        .value(project.into());
    if let Some(kind) = filter.memory_type {
        sql.text(" AND m.memory_type = ")
            .value(kind.as_str().into());
    }
    // Each tag through memory_tags' btree: under RLS `tags @>` never uses the GIN index (see
    // migration 0006), so a rare tag would walk the whole project. One EXISTS per tag lets the
    // planner start from the tag's rows when it is rare, or walk the newest memories and probe
    // the primary key when it is common.
    let mut tags = filter.tags.clone();
    tags.sort();
    tags.dedup();
    for tag in tags {
        sql.text(
            " AND EXISTS (SELECT 1 FROM memory_tags t WHERE t.memory_id = m.id AND t.project_id = ",
        )
        .value(project.into())
        .text(" AND t.tag = ")
        .value(tag.into())
        .text(")");
    }
    if let Some(since) = filter.since {
        sql.text(" AND m.created_at >= ").value(since.into());
    }
    if let Some(until) = filter.until {
        sql.text(" AND m.created_at < ").value(until.into());
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(acquire_timeout())
            // sqlx pings every connection it hands out: a round trip before each transaction.
            // Only connections idle for a while are pinged; one the server closed since is
            // caught by `scoped_with`, which starts its transaction again on another.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            common_term: COMMON_TERM,
        })
    }

    /// Sets in how many memories a word counts as common for the text half (default
    /// [`COMMON_TERM`]), so tests on a few memories can reach every plan of the lookup.
    pub fn with_common_term(mut self, memories: i64) -> Self {
        self.common_term = memories.max(1);
        self
    }

    /// A transaction confined to `project` by row-level security. Public so tests can prove that
    /// a query with no project filter at all sees only that project's rows.
    pub async fn scoped(&self, project: Uuid) -> StoreResult<Transaction<'static, Postgres>> {
        self.scoped_with(project, &[]).await
    }

    /// [`scoped`](Self::scoped) with `extra` transaction-local settings, all sent with `BEGIN`
    /// in one round trip. A connection found closed at this point (nothing has run on it yet)
    /// is dropped and the next one tried: after a server restart every idle connection is dead.
    async fn scoped_with(
        &self,
        project: Uuid,
        extra: &[(&'static str, &'static str)],
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let begin = format!("BEGIN; {}", tenant_settings(project, extra));
        let mut attempts = 0;
        loop {
            match begin_detached(&self.pool, Some(begin.clone())).await {
                Err(error) if is_connection_lost(&error) && attempts < MAX_CONNECTIONS => {
                    attempts += 1;
                }
                started => return Ok(started?),
            }
        }
    }
}

/// Begins a transaction (with `statement`, else `BEGIN`) on a task of its own. sqlx 0.8 does
/// not roll back a `BEGIN` whose caller was cancelled while it was in flight (say, an event
/// stream dropped when its client left): the connection went back to the pool inside a
/// transaction sqlx did not know about, still `SET LOCAL ROLE codifier_tenant`, and the next
/// statement on the control tables there failed with "permission denied". On its own task the
/// begin always finishes, and a transaction nobody awaits any more is dropped, so rolled back,
/// as sqlx knows to.
async fn begin_detached(
    pool: &PgPool,
    statement: Option<String>,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    })
    .await
    .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?
}

#[async_trait]
impl Backend for PgStore {
    type Db = Postgres;

    const NAME: &'static str = "postgres";
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const SEARCH_TEXT: bool = false;
    const VECTOR_PLACEHOLDER: &'static str = "CAST($1 AS vector)";

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn control(&self) -> StoreResult<Tx<Self>> {
        Ok(begin_detached(&self.pool, None).await?)
    }

    /// Also refuses a tenant role that bypasses row-level security.
    async fn migrate_schema(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        let (bypasses,): (bool,) =
            sqlx::query_as("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(TENANT_ROLE)
                .fetch_one(&self.pool)
                .await?;
        if bypasses {
            return Err(StoreError::Corrupt(format!(
                "role {TENANT_ROLE} bypasses row-level security: run ALTER ROLE {TENANT_ROLE} NOSUPERUSER NOBYPASSRLS"
            )));
        }
        Ok(())
    }

    async fn tenant(&self, project: Uuid, _access: Access) -> StoreResult<Tx<Self>> {
        self.scoped(project).await
    }

    /// From here on RLS applies to every statement of the transaction.
    async fn enter_project(tx: &mut Tx<Self>, project: Uuid) -> StoreResult<()> {
        // Not kept as a prepared statement: its text differs per project.
        sqlx::query(&tenant_settings(project, &[]))
            .persistent(false)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn push_filters(sql: &mut Sql, project: Uuid, filter: &MemoryFilter) {
        push_filters(sql, project, filter);
    }

    fn position_in(column: &str) -> String {
        format!("strpos(lower({column}::text), ")
    }

    fn vector_value(vector: &[f32]) -> Arg {
        vectors::vector_text(vector).into()
    }

    async fn prepare_index(&self, model: &EmbeddingModel) -> StoreResult<()> {
        self.create_vector_index(model).await
    }
}

#[async_trait]
impl SearchStore for PgStore {
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
        self.nearest(project, filter, model, vector, k, false).await
    }

    /// A full scan, with index scans turned off for the transaction.
    async fn exact_vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        self.nearest(project, filter, model, vector, k, true).await
    }

    async fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Memory>> {
        let mut tx = self.scoped(project).await?;
        let sql = Sql::new(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = $1 AND deleted_at IS NULL \
             AND id = ANY($2)"
        ))
        .arg(project)
        .arg(Arg::Ids(ids.to_vec()));
        let found = memories(&mut *tx, sql).await;
        end_read(tx);
        found
    }
}
