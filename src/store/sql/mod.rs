//! The SQL both databases accept, written once. A statement is text with `$1`, `$2`, …
//! placeholders (SQLite reads `$N` by number too, in any order and repeated: see the test
//! below) and a list of [`Arg`]s; rows decode into one row type per table whose columns read
//! both ways ([`values`]). Each capability over the shared tables is implemented here once, for
//! every [`Backend`]; a backend supplies its transactions and the few fragments that differ.

pub(crate) mod audit;
pub(crate) mod console_sessions;
pub(crate) mod embeddings;
pub(crate) mod keys;
pub(crate) mod mcp_sessions;
pub(crate) mod memories;
pub(crate) mod memory_batch;
pub(crate) mod oauth;
pub(crate) mod outbox;
pub(crate) mod plans;
pub(crate) mod playbook_sessions;
pub(crate) mod projects;
pub(crate) mod server_secrets;
pub(crate) mod snapshots;
pub(crate) mod state;
pub(crate) mod telemetry;
pub(crate) mod values;
pub(crate) mod webhooks;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, SqliteConnection};
use uuid::Uuid;

pub(crate) use values::{Arg, Id, Json, Tags, Time};

use super::{MemoryFilter, SearchStore, Store, StoreError, StoreResult};

/// A statement and the values it binds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// A statement whose `$N` placeholders are bound, in order, by [`arg`](Self::arg).
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next `$N`.
    pub(crate) fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn push_arg(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let placeholder = format!("${}", self.args.len());
        self.text.push_str(&placeholder);
        self
    }
}

/// Where conditions are written: a [`Sql`], or sqlx's `QueryBuilder` (the search halves).
pub(crate) trait Push {
    fn text(&mut self, text: &str) -> &mut Self;
    fn value(&mut self, value: Arg) -> &mut Self;
}

impl Push for Sql {
    fn text(&mut self, text: &str) -> &mut Self {
        self.push(text)
    }

    fn value(&mut self, value: Arg) -> &mut Self {
        self.push_arg(value)
    }
}

impl<'a, DB: sqlx::Database> Push for sqlx::QueryBuilder<'a, DB>
where
    Arg: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    fn text(&mut self, text: &str) -> &mut Self {
        self.push(text)
    }

    fn value(&mut self, value: Arg) -> &mut Self {
        self.push_bind(value)
    }
}

/// A row type both databases decode.
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A connection that runs [`Sql`].
#[async_trait]
pub(crate) trait Conn: Send {
    /// Runs a statement; returns how many rows it changed.
    async fn execute(&mut self, sql: Sql) -> StoreResult<u64>;
    async fn fetch_all<R: Row>(&mut self, sql: Sql) -> StoreResult<Vec<R>>;
    async fn fetch_optional<R: Row>(&mut self, sql: Sql) -> StoreResult<Option<R>>;
    async fn fetch_one<R: Row>(&mut self, sql: Sql) -> StoreResult<R> {
        self.fetch_optional(sql)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }
}

macro_rules! conn {
    ($connection:ty) => {
        #[async_trait]
        impl Conn for $connection {
            async fn execute(&mut self, sql: Sql) -> StoreResult<u64> {
                let mut query = sqlx::query(&sql.text);
                for arg in sql.args {
                    query = query.bind(arg);
                }
                Ok(query.execute(self).await?.rows_affected())
            }

            async fn fetch_all<R: Row>(&mut self, sql: Sql) -> StoreResult<Vec<R>> {
                let mut query = sqlx::query_as::<_, R>(&sql.text);
                for arg in sql.args {
                    query = query.bind(arg);
                }
                Ok(query.fetch_all(self).await?)
            }

            async fn fetch_optional<R: Row>(&mut self, sql: Sql) -> StoreResult<Option<R>> {
                let mut query = sqlx::query_as::<_, R>(&sql.text);
                for arg in sql.args {
                    query = query.bind(arg);
                }
                Ok(query.fetch_optional(self).await?)
            }
        }
    };
}

conn!(SqliteConnection);
conn!(PgConnection);

/// Whether a transaction will write (SQLite then takes its write lock up front).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A backend's open transaction (committed by [`Backend::commit`], else rolled back).
pub(crate) type Tx<B> = sqlx::Transaction<'static, <B as Backend>::Db>;
/// A backend's connection, which runs [`Sql`].
pub(crate) type Connection<B> = <<B as Backend>::Db as sqlx::Database>::Connection;

/// What a backend gives the shared implementations: its pool and transactions, and the
/// fragments of SQL that differ between the databases.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    type Db: sqlx::Database<Connection: Conn>;

    /// The backend's name (`sqlite` or `postgres`), for health and logs.
    const NAME: &'static str;
    /// `" FOR UPDATE"` where the database locks rows read for a later write; empty where a
    /// write transaction already holds the only write lock (SQLite).
    const LOCK_ROWS: &'static str;
    /// Whether memories carry the `search_text` column the full-text index reads (SQLite's
    /// FTS5); Postgres derives its index from the row in the database.
    const SEARCH_TEXT: bool;
    /// The placeholder a stored vector is written through (`$1`, or a cast of it).
    const VECTOR_PLACEHOLDER: &'static str;

    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    /// Brings the schema up to date.
    async fn migrate_schema(&self) -> StoreResult<()>;
    /// A transaction confined to one project (Postgres: row-level security).
    async fn tenant(&self, project: Uuid, access: Access) -> StoreResult<Tx<Self>>;
    /// Confines an open control transaction to `project` from here on.
    async fn enter_project(tx: &mut Tx<Self>, project: Uuid) -> StoreResult<()>;
    /// Appends the conditions every memory read shares — live, in the project, and the
    /// filter's type, tags and time range — for a query whose memories table is aliased `m`.
    fn push_filters(sql: &mut Sql, project: Uuid, filter: &MemoryFilter);
    /// The start of `position(lower(column), needle) > 0` in this database's words, up to the
    /// needle: `instr(lower(content), ` or `strpos(lower(content::text), ` (a JSON column read
    /// as text).
    fn position_in(column: &str) -> String;
    /// A vector as this database stores it.
    fn vector_value(vector: &[f32]) -> Arg;
    /// Prepares the store to search vectors of `model` (Postgres: its HNSW index).
    async fn prepare_index(&self, model: &crate::store::EmbeddingModel) -> StoreResult<()>;

    /// A transaction on the tables no project owns (projects, API keys).
    async fn control(&self) -> StoreResult<Tx<Self>> {
        Ok(self.pool().begin().await?)
    }

    /// A pooled connection for a single statement on the tables no project owns.
    async fn connection(&self) -> StoreResult<PoolConnection<Self::Db>> {
        Ok(self.pool().acquire().await?)
    }

    /// A pooled connection for a single statement that writes (SQLite: its one writing
    /// connection).
    async fn write_connection(&self) -> StoreResult<PoolConnection<Self::Db>> {
        self.connection().await
    }

    /// Commits, then wakes whatever waits for new events in this process (live streams, the
    /// webhook deliverer); readers elsewhere poll.
    async fn commit(tx: Tx<Self>) -> StoreResult<()> {
        tx.commit().await?;
        crate::events::signal::committed();
        Ok(())
    }
}

#[async_trait]
impl<B: Backend + SearchStore> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn ping(&self) -> StoreResult<()> {
        self.connection()
            .await?
            .execute(Sql::new("SELECT 1"))
            .await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.migrate_schema().await
    }
}

/// True when a store error is a unique-constraint violation.
pub(crate) fn is_unique(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(error) if super::is_unique_violation(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_binds_numbered_placeholders_by_number_in_any_order_and_repeated() {
        use sqlx::Connection;
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let sql = Sql::new("SELECT $2 || $1 || $2 AS a, $3 AS b")
            .arg("x")
            .arg("y")
            .arg(7i64);
        let (a, b): (String, i64) = db.fetch_one(sql).await.unwrap();
        assert_eq!((a.as_str(), b), ("yxy", 7));
    }
}
