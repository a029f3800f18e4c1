//! Webhook subscriptions, the outbox of deliveries (queued in the transaction of each event by
//! [`queue_deliveries`]) and the log of attempts; leasing and recording deliveries is in
//! [`super::outbox`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Id, Sql, Time};
use crate::store::{
    Actor, AttemptOutcome, LeasedDelivery, NewWebhook, StoreError, StoreResult, Webhook,
    WebhookAttempt, WebhookStore, now,
};

/// How `event_types` is stored: the types joined by commas, or `*`.
fn joined(types: &[String]) -> String {
    types.join(",")
}

/// A `LIKE` pattern matching `kind` as one item of a comma-joined list (wrapped in commas).
fn item_pattern(kind: &str) -> String {
    let mut escaped = String::with_capacity(kind.len() + 4);
    for c in kind.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("%,{escaped},%")
}

/// The event type of `manage_webhooks test`: delivered only to the webhook it names.
pub const TEST_EVENT: &str = "webhook.test";

/// Queues a delivery of event `event` (of type `kind`, about `target`, at `at`) for every active
/// webhook of `project` that wants it, in the event's transaction: the outbox. A test event
/// goes to the webhook it tests only.
pub(crate) async fn queue_deliveries(
    tx: &mut impl Conn,
    project: Uuid,
    event: i64,
    kind: &str,
    target: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if kind == TEST_EVENT {
        let Ok(webhook) = Uuid::parse_str(target) else {
            return Ok(());
        };
        let sql = Sql::new(
            "INSERT INTO webhook_deliveries (project_id, webhook_id, event_id, attempts, status, due_at, created_at) \
             SELECT $1, w.id, $2, 0, 'pending', $3, $3 FROM webhooks w \
             WHERE w.project_id = $1 AND w.status = 'active' AND w.id = $4",
        )
        .arg(project)
        .arg(event)
        .arg(at)
        .arg(webhook);
        if tx.execute(sql).await? > 0 {
            crate::events::signal::queued(project);
        }
        return Ok(());
    }
    let sql = Sql::new(
        "INSERT INTO webhook_deliveries (project_id, webhook_id, event_id, attempts, status, due_at, created_at) \
         SELECT $1, w.id, $2, 0, 'pending', $3, $3 FROM webhooks w \
         WHERE w.project_id = $1 AND w.status = 'active' \
         AND (w.event_types = '*' OR (',' || w.event_types || ',') LIKE $4 ESCAPE '\\')",
    )
    .arg(project)
    .arg(event)
    .arg(at)
    .arg(item_pattern(kind));
    if tx.execute(sql).await? > 0 {
        crate::events::signal::queued(project);
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: Id,
    project_id: Id,
    url: String,
    event_types: String,
    status: String,
    disabled_reason: Option<String>,
    created_at: Time,
}

const WEBHOOK_COLUMNS: &str =
    "id, project_id, url, event_types, status, disabled_reason, created_at";

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.id.0,
            project_id: row.project_id.0,
            url: row.url,
            event_types: row.event_types.split(',').map(str::to_owned).collect(),
            status: row.status,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    webhook_id: Id,
    event_id: i64,
    attempt: i32,
    status_code: Option<i32>,
    duration_ms: i64,
    error: Option<String>,
    at: Time,
}

#[async_trait]
impl<B: Backend> WebhookStore for B {
    async fn create_webhook(
        &self,
        project: Uuid,
        actor: &Actor,
        webhook: &NewWebhook,
    ) -> StoreResult<Webhook> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "INSERT INTO webhooks (id, project_id, url, event_types, secret, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6) RETURNING {WEBHOOK_COLUMNS}"
        ))
        .arg(Uuid::new_v4())
        .arg(project)
        .arg(&webhook.url)
        .arg(joined(&webhook.event_types))
        .arg(&webhook.secret)
        .arg(now());
        let created: Webhook = tx.fetch_one::<WebhookRow>(sql).await?.into();
        let detail = serde_json::json!({ "url": created.url, "event_types": created.event_types });
        let target = created.id.to_string();
        audit(&mut *tx, project, actor, "webhook.create", &target, detail).await?;
        B::commit(tx).await?;
        Ok(created)
    }

    async fn list_webhooks(&self, project: Uuid) -> StoreResult<Vec<Webhook>> {
        let sql = Sql::new(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = $1 ORDER BY created_at, id"
        ))
        .arg(project);
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<WebhookRow> = tx.fetch_all(sql).await?;
        Ok(rows.into_iter().map(Webhook::from).collect())
    }

    async fn delete_webhook(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<Webhook> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = $1 AND id = $2{}",
            B::LOCK_ROWS
        ))
        .arg(project)
        .arg(id);
        let found: Webhook = tx
            .fetch_optional::<WebhookRow>(sql)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))?
            .into();
        for table in ["webhook_attempts", "webhook_deliveries"] {
            let sql = Sql::new(format!(
                "DELETE FROM {table} WHERE project_id = $1 AND webhook_id = $2"
            ))
            .arg(project)
            .arg(id);
            tx.execute(sql).await?;
        }
        let sql = Sql::new("DELETE FROM webhooks WHERE project_id = $1 AND id = $2")
            .arg(project)
            .arg(id);
        tx.execute(sql).await?;
        let detail = serde_json::json!({ "url": found.url });
        audit(
            &mut *tx,
            project,
            actor,
            "webhook.delete",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(found)
    }

    async fn test_webhook(&self, project: Uuid, actor: &Actor, id: Uuid) -> StoreResult<i64> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = $1 AND id = $2"
        ))
        .arg(project)
        .arg(id);
        let found: Webhook = tx
            .fetch_optional::<WebhookRow>(sql)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))?
            .into();
        if found.status != "active" {
            return Err(StoreError::Conflict(format!(
                "webhook {id} is {}: create a new one to receive events again",
                found.status
            )));
        }
        let detail = serde_json::json!({ "url": found.url, "test": true });
        audit(
            &mut *tx,
            project,
            actor,
            TEST_EVENT,
            &id.to_string(),
            detail,
        )
        .await?;
        let sql = Sql::new(
            "SELECT event_id FROM webhook_deliveries WHERE project_id = $1 AND webhook_id = $2 \
             ORDER BY id DESC LIMIT 1",
        )
        .arg(project)
        .arg(id);
        let (event,): (i64,) = tx.fetch_one(sql).await?;
        B::commit(tx).await?;
        Ok(event)
    }

    async fn webhook_attempts(
        &self,
        project: Uuid,
        webhook: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<WebhookAttempt>> {
        let sql = Sql::new(
            "SELECT webhook_id, event_id, attempt, status_code, duration_ms, error, at \
             FROM webhook_attempts WHERE project_id = $1 AND webhook_id = $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .arg(project)
        .arg(webhook)
        .arg(i64::from(limit));
        let mut tx = self.tenant(project, Access::Read).await?;
        let rows: Vec<AttemptRow> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| WebhookAttempt {
                delivery_id: crate::domain::event::delivery_id(row.webhook_id.0, row.event_id),
                event_id: row.event_id,
                attempt: row.attempt,
                status_code: row.status_code,
                duration_ms: row.duration_ms,
                error: row.error,
                at: row.at.0,
            })
            .collect())
    }

    async fn has_pending_deliveries(&self, project: Uuid) -> StoreResult<bool> {
        super::outbox::has_pending(self, project).await
    }

    async fn lease_deliveries(
        &self,
        project: Uuid,
        lease_for: Duration,
        limit: u32,
    ) -> StoreResult<Vec<LeasedDelivery>> {
        super::outbox::lease(self, project, lease_for, limit).await
    }

    async fn settle_and_lease(
        &self,
        attempts: &[(LeasedDelivery, AttemptOutcome)],
        projects: &[Uuid],
        lease_for: Duration,
        limit: u32,
    ) -> StoreResult<Vec<LeasedDelivery>> {
        super::outbox::settle_and_lease(self, attempts, projects, lease_for, limit).await
    }
}
