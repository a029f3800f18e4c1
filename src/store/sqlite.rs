//! The embedded SQLite backend: one file (WAL mode), no setup. Project scoping is by `WHERE`
//! clauses on every tenant query; the trait makes the project a required argument.

mod playbook_sessions;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::*;
use crate::auth::Role;
use crate::knowledge::MemoryType;

mod snapshots;
mod vectors;
mod word_search;

pub use vectors::MAX_CACHED_VECTORS;
pub use word_search::COMMON_TERM;

/// How long a pooled connection may sit unused before it is closed ([`SqliteStore::connect`]).
const IDLE_CONNECTION: Duration = Duration::from_secs(20);

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// In how many memories a word is common for the text half (see [`COMMON_TERM`]).
    common_term: i64,
    /// The vectors searched so far, kept in memory (see [`vectors`]).
    vectors: Arc<vectors::VectorCache>,
}

fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_ts(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("bad timestamp {text:?}")))
}

fn parse_opt_ts(text: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn parse_uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("bad id {text:?}")))
}

fn parse_json(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("bad JSON".into()))
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    org: Option<String>,
    metadata: String,
    created_at: String,
    updated_at: String,
}

impl ProjectRow {
    fn into_project(self) -> StoreResult<Project> {
        Ok(Project {
            id: parse_uuid(&self.id)?,
            name: self.name,
            org: self.org,
            metadata: parse_json(&self.metadata)?,
            created_at: parse_ts(&self.created_at)?,
            updated_at: parse_ts(&self.updated_at)?,
        })
    }
}

const MEMORY_COLUMNS: &str = "id, project_id, memory_type, title, content, category, description, \
     confidence, tags, source_role, usage_count, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct MemoryRow {
    id: String,
    project_id: String,
    memory_type: String,
    title: String,
    content: String,
    category: Option<String>,
    description: Option<String>,
    confidence: f64,
    tags: String,
    source_role: Option<String>,
    usage_count: i64,
    created_at: String,
    updated_at: String,
}

impl MemoryRow {
    fn into_memory(self) -> StoreResult<Memory> {
        Ok(Memory {
            id: parse_uuid(&self.id)?,
            project_id: parse_uuid(&self.project_id)?,
            memory_type: MemoryType::parse(&self.memory_type)
                .ok_or_else(|| StoreError::Corrupt(format!("memory type {}", self.memory_type)))?,
            title: self.title,
            content: parse_json(&self.content)?,
            category: self.category,
            description: self.description,
            confidence: self.confidence,
            tags: serde_json::from_str(&self.tags)
                .map_err(|_| StoreError::Corrupt("bad tags".into()))?,
            source_role: self.source_role,
            usage_count: self.usage_count,
            created_at: parse_ts(&self.created_at)?,
            updated_at: parse_ts(&self.updated_at)?,
        })
    }
}

const KEY_COLUMNS: &str =
    "id, project_id, prefix, key_hash, role, label, created_at, last_used_at, revoked_at";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    project_id: String,
    prefix: String,
    key_hash: String,
    role: String,
    label: Option<String>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl KeyRow {
    fn into_secret(self) -> StoreResult<ApiKeySecret> {
        Ok(ApiKeySecret {
            key: ApiKey {
                id: parse_uuid(&self.id)?,
                project_id: parse_uuid(&self.project_id)?,
                prefix: self.prefix,
                role: Role::parse(&self.role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))?,
                label: self.label,
                created_at: parse_ts(&self.created_at)?,
                last_used_at: parse_opt_ts(self.last_used_at)?,
                revoked_at: parse_opt_ts(self.revoked_at)?,
            },
            hash: self.key_hash,
        })
    }
}

async fn audit(
    tx: &mut Transaction<'_, Sqlite>,
    project: Option<Uuid>,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (project_id, actor, tool, action, target_id, detail, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(project.map(|id| id.to_string()))
    .bind(&actor.label)
    .bind(&actor.tool)
    .bind(action)
    .bind(target)
    .bind(detail.to_string())
    .bind(ts(now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends the conditions every read shares — live, in the project, and the caller's type, tags
/// and time range — for a query whose memories table is aliased `m`.
fn push_filters(sql: &mut QueryBuilder<'_, Sqlite>, project: Uuid, filter: &MemoryFilter) {
    sql.push("m.deleted_at IS NULL AND m.project_id = ")
        .push_bind(project.to_string());
    if let Some(kind) = filter.memory_type {
        sql.push(" AND m.memory_type = ").push_bind(kind.as_str());
    }
    if !filter.tags.is_empty() {
        sql.push(" AND NOT EXISTS (SELECT 1 FROM json_each(")
            .push_bind(serde_json::to_string(&filter.tags).unwrap_or_default())
            .push(") AS wanted WHERE wanted.value NOT IN (SELECT value FROM json_each(m.tags)))");
    }
    if let Some(since) = filter.since {
        sql.push(" AND m.created_at >= ").push_bind(ts(since));
    }
    if let Some(until) = filter.until {
        sql.push(" AND m.created_at < ").push_bind(ts(until));
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

async fn write_revision(
    tx: &mut Transaction<'_, Sqlite>,
    project: Uuid,
    actor: &Actor,
    before: &Memory,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO memory_revisions (memory_id, project_id, revision, snapshot, actor, tool, created_at) \
         VALUES (?, ?, (SELECT COALESCE(MAX(revision), 0) + 1 FROM memory_revisions WHERE memory_id = ?), ?, ?, ?, ?)",
    )
    .bind(before.id.to_string())
    .bind(project.to_string())
    .bind(before.id.to_string())
    .bind(serde_json::to_string(before).unwrap_or_default())
    .bind(&actor.label)
    .bind(&actor.tool)
    .bind(ts(now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// Creates a memory inside an open write transaction, or returns the live memory with the
    /// same content. Shared by `create_memory` and the playbook steps that store what a session
    /// produced.
    async fn insert_memory(
        tx: &mut Transaction<'_, Sqlite>,
        project: Uuid,
        actor: &Actor,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let hash = content_hash(draft);
        if let Some(existing) = Self::memory_with_hash(tx, project, &hash).await? {
            return Ok((existing, WriteOutcome::Unchanged));
        }
        let (id, at) = (Uuid::new_v4(), now());
        sqlx::query(
            "INSERT INTO memories (id, project_id, memory_type, title, content, category, \
             description, confidence, tags, source_role, content_hash, created_at, updated_at, \
             search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(project.to_string())
        .bind(draft.memory_type.as_str())
        .bind(&draft.title)
        .bind(draft.content.to_string())
        .bind(&draft.category)
        .bind(&draft.description)
        .bind(draft.confidence)
        .bind(serde_json::to_string(&draft.tags).unwrap_or_else(|_| "[]".into()))
        .bind(&draft.source_role)
        .bind(&hash)
        .bind(ts(at))
        .bind(ts(at))
        .bind(content_text(&draft.content))
        .execute(&mut **tx)
        .await?;
        let memory = Self::memory_in(tx, project, id)
            .await?
            .ok_or_else(|| StoreError::NotFound("memory".into()))?;
        let detail = memory_audit_detail(None, &memory);
        audit(
            tx,
            Some(project),
            actor,
            "memory.create",
            &id.to_string(),
            detail,
        )
        .await?;
        Ok((memory, WriteOutcome::Created))
    }
}

impl SqliteStore {
    /// A write transaction that takes SQLite's write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred one that reads first and writes later fails at once with "database is locked"
    /// when another writer got there first, while this one waits up to the busy timeout.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Opens (creating when missing) the database file a `sqlite:` URL names.
    ///
    /// Each connection keeps its own page cache (up to 2 MB) and prepared statements; a
    /// connection idle for [`IDLE_CONNECTION`] is closed, so a server that went quiet gives
    /// that memory back. Opening one again costs about a millisecond.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let file = options.get_filename();
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Corrupt(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .idle_timeout(IDLE_CONNECTION)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            common_term: COMMON_TERM,
            vectors: Arc::default(),
        })
    }

    /// Sets in how many memories a word counts as common for the text half (default
    /// [`COMMON_TERM`]), so tests on a few memories can reach every plan of the lookup.
    pub fn with_common_term(mut self, memories: i64) -> Self {
        self.common_term = memories.max(1);
        self
    }

    /// The exact nearest neighbours by a scan of every stored vector (no cache), for measuring
    /// the cached search's recall. Only `codifier bench` uses it.
    pub async fn exact_vector_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        model: &EmbeddingModel,
        vector: &[f32],
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT m.id, m.embedding FROM memories m WHERE ");
        push_filters(&mut sql, project, filter);
        sql.push(" AND m.embedding_model = ")
            .push_bind(model.name.clone())
            .push(" AND m.embedding_dim = ")
            .push_bind(model.dimensions as i64);
        let rows: Vec<(String, Vec<u8>)> = sql.build_query_as().fetch_all(&self.pool).await?;
        let query = vector.to_vec();
        let scored = tokio::task::spawn_blocking(move || {
            let mut scored: Vec<(String, f32)> = rows
                .into_iter()
                .map(|(id, blob)| (id, crate::embeddings::cosine(&query, &blob_vector(&blob))))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            scored.truncate(k as usize);
            scored
        })
        .await
        .map_err(|error| StoreError::Corrupt(format!("vector scan failed: {error}")))?;
        scored
            .into_iter()
            .map(|(id, score)| {
                Ok(Candidate {
                    id: parse_uuid(&id)?,
                    score: f64::from(score),
                })
            })
            .collect()
    }

    async fn memory_in(
        tx: &mut Transaction<'_, Sqlite>,
        project: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<Memory>> {
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = ? AND id = ? AND deleted_at IS NULL"
        );
        sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?
            .map(MemoryRow::into_memory)
            .transpose()
    }

    async fn memory_with_hash(
        tx: &mut Transaction<'_, Sqlite>,
        project: Uuid,
        hash: &str,
    ) -> StoreResult<Option<Memory>> {
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories \
             WHERE project_id = ? AND content_hash = ? AND deleted_at IS NULL"
        );
        sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project.to_string())
            .bind(hash)
            .fetch_optional(&mut **tx)
            .await?
            .map(MemoryRow::into_memory)
            .transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        org: Option<&str>,
    ) -> StoreResult<Project> {
        let (id, at) = (Uuid::new_v4(), now());
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO projects (id, name, org, metadata, created_at, updated_at) \
             VALUES (?, ?, ?, '{}', ?, ?)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(org)
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            return Err(if is_unique_violation(&error) {
                StoreError::Conflict(format!(
                    "a project named `{name}` already exists: choose another name"
                ))
            } else {
                error.into()
            });
        }
        let detail = serde_json::json!({ "name": name, "org": org });
        audit(
            &mut tx,
            Some(id),
            actor,
            "project.create",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Project {
            id,
            name: name.to_owned(),
            org: org.map(str::to_owned),
            metadata: serde_json::json!({}),
            created_at: at,
            updated_at: at,
        })
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        sqlx::query_as::<_, ProjectRow>("SELECT * FROM projects ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(ProjectRow::into_project)
            .collect()
    }

    async fn find_project(&self, id_or_name: &str) -> StoreResult<Option<Project>> {
        let by_id = Uuid::parse_str(id_or_name).ok().map(|id| id.to_string());
        sqlx::query_as::<_, ProjectRow>("SELECT * FROM projects WHERE id = ? OR name = ? LIMIT 1")
            .bind(by_id)
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await?
            .map(ProjectRow::into_project)
            .transpose()
    }

    async fn create_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let mut tx = self.write_tx().await?;
        let written = Self::insert_memory(&mut tx, project, actor, draft).await?;
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
        let mut tx = self.write_tx().await?;
        let before = Self::memory_in(&mut tx, project, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        if draft_matches(&before, draft) {
            return Ok((before, WriteOutcome::Unchanged));
        }
        let hash = content_hash(draft);
        if let Some(other) = Self::memory_with_hash(&mut tx, project, &hash).await?
            && other.id != id
        {
            return Err(StoreError::Conflict(format!(
                "memory {} already has this type, title and content: update that one or delete it first",
                other.id
            )));
        }
        sqlx::query(
            "UPDATE memories SET memory_type = ?, title = ?, content = ?, category = ?, \
             description = ?, confidence = ?, tags = ?, source_role = ?, content_hash = ?, \
             updated_at = ?, search_text = ?, embedding = NULL, embedding_model = NULL, \
             embedding_dim = NULL WHERE project_id = ? AND id = ?",
        )
        .bind(draft.memory_type.as_str())
        .bind(&draft.title)
        .bind(draft.content.to_string())
        .bind(&draft.category)
        .bind(&draft.description)
        .bind(draft.confidence)
        .bind(serde_json::to_string(&draft.tags).unwrap_or_else(|_| "[]".into()))
        .bind(&draft.source_role)
        .bind(&hash)
        .bind(ts(now()))
        .bind(content_text(&draft.content))
        .bind(project.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let after = Self::memory_in(&mut tx, project, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        write_revision(&mut tx, project, actor, &before).await?;
        let detail = memory_audit_detail(Some(&before), &after);
        audit(
            &mut tx,
            Some(project),
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
        let mut tx = self.pool.begin().await?;
        Self::memory_in(&mut tx, project, id).await
    }

    async fn fetch_memories(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
    ) -> StoreResult<MemoryPage> {
        let mut sql =
            QueryBuilder::<Sqlite>::new(format!("SELECT {MEMORY_COLUMNS} FROM memories m WHERE "));
        push_filters(&mut sql, project, filter);
        if let Some(query) = &filter.query {
            // Folded by Rust (Unicode) and, as typed, by the database's lower() like the
            // column (which may fold only ASCII), so a verbatim substring always matches.
            let folded = query.to_lowercase();
            sql.push(" AND (instr(lower(title), ")
                .push_bind(folded.clone())
                .push(") > 0 OR instr(lower(title), lower(")
                .push_bind(query.clone())
                .push(")) > 0 OR instr(lower(content), ")
                .push_bind(folded)
                .push(") > 0 OR instr(lower(content), lower(")
                .push_bind(query.clone())
                .push(")) > 0)");
        }
        if let Some(after) = &filter.after {
            sql.push(" AND (created_at < ")
                .push_bind(ts(after.created_at))
                .push(" OR (created_at = ")
                .push_bind(ts(after.created_at))
                .push(" AND id < ")
                .push_bind(after.id.to_string())
                .push("))");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit) + 1);
        let rows = sql
            .build_query_as::<MemoryRow>()
            .fetch_all(&self.pool)
            .await?;
        let mut memories = rows
            .into_iter()
            .map(MemoryRow::into_memory)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(&mut memories, filter.limit))
    }

    async fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.write_tx().await?;
        let memory = Self::memory_in(&mut tx, project, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        sqlx::query("UPDATE memories SET deleted_at = ? WHERE project_id = ? AND id = ?")
            .bind(ts(now()))
            .bind(project.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut tx,
            Some(project),
            actor,
            "memory.delete",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(memory)
    }

    async fn list_audit(&self, project: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<(
            i64,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
        )> = sqlx::query_as(
            "SELECT id, project_id, actor, tool, action, target_id, detail, created_at \
                 FROM audit_log WHERE project_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(project.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(id, project_id, actor, tool, action, target_id, detail, created_at)| {
                    Ok(AuditEntry {
                        id,
                        project_id: project_id.as_deref().map(parse_uuid).transpose()?,
                        actor,
                        tool,
                        action,
                        target_id,
                        detail: parse_json(&detail)?,
                        created_at: parse_ts(&created_at)?,
                    })
                },
            )
            .collect()
    }

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

    async fn memories_by_ids(&self, project: Uuid, ids: &[Uuid]) -> StoreResult<Vec<Memory>> {
        // CROSS JOIN from the ids: with `project_id = ?` the planner would otherwise walk
        // every memory of the project through its index (2 s at 100,000).
        let columns = MEMORY_COLUMNS.replace(", ", ", m.");
        let sql = format!(
            "SELECT m.{columns} FROM json_each(?) AS wanted CROSS JOIN memories m \
             ON m.id = wanted.value WHERE m.project_id = ? AND m.deleted_at IS NULL"
        );
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(serde_json::to_string(&ids).unwrap_or_default())
            .bind(project.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(MemoryRow::into_memory)
            .collect()
    }

    async fn prepare_vectors(&self, _model: &EmbeddingModel) -> StoreResult<()> {
        Ok(())
    }

    async fn pending_embeddings(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
        limit: u32,
    ) -> StoreResult<Vec<EmbeddingJob>> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, title, content, updated_at FROM memories WHERE project_id = ? \
             AND deleted_at IS NULL AND (embedding_model IS NULL OR embedding_model != ? \
             OR embedding_dim != ?) ORDER BY created_at LIMIT ?",
        )
        .bind(project.to_string())
        .bind(&model.name)
        .bind(model.dimensions as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, title, content, updated_at)| {
                Ok(EmbeddingJob {
                    id: parse_uuid(&id)?,
                    text: embedding_text(&title, &parse_json(&content)?),
                    updated_at: parse_ts(&updated_at)?,
                })
            })
            .collect()
    }

    async fn store_embedding(
        &self,
        project: Uuid,
        job: &EmbeddingJob,
        model: &EmbeddingModel,
        vector: &[f32],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE memories SET embedding = ?, embedding_model = ?, embedding_dim = ? \
             WHERE project_id = ? AND id = ? AND updated_at = ?",
        )
        .bind(vector_blob(vector))
        .bind(&model.name)
        .bind(model.dimensions as i64)
        .bind(project.to_string())
        .bind(job.id.to_string())
        .bind(ts(job.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn embedding_progress(
        &self,
        project: Uuid,
        model: &EmbeddingModel,
    ) -> StoreResult<(u64, u64)> {
        let (done, total): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(embedding_model = ? AND embedding_dim = ?), 0), COUNT(*) \
             FROM memories WHERE project_id = ? AND deleted_at IS NULL",
        )
        .bind(&model.name)
        .bind(model.dimensions as i64)
        .bind(project.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok((done as u64, total as u64))
    }

    async fn memory_history(&self, project: Uuid, id: Uuid) -> StoreResult<Vec<MemoryRevision>> {
        let rows: Vec<(i32, String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT revision, snapshot, actor, tool, created_at FROM memory_revisions \
             WHERE project_id = ? AND memory_id = ? ORDER BY revision DESC",
        )
        .bind(project.to_string())
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(revision, snapshot, actor, tool, created_at)| {
                Ok(MemoryRevision {
                    revision,
                    memory: serde_json::from_str(&snapshot)
                        .map_err(|_| StoreError::Corrupt("bad revision snapshot".into()))?,
                    actor,
                    tool,
                    replaced_at: parse_ts(&created_at)?,
                })
            })
            .collect()
    }

    async fn list_deleted(&self, project: Uuid, limit: u32) -> StoreResult<Vec<Memory>> {
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = ? AND deleted_at IS NOT NULL \
             ORDER BY deleted_at DESC LIMIT ?"
        );
        sqlx::query_as::<_, MemoryRow>(&sql)
            .bind(project.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(MemoryRow::into_memory)
            .collect()
    }

    async fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.write_tx().await?;
        let restored = sqlx::query(
            "UPDATE memories SET deleted_at = NULL WHERE project_id = ? AND id = ? \
             AND deleted_at IS NOT NULL",
        )
        .bind(project.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await;
        match restored {
            Ok(done) if done.rows_affected() == 0 => {
                return Err(StoreError::NotFound(format!("deleted memory {id}")));
            }
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(
                    "a live memory already has this type, title and content: delete or change it first".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        let memory = Self::memory_in(&mut tx, project, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut tx,
            Some(project),
            actor,
            "memory.restore",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(memory)
    }

    async fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> StoreResult<ApiKey> {
        let (id, at) = (Uuid::new_v4(), now());
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, project_id, prefix, key_hash, role, label, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(key.project_id.to_string())
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(key.role.as_str())
        .bind(&key.label)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        let detail =
            serde_json::json!({ "prefix": key.prefix, "role": key.role, "label": key.label });
        audit(
            &mut tx,
            Some(key.project_id),
            actor,
            "api_key.create",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(ApiKey {
            id,
            project_id: key.project_id,
            prefix: key.prefix.clone(),
            role: key.role,
            label: key.label.clone(),
            created_at: at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    async fn list_api_keys(&self, project: Option<Uuid>) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (? IS NULL OR project_id = ?) ORDER BY created_at"
        );
        let project = project.map(|id| id.to_string());
        sqlx::query_as::<_, KeyRow>(&sql)
            .bind(&project)
            .bind(&project)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| row.into_secret().map(|secret| secret.key))
            .collect()
    }

    async fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> StoreResult<ApiKey> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ? OR prefix = ?");
        // Ids are stored hyphenated and lower-case: accept any form of a UUID, as Postgres does.
        let by_id = Uuid::parse_str(id_or_prefix).ok().map(|id| id.to_string());
        let mut key = sqlx::query_as::<_, KeyRow>(&sql)
            .bind(by_id)
            .bind(id_or_prefix)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {id_or_prefix}")))?
            .into_secret()?
            .key;
        if key.revoked_at.is_none() {
            let at = now();
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
                .bind(ts(at))
                .bind(key.id.to_string())
                .execute(&mut *tx)
                .await?;
            let detail = serde_json::json!({ "prefix": key.prefix });
            audit(
                &mut tx,
                Some(key.project_id),
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
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?");
        sqlx::query_as::<_, KeyRow>(&sql)
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
            .map(KeyRow::into_secret)
            .transpose()
    }

    async fn touch_api_key(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
            .bind(ts(now()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: &PlaybookSession,
    ) -> StoreResult<()> {
        self.create_session(project, actor, session).await
    }

    async fn get_playbook_session(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<PlaybookSession>> {
        self.get_session(project, id).await
    }

    async fn list_playbook_sessions(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<PlaybookSession>> {
        self.list_sessions(project, limit).await
    }

    async fn save_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: PlaybookSession,
        memories: &[StepMemory],
    ) -> StoreResult<(PlaybookSession, Vec<(Memory, WriteOutcome)>)> {
        self.save_session(project, actor, session, memories).await
    }

    async fn record_session_data(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        key: &str,
        value: &Value,
    ) -> StoreResult<PlaybookSession> {
        self.record_data(project, actor, id, key, value).await
    }

    async fn load_mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
        let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT owner, initialize_params, active_project_id FROM mcp_sessions WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(owner, params, project)| {
            Ok(McpSessionRecord {
                owner,
                initialize_params: params.as_deref().map(parse_json).transpose()?,
                active_project_id: project.as_deref().map(parse_uuid).transpose()?,
            })
        })
        .transpose()
    }

    async fn save_mcp_session_params(&self, id: &str, params: &Value) -> StoreResult<()> {
        let at = ts(now());
        sqlx::query(
            "INSERT INTO mcp_sessions (id, initialize_params, created_at, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
             initialize_params = excluded.initialize_params, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(params.to_string())
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_mcp_session(&self, id: &str, owner: &str) -> StoreResult<()> {
        let at = ts(now());
        sqlx::query(
            "INSERT INTO mcp_sessions (id, owner, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET owner = COALESCE(mcp_sessions.owner, excluded.owner)",
        )
        .bind(id)
        .bind(owner)
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_mcp_session_project(&self, id: &str, project: Uuid) -> StoreResult<()> {
        let at = ts(now());
        sqlx::query(
            "INSERT INTO mcp_sessions (id, active_project_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
             active_project_id = excluded.active_project_id, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(project.to_string())
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM mcp_sessions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
