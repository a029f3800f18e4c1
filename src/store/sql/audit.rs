//! The audit log: one row per change, written in the transaction of the change.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{Access, Backend, Conn, Id, Json, Sql, Time};
use crate::store::{Actor, AuditEntry, AuditStore, StoreResult, now};

/// Appends an entry to the audit log of `project` inside an open transaction (on Postgres the
/// transaction must already be confined to that project).
pub(crate) async fn audit(
    tx: &mut impl Conn,
    project: Uuid,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
) -> StoreResult<()> {
    let sql = Sql::new(
        "INSERT INTO audit_log (project_id, actor, tool, action, target_id, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .arg(project)
    .arg(&actor.label)
    .arg(&actor.tool)
    .arg(action)
    .arg(target)
    .arg(detail)
    .arg(now());
    tx.execute(sql).await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    project_id: Option<Id>,
    actor: String,
    tool: Option<String>,
    action: String,
    target_id: Option<String>,
    detail: Json,
    created_at: Time,
}

#[async_trait]
impl<B: Backend> AuditStore for B {
    async fn list_audit(&self, project: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT id, project_id, actor, tool, action, target_id, detail, created_at \
             FROM audit_log WHERE project_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .arg(project)
        .arg(i64::from(limit));
        let rows: Vec<AuditRow> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| AuditEntry {
                id: row.id,
                project_id: row.project_id.map(|id| id.0),
                actor: row.actor,
                tool: row.tool,
                action: row.action,
                target_id: row.target_id,
                detail: row.detail.0,
                created_at: row.created_at.0,
            })
            .collect())
    }
}
