//! The deliverer's side of the outbox: which projects have deliveries waiting, and one
//! transaction per round that records the last round's attempts (each only while its lease
//! still holds) and leases the next due deliveries of every project it is given (`FOR UPDATE
//! SKIP LOCKED` on Postgres, so two servers never take the same attempt).

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{EVENT_COLUMNS, audit};
use super::{Access, Backend, Conn, Id, Sql, Tx};
use crate::store::{Actor, AttemptOutcome, Event, LeasedDelivery, NextStep, StoreResult, now};

#[derive(sqlx::FromRow)]
struct LeasedRow {
    row_id: i64,
    lease: Id,
    webhook_id: Id,
    url: String,
    secret: String,
    attempts: i32,
    #[sqlx(flatten)]
    event: super::audit::EventRow,
}

/// Whether `project` has a delivery still to make (due now or later, leased or not).
pub(super) async fn has_pending<B: Backend>(store: &B, project: Uuid) -> StoreResult<bool> {
    let sql = Sql::new(
        "SELECT id FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending' LIMIT 1",
    )
    .arg(project);
    let mut tx = store.tenant(project, Access::Read).await?;
    let found: Option<(i64,)> = tx.fetch_optional(sql).await?;
    Ok(found.is_some())
}

/// Whether `project` has a delivery due at `at` that no live lease holds (a read: on SQLite a
/// write transaction would take the database's one write lock just to learn that).
async fn has_due<B: Backend>(store: &B, project: Uuid, at: DateTime<Utc>) -> StoreResult<bool> {
    let sql = Sql::new(
        "SELECT id FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending' \
         AND due_at <= $2 AND (leased_until IS NULL OR leased_until < $2) LIMIT 1",
    )
    .arg(project)
    .arg(at);
    let mut tx = store.tenant(project, Access::Read).await?;
    let found: Option<(i64,)> = tx.fetch_optional(sql).await?;
    Ok(found.is_some())
}

/// Leases up to `limit` of `project`'s due deliveries for `lease_for`.
pub(super) async fn lease<B: Backend>(
    store: &B,
    project: Uuid,
    lease_for: Duration,
    limit: u32,
) -> StoreResult<Vec<LeasedDelivery>> {
    settle_and_lease(store, &[], &[project], lease_for, limit).await
}

/// In one transaction: records `attempts` (each in its event's project, only while its lease
/// holds), then leases up to `limit` due deliveries for `lease_for` in each of `projects` that
/// has some. No transaction at all when there is nothing to record and nothing due.
pub(super) async fn settle_and_lease<B: Backend>(
    store: &B,
    attempts: &[(LeasedDelivery, AttemptOutcome)],
    projects: &[Uuid],
    lease_for: Duration,
    limit: u32,
) -> StoreResult<Vec<LeasedDelivery>> {
    let mut due = Vec::new();
    for &project in projects {
        if has_due(store, project, now()).await? {
            due.push(project);
        }
    }
    let mut attempts: Vec<_> = attempts.iter().collect();
    attempts.sort_by_key(|(delivery, _)| delivery.event.project_id);
    let first = attempts
        .first()
        .map(|(delivery, _)| delivery.event.project_id);
    let Some(first) = first.or(due.first().copied()) else {
        return Ok(Vec::new());
    };
    let mut tx = store.tenant(first, Access::Write).await?;
    let mut current = first;
    for (delivery, outcome) in attempts {
        let project = delivery.event.project_id;
        if project != current {
            B::enter_project(&mut tx, project).await?;
            current = project;
        }
        record_one(&mut *tx, project, delivery, outcome).await?;
    }
    let mut leased = Vec::new();
    for project in due {
        if project != current {
            B::enter_project(&mut tx, project).await?;
            current = project;
        }
        leased.extend(lease_in::<B>(&mut tx, project, lease_for, limit).await?);
    }
    B::commit(tx).await?;
    Ok(leased)
}

/// Leases, in an open write transaction confined to `project`, up to `limit` of its due
/// deliveries.
async fn lease_in<B: Backend>(
    tx: &mut Tx<B>,
    project: Uuid,
    lease_for: Duration,
    limit: u32,
) -> StoreResult<Vec<LeasedDelivery>> {
    let at = now();
    let until = at + chrono::Duration::from_std(lease_for).unwrap_or(chrono::TimeDelta::MAX);
    let lease = Uuid::new_v4();
    // Rows another server is leasing right now are skipped, not waited for (Postgres);
    // SQLite's write transaction is the only writer anyway.
    let lock = if B::LOCK_ROWS.is_empty() {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let sql = Sql::new(format!(
        "UPDATE webhook_deliveries SET lease = $2, leased_until = $3 WHERE id IN (\
         SELECT id FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending' \
         AND due_at <= $4 AND (leased_until IS NULL OR leased_until < $4) \
         ORDER BY due_at, id LIMIT $5{lock})"
    ))
    .arg(project)
    .arg(lease)
    .arg(until)
    .arg(at)
    .arg(i64::from(limit));
    if tx.execute(sql).await? == 0 {
        return Ok(Vec::new());
    }
    let sql = Sql::new(format!(
        "SELECT d.id AS row_id, d.lease, d.webhook_id, w.url, w.secret, d.attempts, {EVENT_COLUMNS} \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         JOIN audit_log a ON a.id = d.event_id \
         WHERE d.project_id = $1 AND d.lease = $2 ORDER BY d.due_at, d.id"
    ))
    .arg(project)
    .arg(lease);
    let rows: Vec<LeasedRow> = tx.fetch_all(sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| LeasedDelivery {
            row: row.row_id,
            lease: row.lease.0,
            webhook_id: row.webhook_id.0,
            url: row.url,
            secret: row.secret,
            attempts: row.attempts,
            event: Event::from(row.event),
        })
        .collect())
}

/// Logs one attempt and moves its delivery on, provided its lease holds.
async fn record_one(
    tx: &mut impl Conn,
    project: Uuid,
    delivery: &LeasedDelivery,
    outcome: &AttemptOutcome,
) -> StoreResult<bool> {
    let at = now();
    let (status, due) = match &outcome.next {
        NextStep::Delivered => ("delivered", at),
        NextStep::RetryAt(due) => ("pending", *due),
        NextStep::GiveUp => ("failed", at),
        NextStep::Disable(_) => ("cancelled", at),
    };
    let sql = Sql::new(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, due_at = $2, \
         lease = NULL, leased_until = NULL WHERE project_id = $3 AND id = $4 AND lease = $5",
    )
    .arg(status)
    .arg(due)
    .arg(project)
    .arg(delivery.row)
    .arg(delivery.lease);
    if tx.execute(sql).await? == 0 {
        return Ok(false);
    }
    let sql = Sql::new(
        "INSERT INTO webhook_attempts (project_id, webhook_id, delivery_id, event_id, attempt, \
         status_code, duration_ms, error, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .arg(project)
    .arg(delivery.webhook_id)
    .arg(delivery.row)
    .arg(delivery.event.id)
    .arg(delivery.attempts + 1)
    .arg(outcome.status_code)
    .arg(outcome.duration_ms)
    .arg(outcome.error.clone())
    .arg(at);
    tx.execute(sql).await?;
    if let NextStep::Disable(reason) = &outcome.next {
        let sql = Sql::new(
            "UPDATE webhooks SET status = 'disabled', disabled_reason = $1 \
             WHERE project_id = $2 AND id = $3",
        )
        .arg(reason.as_str())
        .arg(project)
        .arg(delivery.webhook_id);
        tx.execute(sql).await?;
        let sql = Sql::new(
            "UPDATE webhook_deliveries SET status = 'cancelled', lease = NULL, leased_until = NULL \
             WHERE project_id = $1 AND webhook_id = $2 AND status = 'pending'",
        )
        .arg(project)
        .arg(delivery.webhook_id);
        tx.execute(sql).await?;
        let actor = Actor {
            label: "server".into(),
            tool: "webhook_deliverer".into(),
        };
        let detail = serde_json::json!({ "url": delivery.url, "reason": reason });
        let target = delivery.webhook_id.to_string();
        audit(tx, project, &actor, "webhook.disable", &target, detail).await?;
    }
    Ok(true)
}
