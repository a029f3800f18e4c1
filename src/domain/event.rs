//! Events and webhooks: what happened in a project, in order (every audited change is an
//! event), and the subscriptions that receive them as signed HTTP posts.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One change in a project: an audit entry with its place in the project's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Server-wide id (the audit entry's).
    pub id: i64,
    pub project_id: Uuid,
    /// 1, 2, 3 … per project, in commit order, with no gaps.
    pub sequence: i64,
    /// What happened: `memory.create`, `plan.create`, `task.update`, `snapshot.store` …
    #[serde(rename = "type")]
    pub kind: String,
    pub time: DateTime<Utc>,
    /// Who did it: `key:<prefix>`, `operator` or `local`.
    pub actor: String,
    /// The id of what it is about (a memory, a session, a snapshot, a task …).
    pub subject: Option<String>,
    /// A small JSON object with the details.
    pub data: Value,
}

/// Which events to read: after a sequence number, optionally of some types, since a time, or
/// about one subject; at most `limit`, in sequence order.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub after: i64,
    pub types: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    pub limit: u32,
}

/// A project's webhook subscription (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    /// The event types it receives; `*` for all.
    pub event_types: Vec<String>,
    /// `active`, or `disabled` (the receiver answered 410 Gone).
    pub status: String,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A subscription to create; `secret` is the signing secret, shown to the caller once.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: String,
}

/// One attempt to deliver an event to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WebhookAttempt {
    pub delivery_id: Uuid,
    pub event_id: i64,
    /// 1 for the first attempt of a delivery, up to the maximum.
    pub attempt: i32,
    /// The receiver's HTTP status; none when no answer came (refused, timed out …).
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A delivery the deliverer holds a lease on: the event, where it goes and how to sign it.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    /// The outbox row.
    pub row: i64,
    /// The lease token; a result is recorded only while it still holds.
    pub lease: Uuid,
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: String,
    /// Attempts already made before this one.
    pub attempts: i32,
    pub event: Event,
}

impl LeasedDelivery {
    /// The id a receiver deduplicates on: the same for every attempt of one event to one
    /// webhook.
    pub fn delivery_id(&self) -> Uuid {
        delivery_id(self.webhook_id, self.event.id)
    }
}

/// The delivery id of `event` to `webhook` (a name-based UUID, stable across attempts).
pub fn delivery_id(webhook: Uuid, event: i64) -> Uuid {
    Uuid::new_v5(&webhook, &event.to_be_bytes())
}

/// What became of an attempt, and what to do next.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub next: NextStep,
}

/// After an attempt: done, try again at a time, give up, or stop the webhook altogether.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
    /// The receiver answered 410 Gone: the webhook is disabled and its pending deliveries end.
    Disable(String),
}
