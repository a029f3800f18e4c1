//! Memories and their revisions, always inside one project's transaction. RLS (Postgres)
//! confines the rows too; the explicit `project_id` filters are a second guard and keep the
//! indexes in use.

use async_trait::async_trait;
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Connection, Id, Json, Sql, Tags, Time, is_unique};
use crate::store::{
    Actor, Memory, MemoryDraft, MemoryFilter, MemoryPage, MemoryRevision, MemoryStore, MemoryType,
    RevisionStore, StoreError, StoreResult, WriteOutcome, content_hash, content_text,
    draft_matches, memory_audit_detail, now, page,
};

pub(crate) const MEMORY_COLUMNS: &str = "id, project_id, memory_type, title, content, category, \
     description, confidence, tags, source_role, usage_count, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct MemoryRow {
    id: Id,
    project_id: Id,
    memory_type: String,
    title: String,
    content: Json,
    category: Option<String>,
    description: Option<String>,
    confidence: f64,
    tags: Tags,
    source_role: Option<String>,
    usage_count: i64,
    created_at: Time,
    updated_at: Time,
}

impl MemoryRow {
    pub(crate) fn into_memory(self) -> StoreResult<Memory> {
        Ok(Memory {
            id: self.id.0,
            project_id: self.project_id.0,
            memory_type: MemoryType::parse(&self.memory_type)
                .ok_or_else(|| StoreError::Corrupt(format!("memory type {}", self.memory_type)))?,
            title: self.title,
            content: self.content.0,
            category: self.category,
            description: self.description,
            confidence: self.confidence,
            tags: self.tags.0,
            source_role: self.source_role,
            usage_count: self.usage_count,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// Rows of a memory query, as memories.
pub(crate) async fn memories(tx: &mut impl Conn, sql: Sql) -> StoreResult<Vec<Memory>> {
    let rows: Vec<MemoryRow> = tx.fetch_all(sql).await?;
    rows.into_iter().map(MemoryRow::into_memory).collect()
}

/// One live memory of `project` whose `column` is `$2` (`suffix` after, e.g. a row lock).
pub(super) async fn memory_where(
    tx: &mut impl Conn,
    project: Uuid,
    column: &str,
    value: impl Into<super::Arg>,
    suffix: &str,
) -> StoreResult<Option<Memory>> {
    let sql = Sql::new(format!(
        "SELECT {MEMORY_COLUMNS} FROM memories \
         WHERE deleted_at IS NULL AND project_id = $1 AND {column} = $2{suffix}"
    ))
    .arg(project)
    .arg(value);
    let row: Option<MemoryRow> = tx.fetch_optional(sql).await?;
    row.map(MemoryRow::into_memory).transpose()
}

/// The conflict of writing content another live memory of the project already has.
pub(super) fn duplicate(other: Uuid) -> StoreError {
    StoreError::Conflict(format!(
        "memory {other} already has this type, title and content: update that one or delete it first"
    ))
}

/// Creates a memory inside an open project transaction, or returns the live memory with the same
/// content. Shared by `create_memory` and the playbook steps that store what a session produced.
pub(crate) async fn insert_memory<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    actor: &Actor,
    draft: &MemoryDraft,
) -> StoreResult<(Memory, WriteOutcome)> {
    let hash = content_hash(draft);
    if let Some(existing) = memory_where(tx, project, "content_hash", &hash, "").await? {
        return Ok((existing, WriteOutcome::Unchanged));
    }
    let memory = insert_row::<B>(tx, project, actor, Uuid::new_v4(), draft, &hash).await?;
    Ok((memory, WriteOutcome::Created))
}

/// Inserts memory `id` (whose content hash is `hash`) and its audit entry.
pub(super) async fn insert_row<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    actor: &Actor,
    id: Uuid,
    draft: &MemoryDraft,
    hash: &str,
) -> StoreResult<Memory> {
    let (search_column, search_value) = if B::SEARCH_TEXT {
        (", search_text", ", $13")
    } else {
        ("", "")
    };
    let sql = Sql::new(format!(
        "INSERT INTO memories (id, project_id, memory_type, title, content, category, \
         description, confidence, tags, source_role, content_hash, created_at, updated_at\
         {search_column}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12\
         {search_value}) RETURNING {MEMORY_COLUMNS}"
    ))
    .arg(id)
    .arg(project);
    let mut sql = draft_args(sql, draft).arg(hash).arg(now());
    if B::SEARCH_TEXT {
        sql = sql.arg(content_text(&draft.content));
    }
    let memory = tx.fetch_one::<MemoryRow>(sql).await?.into_memory()?;
    let detail = memory_audit_detail(None, &memory);
    let target = memory.id.to_string();
    audit(tx, project, actor, "memory.create", &target, detail).await?;
    Ok(memory)
}

/// Binds a draft's fields, in the order both writes list their columns: type, title, content,
/// category, description, confidence, tags, source role.
fn draft_args(sql: Sql, draft: &MemoryDraft) -> Sql {
    sql.arg(draft.memory_type.as_str())
        .arg(&draft.title)
        .arg(&draft.content)
        .arg(&draft.category)
        .arg(&draft.description)
        .arg(draft.confidence)
        .arg(&draft.tags)
        .arg(&draft.source_role)
}

/// Keeps the version a write replaces as the memory's next revision.
pub(super) async fn write_revision(
    tx: &mut impl Conn,
    project: Uuid,
    actor: &Actor,
    before: &Memory,
) -> StoreResult<i64> {
    let sql = Sql::new(
        "INSERT INTO memory_revisions (memory_id, project_id, revision, snapshot, actor, tool, \
         created_at) VALUES ($1, $2, (SELECT COALESCE(MAX(revision), 0) + 1 \
         FROM memory_revisions WHERE memory_id = $1), $3, $4, $5, $6) RETURNING revision",
    )
    .arg(before.id)
    .arg(project)
    .arg(serde_json::to_value(before).unwrap_or_default())
    .arg(&actor.label)
    .arg(&actor.tool)
    .arg(now());
    let (revision,): (i32,) = tx.fetch_one(sql).await?;
    Ok(i64::from(revision))
}

/// Writes `draft` over memory `id`, clearing its vector; returns the memory as written.
pub(super) async fn overwrite<B: Backend>(
    tx: &mut Connection<B>,
    id: Uuid,
    draft: &MemoryDraft,
    hash: &str,
) -> StoreResult<Memory> {
    let search = if B::SEARCH_TEXT {
        ", search_text = $12"
    } else {
        ""
    };
    let sql = Sql::new(format!(
        "UPDATE memories SET memory_type = $1, title = $2, content = $3, category = $4, \
         description = $5, confidence = $6, tags = $7, source_role = $8, content_hash = $9, \
         updated_at = $10, embedding = NULL, embedding_model = NULL, embedding_dim = NULL, \
         embedding_claimed_until = NULL{search} \
         WHERE id = $11 RETURNING {MEMORY_COLUMNS}"
    ));
    let mut sql = draft_args(sql, draft).arg(hash).arg(now()).arg(id);
    if B::SEARCH_TEXT {
        sql = sql.arg(content_text(&draft.content));
    }
    tx.fetch_one::<MemoryRow>(sql).await?.into_memory()
}

#[async_trait]
impl<B: Backend> MemoryStore for B {
    async fn create_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let written = insert_memory::<B>(&mut tx, project, actor, draft).await?;
        B::commit(tx).await?;
        Ok(written)
    }

    async fn update_memory(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        draft: &MemoryDraft,
    ) -> StoreResult<(Memory, WriteOutcome)> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let before = memory_where(&mut *tx, project, "id", id, B::LOCK_ROWS)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        if draft_matches(&before, draft) {
            return Ok((before, WriteOutcome::Unchanged));
        }
        let hash = content_hash(draft);
        if let Some(other) = memory_where(&mut *tx, project, "content_hash", &hash, "").await?
            && other.id != id
        {
            return Err(duplicate(other.id));
        }
        let after = overwrite::<B>(&mut tx, id, draft, &hash).await?;
        let revision = write_revision(&mut *tx, project, actor, &before).await?;
        let detail = memory_audit_detail(Some((&before, revision)), &after);
        audit(
            &mut *tx,
            project,
            actor,
            "memory.update",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok((after, WriteOutcome::Updated))
    }

    async fn put_memories(
        &self,
        project: Uuid,
        actor: &Actor,
        items: &[(Uuid, MemoryDraft)],
    ) -> StoreResult<Vec<(Memory, WriteOutcome)>> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let mut written = Vec::with_capacity(items.len());
        for (id, draft) in items {
            written.push(super::memory_batch::put::<B>(&mut tx, project, actor, *id, draft).await?);
        }
        B::commit(tx).await?;
        Ok(written)
    }

    async fn get_memory(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        memory_where(&mut *tx, project, "id", id, "").await
    }

    async fn fetch_memories(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
    ) -> StoreResult<MemoryPage> {
        let mut sql = Sql::new(format!("SELECT {MEMORY_COLUMNS} FROM memories m WHERE "));
        B::push_filters(&mut sql, project, filter);
        if let Some(query) = &filter.query {
            // Folded by Rust (Unicode) and, as typed, by the database's lower() like the
            // column (which may fold only ASCII), so a verbatim substring always matches.
            let folded = query.to_lowercase();
            sql.push(" AND (");
            for (n, column) in ["title", "content"].into_iter().enumerate() {
                sql.push(if n == 0 { "" } else { " OR " })
                    .push(&B::position_in(column))
                    .push_arg(folded.clone())
                    .push(") > 0 OR ")
                    .push(&B::position_in(column))
                    .push("lower(")
                    .push_arg(query.clone())
                    .push(")) > 0");
            }
            sql.push(")");
        }
        if let Some(after) = &filter.after {
            sql.push(" AND (created_at, id) < (")
                .push_arg(after.created_at)
                .push(", ")
                .push_arg(after.id)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_arg(i64::from(filter.limit) + 1);
        let mut tx = self.tenant(project, Access::Read).await?;
        let mut memories = memories(&mut *tx, sql).await?;
        Ok(page(&mut memories, filter.limit))
    }

    async fn delete_memory(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let memory = memory_where(&mut *tx, project, "id", id, B::LOCK_ROWS)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("memory {id}")))?;
        let sql = Sql::new("UPDATE memories SET deleted_at = $1 WHERE project_id = $2 AND id = $3")
            .arg(now())
            .arg(project)
            .arg(id);
        tx.execute(sql).await?;
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut *tx,
            project,
            actor,
            "memory.delete",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(memory)
    }

    async fn count_memories(&self, project: Uuid) -> StoreResult<u64> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql =
            Sql::new("SELECT count(*) FROM memories WHERE project_id = $1 AND deleted_at IS NULL")
                .arg(project);
        let (count,): (i64,) = tx.fetch_one(sql).await?;
        Ok(count as u64)
    }
}

#[derive(sqlx::FromRow)]
struct RevisionRow {
    revision: i32,
    snapshot: Json,
    actor: String,
    tool: Option<String>,
    created_at: Time,
}

#[async_trait]
impl<B: Backend> RevisionStore for B {
    async fn memory_history(&self, project: Uuid, id: Uuid) -> StoreResult<Vec<MemoryRevision>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT revision, snapshot, actor, tool, created_at FROM memory_revisions \
             WHERE project_id = $1 AND memory_id = $2 ORDER BY revision DESC",
        )
        .arg(project)
        .arg(id);
        let rows: Vec<RevisionRow> = tx.fetch_all(sql).await?;
        rows.into_iter()
            .map(|row| {
                Ok(MemoryRevision {
                    revision: row.revision,
                    memory: serde_json::from_value(row.snapshot.0)
                        .map_err(|_| StoreError::Corrupt("bad revision snapshot".into()))?,
                    actor: row.actor,
                    tool: row.tool,
                    replaced_at: row.created_at.0,
                })
            })
            .collect()
    }

    async fn list_deleted(&self, project: Uuid, limit: u32) -> StoreResult<Vec<Memory>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = $1 \
             AND deleted_at IS NOT NULL ORDER BY deleted_at DESC LIMIT $2"
        ))
        .arg(project)
        .arg(i64::from(limit));
        memories(&mut *tx, sql).await
    }

    async fn find_deleted(&self, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE project_id = $1 AND id = $2 \
             AND deleted_at IS NOT NULL"
        ))
        .arg(project)
        .arg(id);
        let row: Option<MemoryRow> = tx.fetch_optional(sql).await?;
        row.map(MemoryRow::into_memory).transpose()
    }

    async fn restore_deleted(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Memory> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "UPDATE memories SET deleted_at = NULL WHERE project_id = $1 AND id = $2 \
             AND deleted_at IS NOT NULL RETURNING {MEMORY_COLUMNS}"
        ))
        .arg(project)
        .arg(id);
        let memory = match tx.fetch_optional::<MemoryRow>(sql).await {
            Ok(Some(row)) => row.into_memory()?,
            Ok(None) => return Err(StoreError::NotFound(format!("deleted memory {id}"))),
            Err(error) if is_unique(&error) => {
                return Err(StoreError::Conflict(
                    "a live memory already has this type, title and content: delete or change it first".into(),
                ));
            }
            Err(error) => return Err(error),
        };
        let detail = serde_json::json!({ "title": memory.title });
        audit(
            &mut *tx,
            project,
            actor,
            "memory.restore",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(memory)
    }
}
