//! The deliverer's side of the outbox: which projects have deliveries waiting, and one
//! transaction per round that records the last round's attempts (each only while its lease
//! still holds) and leases the next due deliveries of every project it is given (`FOR UPDATE
//! SKIP LOCKED` on Postgres, so two servers never take the same attempt).

use std::collections::{BTreeMap, HashSet};
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
    // After a round, the write transaction is taken anyway; before the first, a read learns
    // whether there is anything to do at all.
    let mut due = Vec::new();
    for &project in projects {
        if !attempts.is_empty() || has_due(store, project, now()).await? {
            due.push(project);
        }
    }
    // Delivered attempts are recorded per lease (one project's batch) with one statement for
    // the rows and one for the log; the rest one by one after them, so that a 410 which
    // cancels its webhook's pending deliveries still lets this round's successes be logged.
    let mut delivered: BTreeMap<(Uuid, Uuid), Vec<Attempt>> = BTreeMap::new();
    let mut others: Vec<Attempt> = Vec::new();
    for attempt @ (delivery, outcome) in attempts {
        if outcome.next == NextStep::Delivered {
            let key = (delivery.event.project_id, delivery.lease);
            delivered.entry(key).or_default().push(attempt);
        } else {
            others.push(attempt);
        }
    }
    others.sort_by_key(|(delivery, _)| delivery.event.project_id);
    let first = delivered.keys().next().map(|(project, _)| *project);
    let first = first.or(others.first().map(|(d, _)| d.event.project_id));
    let Some(first) = first.or(due.first().copied()) else {
        return Ok(Vec::new());
    };
    let mut tx = store.tenant(first, Access::Write).await?;
    let mut current = first;
    for ((project, lease), group) in delivered {
        if project != current {
            B::enter_project(&mut tx, project).await?;
            current = project;
        }
        record_delivered(&mut *tx, project, lease, &group).await?;
    }
    for (delivery, outcome) in others {
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
    // SQLite's write transaction is the only writer anyway. The rows are picked once, in a
    // materialized CTE: as an `IN (…)` subquery Postgres may run it again and lease past the limit.
    let lock = if B::LOCK_ROWS.is_empty() {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let sql = Sql::new(format!(
        "WITH picked AS MATERIALIZED (\
         SELECT id FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending' \
         AND due_at <= $4 AND (leased_until IS NULL OR leased_until < $4) \
         ORDER BY due_at, id LIMIT $5{lock}) \
         UPDATE webhook_deliveries SET lease = $2, leased_until = $3 \
         WHERE project_id = $1 AND id IN (SELECT id FROM picked)"
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

/// One attempt as the deliverer reports it.
type Attempt<'a> = &'a (LeasedDelivery, AttemptOutcome);

/// Marks the delivered attempts of one lease delivered and logs them, those whose lease still
/// holds (the rest changed nothing).
async fn record_delivered(
    tx: &mut impl Conn,
    project: Uuid,
    lease: Uuid,
    group: &[Attempt<'_>],
) -> StoreResult<()> {
    let at = now();
    let mut sql = Sql::new(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, status = 'delivered', due_at = ",
    );
    sql.push_arg(at)
        .push(", lease = NULL, leased_until = NULL WHERE project_id = ")
        .push_arg(project)
        .push(" AND lease = ")
        .push_arg(lease)
        .push(" AND id IN (");
    for (n, (delivery, _)) in group.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.push_arg(delivery.row);
    }
    sql.push(") RETURNING id");
    let held: Vec<(i64,)> = tx.fetch_all(sql).await?;
    let held: HashSet<i64> = held.into_iter().map(|(id,)| id).collect();
    if held.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        "INSERT INTO webhook_attempts (project_id, webhook_id, delivery_id, event_id, attempt, \
         status_code, duration_ms, error, at) VALUES ",
    );
    let logged = group
        .iter()
        .filter(|(delivery, _)| held.contains(&delivery.row));
    for (n, (delivery, outcome)) in logged.enumerate() {
        sql.push(if n > 0 { ", (" } else { "(" });
        sql.push_arg(project).push(", ");
        sql.push_arg(delivery.webhook_id).push(", ");
        sql.push_arg(delivery.row).push(", ");
        sql.push_arg(delivery.event.id).push(", ");
        sql.push_arg(delivery.attempts + 1).push(", ");
        sql.push_arg(outcome.status_code).push(", ");
        sql.push_arg(outcome.duration_ms).push(", ");
        sql.push_arg(outcome.error.clone()).push(", ");
        sql.push_arg(at).push(")");
    }
    tx.execute(sql).await?;
    Ok(())
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
