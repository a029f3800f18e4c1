//! The Postgres backend (15+, with pgvector). Tenant queries run in [`PgStore::scoped`]
//! transactions: `SET LOCAL ROLE codifier_tenant` plus the transaction-local setting
//! `codifier.project_id`, so row-level security confines them to one project whatever role
//! `DATABASE_URL` names. Control tables (projects, api_keys, mcp_sessions) use the pool directly.

mod playbook_sessions;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::*;
use crate::auth::Role;
use crate::embeddings::EmbeddingModel;
use crate::knowledge::MemoryType;

mod snapshots;

/// The role tenant transactions switch to; RLS policies apply to it.
pub const TENANT_ROLE: &str = "codifier_tenant";

/// Connections the pool may open.
const MAX_CONNECTIONS: u32 = 16;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// The Postgres store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// In how many memories a word is common for the text half (see [`COMMON_TERM`]).
    common_term: i64,
}

const MEMORY_COLUMNS: &str = "id, project_id, memory_type, title, content, category, description, \
     confidence, tags, source_role, usage_count, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct MemoryRow {
    id: Uuid,
    project_id: Uuid,
    memory_type: String,
    title: String,
    content: Value,
    category: Option<String>,
    description: Option<String>,
    confidence: f64,
    tags: Vec<String>,
    source_role: Option<String>,
    usage_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl MemoryRow {
    fn into_memory(self) -> StoreResult<Memory> {
        Ok(Memory {
            id: self.id,
            project_id: self.project_id,
            memory_type: MemoryType::parse(&self.memory_type)
                .ok_or_else(|| StoreError::Corrupt(format!("memory type {}", self.memory_type)))?,
            title: self.title,
            content: self.content,
            category: self.category,
            description: self.description,
            confidence: self.confidence,
            tags: self.tags,
            source_role: self.source_role,
            usage_count: self.usage_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    name: String,
    org: Option<String>,
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProjectRow> for Project {
    fn from(row: ProjectRow) -> Self {
        Project {
            id: row.id,
            name: row.name,
            org: row.org,
            metadata: row.metadata,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const KEY_COLUMNS: &str =
    "id, project_id, prefix, key_hash, role, label, created_at, last_used_at, revoked_at";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    project_id: Uuid,
    prefix: String,
    key_hash: String,
    role: String,
    label: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    fn into_secret(self) -> StoreResult<ApiKeySecret> {
        Ok(ApiKeySecret {
            key: ApiKey {
                id: self.id,
                project_id: self.project_id,
                prefix: self.prefix,
                role: Role::parse(&self.role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))?,
                label: self.label,
                created_at: self.created_at,
                last_used_at: self.last_used_at,
                revoked_at: self.revoked_at,
            },
            hash: self.key_hash,
        })
    }
}

/// Confines an open transaction to one project: from here on RLS applies to every statement.
/// `set_config('role', …, true)` is `SET LOCAL ROLE`. Statements are planned for their actual
/// values (`force_custom_plan`): whether a tag or a word is rare decides whether a search starts
/// from the term and tag indexes or from the newest memories, and a cached generic plan would
/// pick one way for every value.
async fn enter_project(tx: &mut Transaction<'_, Postgres>, project: Uuid) -> StoreResult<()> {
    let settings = tenant_settings(project, &[]);
    // Not kept as a prepared statement: its text differs per project.
    sqlx::query(&settings)
        .persistent(false)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The statement [`enter_project`] runs, plus `extra` settings (names and values written in
/// this file, never a caller's text), which [`PgStore::scoped_with`] sends together with
/// `BEGIN`. The project is a [`Uuid`], whose text is only hex digits and dashes, so it can be
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

async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (project_id, actor, tool, action, target_id, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(project)
    .bind(&actor.label)
    .bind(&actor.tool)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One live memory of `project` matching `condition` (on `$2`). RLS already confines the
/// transaction to the project; the explicit filter is a second guard.
async fn memory_where(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    condition: &str,
    value: impl for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
) -> StoreResult<Option<Memory>> {
    let sql = format!(
        "SELECT {MEMORY_COLUMNS} FROM memories WHERE deleted_at IS NULL AND project_id = $1 AND {condition}"
    );
    sqlx::query_as::<_, MemoryRow>(&sql)
        .bind(project)
        .bind(value)
        .fetch_optional(&mut **tx)
        .await?
        .map(MemoryRow::into_memory)
        .transpose()
}

/// Creates a memory inside an open project transaction, or returns the live memory with the same
/// content. Shared by `create_memory` and the playbook steps that store what a session produced.
async fn insert_memory(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    actor: &Actor,
    draft: &MemoryDraft,
) -> StoreResult<(Memory, WriteOutcome)> {
    let hash = content_hash(draft);
    if let Some(existing) = memory_where(tx, project, "content_hash = $2", &hash).await? {
        return Ok((existing, WriteOutcome::Unchanged));
    }
    let at = now();
    let sql = format!(
        "INSERT INTO memories (id, project_id, memory_type, title, content, category, \
         description, confidence, tags, source_role, content_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         RETURNING {MEMORY_COLUMNS}"
    );
    let memory = sqlx::query_as::<_, MemoryRow>(&sql)
        .bind(Uuid::new_v4())
        .bind(project)
        .bind(draft.memory_type.as_str())
        .bind(&draft.title)
        .bind(&draft.content)
        .bind(&draft.category)
        .bind(&draft.description)
        .bind(draft.confidence)
        .bind(&draft.tags)
        .bind(&draft.source_role)
        .bind(&hash)
        .bind(at)
        .fetch_one(&mut **tx)
        .await?
        .into_memory()?;
    let detail = memory_audit_detail(None, &memory);
    audit(
        tx,
        project,
        actor,
        "memory.create",
        &memory.id.to_string(),
        detail,
    )
    .await?;
    Ok((memory, WriteOutcome::Created))
}

/// In how many memories of a project a word is common for the text half: the memories of
/// rarer words are cheap to intersect; a word this common only ranks what rarer words found.
pub const COMMON_TERM: i64 = 4096;
/// The most words a text lookup intersects through memory_terms; a query with more distinct
/// rare words has the rest checked on the ranked candidates only.
const MAX_JOINED_WORDS: usize = 8;

/// Appends the conditions every read shares — live, in the project (RLS confines the rows too;
/// the explicit filter keeps the indexes in use), and the caller's type, tags and time range —
/// for a query whose memories table is aliased `m`.
fn push_filters(sql: &mut QueryBuilder<'_, Postgres>, project: Uuid, filter: &MemoryFilter) {
    sql.push("m.deleted_at IS NULL AND m.project_id = ")
        .push_bind(project);
    if let Some(kind) = filter.memory_type {
        sql.push(" AND m.memory_type = ").push_bind(kind.as_str());
    }
    // Each tag through memory_tags' btree: under RLS `tags @>` never uses the GIN index (see
    // migration 0006), so a rare tag would walk the whole project. One EXISTS per tag lets the
    // planner start from the tag's rows when it is rare, or walk the newest memories and probe
    // the primary key when it is common.
    let mut tags = filter.tags.clone();
    tags.sort();
    tags.dedup();
    for tag in tags {
        sql.push(
            " AND EXISTS (SELECT 1 FROM memory_tags t WHERE t.memory_id = m.id AND t.project_id = ",
        )
        .push_bind(project)
        .push(" AND t.tag = ")
        .push_bind(tag)
        .push(")");
    }
    if let Some(since) = filter.since {
        sql.push(" AND m.created_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        sql.push(" AND m.created_at < ").push_bind(until);
    }
}

/// Lexemes (already normalized by `to_tsvector`) as a tsquery in its text form, joined by
/// `operator` (` & ` or ` | `); each is quoted, so no lexeme is normalized again or read as
/// query syntax.
fn tsquery(lexemes: &[String], operator: &str) -> String {
    let quoted: Vec<String> = lexemes
        .iter()
        .map(|lexeme| format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    quoted.join(operator)
}

/// A vector in pgvector's text form, `[0.1,0.2,…]`.
fn vector_text(vector: &[f32]) -> String {
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

async fn write_revision(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    actor: &Actor,
    before: &Memory,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO memory_revisions (memory_id, project_id, revision, snapshot, actor, tool, created_at) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(revision), 0) + 1 FROM memory_revisions WHERE memory_id = $1), \
         $3, $4, $5, $6)",
    )
    .bind(before.id)
    .bind(project)
    .bind(serde_json::to_value(before).unwrap_or_default())
    .bind(&actor.label)
    .bind(&actor.tool)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
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
            match self.pool.begin_with(begin.clone()).await {
                Err(error) if is_connection_lost(&error) && attempts < MAX_CONNECTIONS => {
                    attempts += 1;
                }
                started => return Ok(started?),
            }
        }
    }

    /// The exact nearest neighbours (a full scan, no HNSW index), for measuring the index's
    /// recall. Only `codifier bench` uses it; searches go through [`Store::vector_candidates`].
    pub async fn exact_vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        self.nearest(project, filter, model, vector, k, true).await
    }

    /// Nearest neighbours by cosine similarity: through the model's HNSW index, or with
    /// `exact` by scanning every row (index scans turned off for the transaction).
    async fn nearest(
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

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
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
}

#[async_trait]
impl ProjectStore for PgStore {
    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        org: Option<&str>,
    ) -> StoreResult<Project> {
        let (id, at) = (Uuid::new_v4(), now());
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as::<_, ProjectRow>(
            "INSERT INTO projects (id, name, org, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, '{}', $4, $4) RETURNING *",
        )
        .bind(id)
        .bind(name)
        .bind(org)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::Conflict(format!(
                    "a project named `{name}` already exists: choose another name"
                ))
            } else {
                error.into()
            }
        })?;
        enter_project(&mut tx, id).await?;
        let detail = serde_json::json!({ "name": name, "org": org });
        audit(
            &mut tx,
            id,
            actor,
            "project.create",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query_as::<_, ProjectRow>("SELECT * FROM projects ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Project::from).collect())
    }

    async fn find_project(&self, id_or_name: &str) -> StoreResult<Option<Project>> {
        let row = sqlx::query_as::<_, ProjectRow>(
            "SELECT * FROM projects WHERE id = $1 OR name = $2 LIMIT 1",
        )
        .bind(Uuid::parse_str(id_or_name).ok())
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Project::from))
    }
}

#[async_trait]
impl MemoryStore for PgStore {
    async fn create_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let mut tx = self.scoped(project).await?;
        let written = insert_memory(&mut tx, project, actor, draft).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn update_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let mut tx = self.scoped(project).await?;
        let before = memory_where(&mut tx, project, "id = $2 FOR UPDATE", id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        if draft_matches(&before, draft) {
            return Ok((before, WriteOutcome::Unchanged));
        }
        let hash = content_hash(draft);
        if let Some(other) = memory_where(&mut tx, project, "content_hash = $2", &hash).await?
            && other.id != id
        {
            return Err(StoreError::Conflict(format!(
                "memory {} already has this type, title and content: update that one or delete it first",
                other.id
            )));
        }
        let sql = format!(
            "UPDATE memories SET memory_type = $1, title = $2, content = $3, category = $4, \
             description = $5, confidence = $6, tags = $7, source_role = $8, content_hash = $9, \
             updated_at = $10, embedding = NULL, embedding_model = NULL, embedding_dim = NULL \
             WHERE id = $11 RETURNING {MEMORY_COLUMNS}"
        );
        let after = sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(draft.memory_type.as_str())
            .bind(&draft.title)
            .bind(&draft.content)
            .bind(&draft.category)
            .bind(&draft.description)
            .bind(draft.confidence)
            .bind(&draft.tags)
            .bind(&draft.source_role)
            .bind(&hash)
            .bind(now())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .into_memory()?;
        write_revision(&mut tx, project, actor, &before).await?;
        let detail = memory_audit_detail(Some(&before), &after);
        audit(
            &mut tx,
            project,
            actor,
            "memory.update",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok((after, WriteOutcome::Updated))
    }

    async fn get_memory(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>> {
        let mut tx = self.scoped(project).await?;
        memory_where(&mut tx, project, "id = $2", id).await
    }

    async fn fetch_memories(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
    ) -> StoreResult<MemoryPage> {
        let mut tx = self.scoped(project).await?;
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories m WHERE "
        ));
        push_filters(&mut sql, project, filter);
        if let Some(query) = &filter.query {
            // Folded by Rust (Unicode) and, as typed, by the database's lower() like the
            // column (which may fold only ASCII), so a verbatim substring always matches.
            let folded = query.to_lowercase();
            sql.push(" AND (strpos(lower(title), ")
                .push_bind(folded.clone())
                .push(") > 0 OR strpos(lower(title), lower(")
                .push_bind(query.clone())
                .push(")) > 0 OR strpos(lower(content::text), ")
                .push_bind(folded)
                .push(") > 0 OR strpos(lower(content::text), lower(")
                .push_bind(query.clone())
                .push(")) > 0)");
        }
        if let Some(after) = &filter.after {
            sql.push(" AND (created_at, id) < (")
                .push_bind(after.created_at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit) + 1);
        let rows = sql
            .build_query_as::<MemoryRow>()
            .fetch_all(&mut *tx)
            .await?;
        end_read(tx);
        let mut memories = rows
            .into_iter()
            .map(MemoryRow::into_memory)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(&mut memories, filter.limit))
    }

    async fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.scoped(project).await?;
        let memory = memory_where(&mut tx, project, "id = $2 FOR UPDATE", id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        sqlx::query("UPDATE memories SET deleted_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut tx,
            project,
            actor,
            "memory.delete",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(memory)
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn list_audit(&self, project: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let mut tx = self.scoped(project).await?;
        let rows: Vec<(
            i64,
            Option<Uuid>,
            String,
            Option<String>,
            String,
            Option<String>,
            Value,
            DateTime<Utc>,
        )> = sqlx::query_as(
            "SELECT id, project_id, actor, tool, action, target_id, detail, created_at \
                 FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        end_read(tx);
        Ok(rows
            .into_iter()
            .map(
                |(id, project_id, actor, tool, action, target_id, detail, created_at)| AuditEntry {
                    id,
                    project_id,
                    actor,
                    tool,
                    action,
                    target_id,
                    detail,
                    created_at,
                },
            )
            .collect())
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
        let words: Vec<String> = terms
            .iter()
            .map(|term| {
                term.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
            })
            .filter(|term| !term.is_empty())
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(project).await?;
        // Matches come from memory_terms through its btree: under row-level security the GIN
        // index on `search` is never used (`@@` is not leakproof; see migration 0003), and a
        // scan of every memory of the project costs ~100 ms at 100,000.
        //
        // A lookup costs in proportion to how many memories hold its words, so each lexeme's
        // memories are counted first, up to the common-word threshold (a bounded index-only
        // probe, ~1 ms). As in Elasticsearch's common-terms query, words at least that common
        // ("every", "request", "limit" in a project about rate limits) do not find: the rarer
        // words find — every one of them with `match_all` — and all words rank what they
        // found. Only when every word is common do they all find, at the cost of merging
        // every one of their memories. The best-covered matches (by the finding words'
        // weights, after the filters) are ranked by ts_rank_cd.
        let joined = words.join(" ");
        let mut lexemes: Vec<(String, i64)> = sqlx::query_as(
            "SELECT x.term, (SELECT count(*) FROM (SELECT 1 FROM memory_terms t \
             WHERE t.project_id = $1 AND t.term = x.term LIMIT $3) s) \
             FROM unnest(tsvector_to_array(to_tsvector('english', $2))) AS x(term)",
        )
        .bind(project)
        .bind(&joined)
        .bind(self.common_term)
        .fetch_all(&mut *tx)
        .await?;
        lexemes.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let (rare, common): (Vec<_>, Vec<_>) = lexemes
            .into_iter()
            .partition(|(_, memories)| *memories < self.common_term);
        let missing = rare.iter().any(|(_, memories)| *memories == 0);
        if (rare.is_empty() && common.is_empty()) || (match_all && missing) {
            // Only stop words, or a word no memory holds while every word must match.
            end_read(tx);
            return Ok(Vec::new());
        }
        let (finding, ranking_only) = if rare.is_empty() {
            (common, Vec::new())
        } else {
            (rare, common)
        };
        let finding: Vec<String> = finding.into_iter().map(|(term, _)| term).collect();
        let ranking_only: Vec<String> = ranking_only.into_iter().map(|(term, _)| term).collect();
        let find_query = tsquery(&finding, if match_all { " & " } else { " | " });
        let rank_query = if ranking_only.is_empty() {
            find_query.clone()
        } else {
            format!("({find_query}) | {}", tsquery(&ranking_only, " | "))
        };
        let filtered = filter.memory_type.is_some()
            || !filter.tags.is_empty()
            || filter.since.is_some()
            || filter.until.is_some();
        let mut sql = QueryBuilder::<Postgres>::new("WITH hits AS (");
        if match_all {
            // Every finding word: one join per word over memory_terms_sorted, whose postings
            // come in memory order, so the planner merges or probes them instead of hashing
            // all of them (3× cheaper on three common words). The rarest word comes first.
            let joined_words = &finding[..finding.len().min(MAX_JOINED_WORDS)];
            sql.push("SELECT t0.memory_id, ");
            for n in 0..joined_words.len() {
                sql.push(if n == 0 { "" } else { " + " })
                    .push(format!("t{n}.weight"));
            }
            sql.push(" AS score FROM memory_terms t0");
            for (n, word) in joined_words.iter().enumerate().skip(1) {
                sql.push(format!(
                    " JOIN memory_terms t{n} ON t{n}.memory_id = t0.memory_id AND t{n}.project_id = "
                ))
                .push_bind(project)
                .push(format!(" AND t{n}.term = "))
                .push_bind(word.clone());
            }
            if filtered {
                sql.push(" JOIN memories m ON m.id = t0.memory_id");
            }
            sql.push(" WHERE t0.project_id = ")
                .push_bind(project)
                .push(" AND t0.term = ")
                .push_bind(joined_words[0].clone());
            if filtered {
                sql.push(" AND ");
                push_filters(&mut sql, project, filter);
            }
            sql.push(" ORDER BY score DESC, t0.memory_id LIMIT ");
        } else {
            sql.push(
                "SELECT matched.memory_id, matched.score FROM (SELECT t.memory_id, \
                 sum(t.weight) AS score FROM memory_terms t WHERE t.project_id = ",
            )
            .push_bind(project)
            .push(" AND t.term = ANY(")
            .push_bind(finding.clone())
            .push(") GROUP BY t.memory_id) matched");
            if filtered {
                sql.push(" JOIN memories m ON m.id = matched.memory_id WHERE ");
                push_filters(&mut sql, project, filter);
            }
            sql.push(" ORDER BY matched.score DESC, matched.memory_id LIMIT ");
        }
        sql.push_bind(i64::from(k) * 2)
            .push(") SELECT m.id, ts_rank_cd(m.search, ")
            .push_bind(rank_query)
            .push(
                "::tsquery)::float8 AS rank FROM hits JOIN memories m ON m.id = hits.memory_id \
                   WHERE m.search @@ ",
            )
            .push_bind(find_query)
            .push("::tsquery AND ");
        push_filters(&mut sql, project, filter);
        sql.push(" ORDER BY rank DESC, m.id LIMIT ")
            .push_bind(i64::from(k));
        let rows: Vec<(Uuid, f64)> = sql.build_query_as().fetch_all(&mut *tx).await?;
        end_read(tx);
        Ok(rows
            .into_iter()
            .map(|(id, score)| Candidate { id, score })
            .collect())
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

    async fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Memory>> {
        let mut tx = self.scoped(project).await?;
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = $1 AND deleted_at IS NULL \
             AND id = ANY($2)"
        );
        let rows = sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
        end_read(tx);
        rows.into_iter().map(MemoryRow::into_memory).collect()
    }
}

#[async_trait]
impl EmbeddingStore for PgStore {
    async fn prepare_vectors(&self, model: &EmbeddingModel) -> StoreResult<()> {
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

    async fn pending_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        limit: u32,
    ) -> StoreResult<Vec<EmbeddingJob>> {
        let mut tx = self.scoped(project).await?;
        let rows: Vec<(Uuid, String, Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, title, content, updated_at FROM memories WHERE project_id = $1 \
             AND deleted_at IS NULL AND (embedding_model IS DISTINCT FROM $2 \
             OR embedding_dim IS DISTINCT FROM $3) ORDER BY created_at LIMIT $4",
        )
        .bind(project)
        .bind(&model.name)
        .bind(model.dimensions as i32)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        end_read(tx);
        Ok(rows
            .into_iter()
            .map(|(id, title, content, updated_at)| EmbeddingJob {
                id,
                text: embedding_text(&title, &content),
                updated_at,
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
        let mut tx = self.scoped(project).await?;
        sqlx::query(
            "UPDATE memories SET embedding = CAST($1 AS vector), embedding_model = $2, \
             embedding_dim = $3 WHERE id = $4 AND updated_at = $5",
        )
        .bind(vector_text(vector))
        .bind(&model.name)
        .bind(model.dimensions as i32)
        .bind(job.id)
        .bind(job.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn embedding_progress(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<(u64, u64)> {
        let mut tx = self.scoped(project).await?;
        let (done, total): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE embedding_model = $1 AND embedding_dim = $2), count(*) \
             FROM memories WHERE project_id = $3 AND deleted_at IS NULL",
        )
        .bind(&model.name)
        .bind(model.dimensions as i32)
        .bind(project)
        .fetch_one(&mut *tx)
        .await?;
        end_read(tx);
        Ok((done as u64, total as u64))
    }
}

#[async_trait]
impl RevisionStore for PgStore {
    async fn memory_history(&self, project: Uuid, id: Uuid) -> StoreResult<Vec<MemoryRevision>> {
        let mut tx = self.scoped(project).await?;
        let rows: Vec<(i32, Value, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT revision, snapshot, actor, tool, created_at FROM memory_revisions \
             WHERE project_id = $1 AND memory_id = $2 ORDER BY revision DESC",
        )
        .bind(project)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        end_read(tx);
        rows.into_iter()
            .map(|(revision, snapshot, actor, tool, replaced_at)| {
                Ok(MemoryRevision {
                    revision,
                    memory: serde_json::from_value(snapshot)
                        .map_err(|_| StoreError::Corrupt("bad revision snapshot".into()))?,
                    actor,
                    tool,
                    replaced_at,
                })
            })
            .collect()
    }

    async fn list_deleted(&self, project: Uuid, limit: u32) -> StoreResult<Vec<Memory>> {
        let mut tx = self.scoped(project).await?;
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = $1 AND deleted_at IS NOT NULL \
             ORDER BY deleted_at DESC LIMIT $2"
        );
        let rows = sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        end_read(tx);
        rows.into_iter().map(MemoryRow::into_memory).collect()
    }

    async fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.scoped(project).await?;
        let sql = format!(
            "UPDATE memories SET deleted_at = NULL WHERE project_id = $1 AND id = $2 \
             AND deleted_at IS NOT NULL RETURNING {MEMORY_COLUMNS}"
        );
        let restored = sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await;
        let memory = match restored {
            Ok(Some(row)) => row.into_memory()?,
            Ok(None) => return Err(StoreError::NotFound(format!("deleted memory {id}"))),
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(
                    "a live memory already has this type, title and content: delete or change it first".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut tx,
            project,
            actor,
            "memory.restore",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(memory)
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> StoreResult<ApiKey> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO api_keys (id, project_id, prefix, key_hash, role, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
        );
        let created = sqlx::query_as::<_, KeyRow>(&sql)
            .bind(Uuid::new_v4())
            .bind(key.project_id)
            .bind(&key.prefix)
            .bind(&key.hash)
            .bind(key.role.as_str())
            .bind(&key.label)
            .bind(now())
            .fetch_one(&mut *tx)
            .await?
            .into_secret()?
            .key;
        enter_project(&mut tx, key.project_id).await?;
        let detail =
            serde_json::json!({ "prefix": key.prefix, "role": key.role, "label": key.label });
        audit(
            &mut tx,
            key.project_id,
            actor,
            "api_key.create",
            &created.id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_api_keys(&self, project: Option<Uuid>) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1::uuid IS NULL OR project_id = $1) ORDER BY created_at"
        );
        sqlx::query_as::<_, KeyRow>(&sql)
            .bind(project)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| row.into_secret().map(|secret| secret.key))
            .collect()
    }

    async fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> StoreResult<ApiKey> {
        let mut tx = self.pool.begin().await?;
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 OR prefix = $2 FOR UPDATE");
        let mut key = sqlx::query_as::<_, KeyRow>(&sql)
            .bind(Uuid::parse_str(id_or_prefix).ok())
            .bind(id_or_prefix)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {id_or_prefix}")))?
            .into_secret()?
            .key;
        if key.revoked_at.is_none() {
            let at = now();
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                .bind(at)
                .bind(key.id)
                .execute(&mut *tx)
                .await?;
            enter_project(&mut tx, key.project_id).await?;
            let detail = serde_json::json!({ "prefix": key.prefix });
            audit(
                &mut tx,
                key.project_id,
                actor,
                "api_key.revoke",
                &key.id.to_string(),
                detail,
            )
            .await?;
            key.revoked_at = Some(at);
        }
        tx.commit().await?;
        Ok(key)
    }

    async fn find_api_key(&self, prefix: &str) -> StoreResult<Option<ApiKeySecret>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1");
        sqlx::query_as::<_, KeyRow>(&sql)
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
            .map(KeyRow::into_secret)
            .transpose()
    }

    async fn touch_api_key(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl McpSessionStore for PgStore {
    async fn load_mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
        let row: Option<(Option<String>, Option<Value>, Option<Uuid>)> = sqlx::query_as(
            "SELECT owner, initialize_params, active_project_id FROM mcp_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(owner, initialize_params, active_project_id)| McpSessionRecord {
                owner,
                initialize_params,
                active_project_id,
            },
        ))
    }

    async fn save_mcp_session_params(&self, id: &str, params: &Value) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO mcp_sessions (id, initialize_params, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET \
             initialize_params = excluded.initialize_params, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(params)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_mcp_session(&self, id: &str, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO mcp_sessions (id, owner, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET owner = COALESCE(mcp_sessions.owner, excluded.owner)",
        )
        .bind(id)
        .bind(owner)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_mcp_session_project(&self, id: &str, project: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO mcp_sessions (id, active_project_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET \
             active_project_id = excluded.active_project_id, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(project)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
