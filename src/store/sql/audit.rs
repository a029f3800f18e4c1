//! The audit log: one row per change, written in the transaction of the change.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{Access, Backend, Conn, Id, Json, Sql, Time};
use crate::store::{
    Actor, AuditEntry, AuditStore, Event, EventFilter, EventStore, StoreResult, now,
};

/// Appends an entry to the audit log of `project` inside an open transaction (on Postgres the
/// transaction must already be confined to that project). The entry is also the project's next
/// event: it takes the next number of the project's sequence (the counter row stays locked
/// until the transaction ends, so numbers commit in order), and a delivery is queued in the
/// outbox for every active webhook that wants its type, all in the same transaction.
pub(crate) async fn audit(
    tx: &mut impl Conn,
    project: Uuid,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
) -> StoreResult<()> {
    let counter = Sql::new(
        "INSERT INTO event_counters (project_id, seq) VALUES ($1, 1) \
         ON CONFLICT (project_id) DO UPDATE SET seq = event_counters.seq + 1 RETURNING seq",
    )
    .arg(project);
    let (seq,): (i64,) = tx.fetch_one(counter).await?;
    let at = now();
    let sql = Sql::new(
        "INSERT INTO audit_log (project_id, actor, tool, action, target_id, detail, created_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .arg(project)
    .arg(&actor.label)
    .arg(&actor.tool)
    .arg(action)
    .arg(target)
    .arg(detail)
    .arg(at)
    .arg(seq);
    let (event,): (i64,) = tx.fetch_one(sql).await?;
    super::webhooks::queue_deliveries(tx, project, event, action, target, at).await
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

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    project_id: Id,
    seq: i64,
    action: String,
    created_at: Time,
    actor: String,
    target_id: Option<String>,
    detail: Json,
}

/// The columns an [`EventRow`] reads, from `audit_log` aliased `a`.
pub(crate) const EVENT_COLUMNS: &str =
    "a.id, a.project_id, a.seq, a.action, a.created_at, a.actor, a.target_id, a.detail";

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Event {
            id: row.id,
            project_id: row.project_id.0,
            sequence: row.seq,
            kind: row.action,
            time: row.created_at.0,
            actor: row.actor,
            subject: row.target_id,
            data: row.detail.0,
        }
    }
}

#[async_trait]
impl<B: Backend> EventStore for B {
    async fn list_events(&self, project: Uuid, filter: &EventFilter) -> StoreResult<Vec<Event>> {
        let mut sql = Sql::new(format!(
            "SELECT {EVENT_COLUMNS} FROM audit_log a WHERE a.project_id = "
        ));
        sql.push_arg(project);
        sql.push(" AND a.seq > ").push_arg(filter.after);
        if !filter.types.is_empty() {
            sql.push(" AND a.action IN (");
            for (i, kind) in filter.types.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push_arg(kind.as_str());
            }
            sql.push(")");
        }
        if let Some(since) = filter.since {
            sql.push(" AND a.created_at >= ").push_arg(since);
        }
        if let Some(subject) = &filter.subject {
            sql.push(" AND a.target_id = ").push_arg(subject.as_str());
        }
        sql.push(" ORDER BY a.seq LIMIT ")
            .push_arg(i64::from(filter.limit));
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<EventRow> = tx.fetch_all(sql).await?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    async fn latest_event_sequence(&self, project: Uuid) -> StoreResult<i64> {
        let sql = Sql::new("SELECT seq FROM event_counters WHERE project_id = $1").arg(project);
        let mut tx = self.tenant(project, Access::Read).await?;
        let found: Option<(i64,)> = tx.fetch_optional(sql).await?;
        Ok(found.map_or(0, |(seq,)| seq))
    }
}
