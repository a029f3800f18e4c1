//! `list_events` (read keys) and `manage_webhooks` (admin keys): a project's event log, paged,
//! and the webhooks that receive its events.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::domain::{Event, Webhook, WebhookAttempt};
use crate::events::{self, EventQuery, webhooks};
use crate::knowledge::KnowledgeError;
use crate::mcp::CodifierServer;

/// Arguments of `list_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEventsParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Only events of these types (such as `memory.create`, `task.update`).
    #[serde(default)]
    pub types: Vec<String>,
    /// Only events at or after this time (RFC 3339, such as 2026-01-31T09:00:00Z).
    pub since: Option<String>,
    /// Only events about this id (a memory, session, snapshot, task, webhook …).
    pub subject: Option<String>,
    /// The `next_cursor` of the previous page; leave it out to start at the first event.
    pub cursor: Option<String>,
    /// Events per page (1–100, default 100).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// The structured result of `list_events`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListEventsOutput {
    pub project_id: Uuid,
    /// Oldest first, by sequence.
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOperation {
    /// Subscribe `url` to `event_types`; the answer shows the signing secret, once.
    Create,
    /// The project's webhooks with their latest delivery attempts.
    List,
    /// Remove the webhook `webhook_id` and its pending deliveries.
    Delete,
    /// Send a signed `webhook.test` event to the webhook `webhook_id` only, and show the attempt.
    Test,
}

/// Arguments of `manage_webhooks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManageWebhooksParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// What to do: `create`, `list`, `delete` or `test`.
    pub operation: WebhookOperation,
    /// Where to post events (for `create`): an http(s) URL on a public address.
    pub url: Option<String>,
    /// The event types to receive (for `create`), or `["*"]` for every event.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// The webhook to delete or test (for `delete` and `test`).
    pub webhook_id: Option<String>,
}

/// A webhook and its latest attempts (newest first).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub attempts: Vec<WebhookAttempt>,
}

/// The structured result of `manage_webhooks`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ManageWebhooksOutput {
    pub operation: WebhookOperation,
    pub project_id: Uuid,
    /// The webhook created or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// The signing secret of the webhook just created: shown this once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The webhooks listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<ListedWebhook>>,
    /// The attempt of a `test` (absent when it had not been made yet; `list` will show it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<WebhookAttempt>,
}

#[tool_router(router = event_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Page through a project's events: every change (memories, plans and tasks, project
    /// state, playbook steps, snapshots, webhooks …) in commit order, with filters.
    #[tool(
        name = "list_events",
        input_schema = input_schema::<ListEventsParams>(),
        output_schema = output_schema::<ListEventsOutput>(),
        annotations(
            title = "List events",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_events(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ListEventsParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let query = EventQuery {
                types: params.types,
                since: params.since,
                subject: params.subject,
                cursor: params.cursor,
                limit: params.limit,
            };
            let (project, page) = events::list(&self.store, &identity, &project, &query).await?;
            Ok(ListEventsOutput {
                project_id: project.id,
                events: page.events,
                next_cursor: page.next_cursor,
            })
        };
        self.run_tool("list_events", arguments, ctx, action, render_events)
            .await
    }

    /// Create, list, delete or test a project's webhooks (admin keys). Each event of the wanted
    /// types is posted to the URL, signed with the webhook's secret, and retried when it fails.
    #[tool(
        name = "manage_webhooks",
        input_schema = input_schema::<ManageWebhooksParams>(),
        output_schema = output_schema::<ManageWebhooksOutput>(),
        annotations(
            title = "Manage webhooks",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn manage_webhooks(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ManageWebhooksParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let store = &self.store;
            let mut output = ManageWebhooksOutput {
                operation: params.operation,
                project_id: Uuid::nil(),
                webhook: None,
                secret: None,
                webhooks: None,
                attempt: None,
            };
            match params.operation {
                WebhookOperation::Create => {
                    let config = &self.app.events;
                    let url = params.url.as_deref();
                    let (project, webhook, secret) = webhooks::create(
                        store,
                        &identity,
                        config,
                        &project,
                        url,
                        &params.event_types,
                    )
                    .await?;
                    output.project_id = project.id;
                    output.webhook = Some(webhook);
                    output.secret = Some(secret);
                }
                WebhookOperation::List => {
                    let (project, listed) = webhooks::list(store, &identity, &project).await?;
                    output.project_id = project.id;
                    output.webhooks = Some(
                        listed
                            .into_iter()
                            .map(|(webhook, attempts)| ListedWebhook { webhook, attempts })
                            .collect(),
                    );
                }
                WebhookOperation::Delete => {
                    let id = params.webhook_id.as_deref();
                    let (project, webhook) =
                        webhooks::delete(store, &identity, &project, id).await?;
                    output.project_id = project.id;
                    output.webhook = Some(webhook);
                }
                WebhookOperation::Test => {
                    let id = params.webhook_id.as_deref();
                    let config = &self.app.events;
                    let (project, attempt) =
                        webhooks::test(store, &identity, config, &project, id).await?;
                    output.project_id = project.id;
                    output.attempt = attempt;
                }
            }
            Ok::<_, KnowledgeError>(output)
        };
        self.run_tool("manage_webhooks", arguments, ctx, action, render_webhooks)
            .await
    }
}

fn render_events(output: &ListEventsOutput) -> String {
    let mut out = format!(
        "{} of project `{}`.\n\n",
        crate::plural::count(output.events.len(), "event"),
        output.project_id
    );
    for event in &output.events {
        out.push_str(&format!(
            "- #{} `{}` at {} by {}{}: {}\n",
            event.sequence,
            event.kind,
            event.time.to_rfc3339(),
            event.actor,
            event
                .subject
                .as_deref()
                .map(|s| format!(" on `{s}`"))
                .unwrap_or_default(),
            event.data
        ));
    }
    if let Some(cursor) = &output.next_cursor {
        out.push_str(&format!(
            "\nMore events follow: call list_events again with `cursor` = `{cursor}`.\n"
        ));
    }
    out
}

fn webhook_line(out: &mut String, webhook: &Webhook) {
    out.push_str(&format!(
        "- `{}` → {} for {} ({}{})\n",
        webhook.id,
        webhook.url,
        webhook.event_types.join(", "),
        webhook.status,
        webhook
            .disabled_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    ));
}

fn attempt_line(attempt: &WebhookAttempt) -> String {
    format!(
        "event {} attempt {}: {} in {} ms{}",
        attempt.event_id,
        attempt.attempt,
        attempt
            .status_code
            .map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}")),
        attempt.duration_ms,
        attempt
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )
}

fn render_webhooks(output: &ManageWebhooksOutput) -> String {
    let mut out = String::new();
    match output.operation {
        WebhookOperation::Test => match &output.attempt {
            Some(attempt) => {
                out.push_str(&format!("Sent a test event: {}\n", attempt_line(attempt)))
            }
            None => out.push_str(
                "Queued a test event; no attempt was made yet. `list` shows it once it is.\n",
            ),
        },
        WebhookOperation::Create => {
            out.push_str("Created the webhook:\n");
            if let Some(webhook) = &output.webhook {
                webhook_line(&mut out, webhook);
            }
            if let Some(secret) = &output.secret {
                out.push_str(&format!(
                    "\nSigning secret (shown only now; keep it where the receiver can read it): `{secret}`\n\nEach delivery carries `Codifier-Signature: t=<unix>,v1=<hex>`: the receiver recomputes HMAC-SHA256 of `<t>.<body>` with this secret, compares, and refuses old `t`.\n"
                ));
            }
        }
        WebhookOperation::Delete => {
            out.push_str("Deleted the webhook and its pending deliveries:\n");
            if let Some(webhook) = &output.webhook {
                webhook_line(&mut out, webhook);
            }
        }
        WebhookOperation::List => {
            let listed = output.webhooks.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "{} in project `{}`.\n",
                crate::plural::count(listed.len(), "webhook"),
                output.project_id
            ));
            for entry in listed {
                webhook_line(&mut out, &entry.webhook);
                for attempt in &entry.attempts {
                    out.push_str(&format!("  - {}\n", attempt_line(attempt)));
                }
            }
        }
    }
    out
}
