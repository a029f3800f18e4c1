//! Managing a project's webhooks (admin keys only): create one (its signing secret generated
//! here and shown once), list them with their latest attempts, delete one.

use std::sync::Arc;

use uuid::Uuid;

use super::{EventsConfig, sign, target, valid_type};
use crate::auth::Identity;
use crate::domain::{Actor, NewWebhook, Project, Role, Webhook, WebhookAttempt};
use crate::knowledge::{KnowledgeError, projects};
use crate::store::Store;

/// The most webhooks one project may have.
pub const MAX_WEBHOOKS: usize = 20;
/// How many of its latest attempts a listed webhook shows.
pub const RECENT_ATTEMPTS: u32 = 20;

fn actor(identity: &Identity, tool: &str) -> Actor {
    Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    }
}

/// Reads `event_types`: event type names, or `*` alone for every event.
pub fn parse_types(types: &[String]) -> Result<Vec<String>, KnowledgeError> {
    let mut parsed: Vec<String> = types.iter().map(|t| t.trim().to_owned()).collect();
    parsed.sort();
    parsed.dedup();
    if parsed.is_empty() {
        return Err(KnowledgeError::Invalid(
            "`event_types` is empty: send the types to receive (such as `memory.create`), or `*` for every event".into(),
        ));
    }
    if let Some(bad) = parsed.iter().find(|t| !valid_type(t)) {
        return Err(KnowledgeError::Invalid(format!(
            "`event_types` holds {bad:?}, which is not an event type: send names such as `memory.create`, or `*`"
        )));
    }
    if parsed.len() > 1 && parsed.iter().any(|t| t == "*") {
        return Err(KnowledgeError::Invalid(
            "`event_types` mixes `*` with named types: send `*` alone, or only names".into(),
        ));
    }
    Ok(parsed)
}

/// Creates a webhook; returns it and its signing secret (never shown again).
pub async fn create(
    store: &Arc<dyn Store>,
    identity: &Identity,
    config: &EventsConfig,
    project: &str,
    url: Option<&str>,
    event_types: &[String],
) -> Result<(Project, Webhook, String), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let url = url.ok_or_else(|| {
        KnowledgeError::Invalid("`url` is missing: send the http(s) URL to post events to".into())
    })?;
    let url = target::parse_url(url).map_err(|r| KnowledgeError::Invalid(r.0))?;
    target::check(&url, config.allow_private)
        .await
        .map_err(|r| KnowledgeError::Forbidden(r.0))?;
    let event_types = parse_types(event_types)?;
    if store.list_webhooks(project.id).await?.len() >= MAX_WEBHOOKS {
        return Err(KnowledgeError::Invalid(format!(
            "project `{}` already has {MAX_WEBHOOKS} webhooks: delete one first",
            project.name
        )));
    }
    let secret = sign::new_secret();
    let new = NewWebhook {
        url: url.to_string(),
        event_types,
        secret: secret.clone(),
    };
    let webhook = store
        .create_webhook(project.id, &actor(identity, "manage_webhooks"), &new)
        .await?;
    Ok((project, webhook, secret))
}

/// The project's webhooks, each with its latest attempts (newest first).
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
) -> Result<(Project, Vec<(Webhook, Vec<WebhookAttempt>)>), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let mut listed = Vec::new();
    for webhook in store.list_webhooks(project.id).await? {
        let attempts = store
            .webhook_attempts(project.id, webhook.id, RECENT_ATTEMPTS)
            .await?;
        listed.push((webhook, attempts));
    }
    Ok((project, listed))
}

/// Deletes a webhook with its pending deliveries and attempt log.
pub async fn delete(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    id: Option<&str>,
) -> Result<(Project, Webhook), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let id = parse_id(id)?;
    let webhook = store
        .delete_webhook(project.id, &actor(identity, "manage_webhooks"), id)
        .await?;
    Ok((project, webhook))
}

/// Sends a `webhook.test` event to one webhook through the outbox and waits (up to the delivery
/// timeout and a little more) for its first attempt, which it returns; `None` when the attempt
/// has not been made by then (it will be, and `list` shows it).
pub async fn test(
    store: &Arc<dyn Store>,
    identity: &Identity,
    config: &EventsConfig,
    project: &str,
    id: Option<&str>,
) -> Result<(Project, Option<WebhookAttempt>), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let id = parse_id(id)?;
    let event = store
        .test_webhook(project.id, &actor(identity, "manage_webhooks"), id)
        .await?;
    let deadline = tokio::time::Instant::now() + config.timeout + std::time::Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        let attempts = store
            .webhook_attempts(project.id, id, RECENT_ATTEMPTS)
            .await?;
        if let Some(attempt) = attempts.into_iter().find(|a| a.event_id == event) {
            return Ok((project, Some(attempt)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok((project, None))
}

/// Reads a webhook id.
pub fn parse_id(id: Option<&str>) -> Result<Uuid, KnowledgeError> {
    let text = id.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
        KnowledgeError::Invalid(
            "`webhook_id` is missing: send the id that `create` or `list` gave".into(),
        )
    })?;
    Uuid::parse_str(text).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`webhook_id` {text:?} is not a webhook id: send the UUID that `create` or `list` gave"
        ))
    })
}
