//! Writing memories whose ids the caller chose, several in one transaction
//! ([`MemoryStore::put_memories`](crate::store::MemoryStore::put_memories)): each is inserted,
//! updated in place when it changed (a revision and an audit entry, as `update_memory` writes),
//! brought back when it had been deleted, or left alone.

use uuid::Uuid;

use super::audit::audit;
use super::memories::{MemoryRow, duplicate, insert_row, memory_where, overwrite, write_revision};
use super::{Backend, Conn, Connection, Sql, is_unique};
use crate::store::{
    Actor, Memory, MemoryDraft, StoreError, StoreResult, WriteOutcome, content_hash, draft_matches,
    memory_audit_detail,
};

/// Writes `draft` as memory `id` of `project` inside an open write transaction.
///
/// - A live memory `id` is left alone when nothing changed, else updated in place (unless its
///   new content is another live memory's: a conflict, as for `update_memory`).
/// - A deleted memory `id` comes back with the new fields (`Created`; its deleted version is
///   kept as a revision).
/// - Otherwise, when a live memory already has this type, title and content it is returned
///   `Unchanged` (as `create_memory` does; its id is not `id`); else `id` is inserted.
pub(super) async fn put<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    actor: &Actor,
    id: Uuid,
    draft: &MemoryDraft,
) -> StoreResult<(Memory, WriteOutcome)> {
    let hash = content_hash(draft);
    let same_content = memory_where(tx, project, "content_hash", &hash, "").await?;
    if let Some(before) = memory_where(tx, project, "id", id, B::LOCK_ROWS).await? {
        if draft_matches(&before, draft) {
            return Ok((before, WriteOutcome::Unchanged));
        }
        if let Some(other) = same_content
            && other.id != id
        {
            return Err(duplicate(other.id));
        }
        let after = overwrite::<B>(tx, id, draft, &hash).await?;
        let revision = write_revision(tx, project, actor, &before).await?;
        let detail = memory_audit_detail(Some((&before, revision)), &after);
        audit(tx, project, actor, "memory.update", &id.to_string(), detail).await?;
        return Ok((after, WriteOutcome::Updated));
    }
    if let Some(before) = deleted(tx, project, id).await? {
        if let Some(other) = same_content {
            return Err(duplicate(other.id));
        }
        let revision = write_revision(tx, project, actor, &before).await?;
        let sql =
            Sql::new("UPDATE memories SET deleted_at = NULL WHERE project_id = $1 AND id = $2")
                .arg(project)
                .arg(id);
        tx.execute(sql).await?;
        let after = overwrite::<B>(tx, id, draft, &hash).await?;
        let detail = memory_audit_detail(Some((&before, revision)), &after);
        audit(
            tx,
            project,
            actor,
            "memory.restore",
            &id.to_string(),
            detail,
        )
        .await?;
        return Ok((after, WriteOutcome::Created));
    }
    if let Some(existing) = same_content {
        return Ok((existing, WriteOutcome::Unchanged));
    }
    match insert_row::<B>(tx, project, actor, id, draft, &hash).await {
        Ok(memory) => Ok((memory, WriteOutcome::Created)),
        Err(error) if is_unique(&error) => Err(StoreError::Conflict(format!(
            "the memory id {id} is already taken: choose another id"
        ))),
        Err(error) => Err(error),
    }
}

/// Memory `id` of `project` when it is deleted.
async fn deleted(tx: &mut impl Conn, project: Uuid, id: Uuid) -> StoreResult<Option<Memory>> {
    let sql = Sql::new(format!(
        "SELECT {} FROM memories WHERE project_id = $1 AND id = $2 AND deleted_at IS NOT NULL",
        super::memories::MEMORY_COLUMNS
    ))
    .arg(project)
    .arg(id);
    let row: Option<MemoryRow> = tx.fetch_optional(sql).await?;
    row.map(MemoryRow::into_memory).transpose()
}
