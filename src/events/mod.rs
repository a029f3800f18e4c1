//! Events and webhooks. Every audited change of a project is an event (the store numbers it in
//! the change's transaction); this module reads them for callers ([`list`], the live stream in
//! [`stream`]), manages a project's webhooks ([`webhooks`]), and delivers events to them from
//! the outbox ([`deliver`]): signed ([`sign`]), to public addresses only ([`target`]).
//! [`signal`] wakes streams and the deliverer after each commit in this process; [`listeners`]
//! bounds how many live listeners one server holds open.

pub mod deliver;
pub mod listeners;
pub mod sign;
pub mod signal;
pub mod stream;
pub mod target;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::auth::Identity;
use crate::domain::{Event, EventFilter, Role};
use crate::knowledge::{KnowledgeError, projects};
use crate::store::Store;

/// The most events one page of `list_events` holds.
pub const PAGE: u32 = 100;

/// How events are streamed and webhooks delivered.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// `CODIFIER_WEBHOOK_ALLOW_PRIVATE`: let webhooks post to loopback, private and link-local
    /// addresses (self-hosted receivers). Off by default.
    pub allow_private: bool,
    /// `CODIFIER_WEBHOOK_TIMEOUT_SECONDS`: how long one delivery may take (10 s).
    pub timeout: Duration,
    /// Attempts per delivery before giving up (6).
    pub max_attempts: i32,
    /// `CODIFIER_WEBHOOK_BACKOFF_SECONDS`: the wait after the first failed attempt (10 s),
    /// doubling after each further one, with ±50 % jitter.
    pub backoff: Duration,
    /// `CODIFIER_EVENTS_POLL_MS`: how often streams and the deliverer look at the database for
    /// changes another server made (500 ms); changes made here wake them at once.
    pub poll: Duration,
    /// `CODIFIER_WEBHOOK_LEASE_SECONDS`: how long a delivery stays leased to the server
    /// sending it (60 s; it must exceed the timeout). A server that dies mid-delivery leaves
    /// its deliveries to another server (or itself, restarted) this long after it leased them.
    pub lease: Duration,
    /// `CODIFIER_MAX_LISTENERS`: how many listeners (`subscriptions/listen` requests,
    /// `resources/subscribe` subscriptions and `GET /events` streams) one server follows
    /// events for at once (256); past it a new one is refused ([`listeners`]).
    pub max_listeners: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            max_attempts: 6,
            backoff: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            max_listeners: 256,
        }
    }
}

impl EventsConfig {
    /// Reads the settings from the environment; bad values name the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        use crate::config::{positive_var, switch_var};
        let defaults = Self::default();
        let allow_private = switch_var("CODIFIER_WEBHOOK_ALLOW_PRIVATE", false)?;
        let timeout = Duration::from_secs(positive_var(
            "CODIFIER_WEBHOOK_TIMEOUT_SECONDS",
            defaults.timeout.as_secs(),
        )?);
        let lease = Duration::from_secs(positive_var(
            "CODIFIER_WEBHOOK_LEASE_SECONDS",
            defaults.lease.as_secs(),
        )?);
        if lease <= timeout {
            anyhow::bail!(
                "CODIFIER_WEBHOOK_LEASE_SECONDS ({}) must be more than CODIFIER_WEBHOOK_TIMEOUT_SECONDS ({}): \
                 a delivery still in flight when its lease ends would be sent twice",
                lease.as_secs(),
                timeout.as_secs()
            );
        }
        Ok(Self {
            allow_private,
            timeout,
            lease,
            backoff: Duration::from_secs(positive_var(
                "CODIFIER_WEBHOOK_BACKOFF_SECONDS",
                defaults.backoff.as_secs(),
            )?),
            poll: Duration::from_millis(positive_var(
                "CODIFIER_EVENTS_POLL_MS",
                defaults.poll.as_millis() as u64,
            )?),
            max_listeners: usize::try_from(positive_var(
                "CODIFIER_MAX_LISTENERS",
                defaults.max_listeners as u64,
            )?)
            .unwrap_or(usize::MAX),
            ..defaults
        })
    }
}

/// One page of a project's events and the cursor of the next.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The sequence number to pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What `list_events` asks for.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub types: Vec<String>,
    pub since: Option<String>,
    pub subject: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A page of `project`'s events (read access), oldest first.
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    query: &EventQuery,
) -> Result<(crate::domain::Project, EventPage), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    let after = match query.cursor.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            KnowledgeError::Invalid(format!(
                "`cursor` {text:?} is not one this tool gave: pass the `next_cursor` of the previous page, or leave it out to start at the first event"
            ))
        })?,
    };
    let since = match query.since.as_deref() {
        None => None,
        Some(text) => Some(parse_time(text)?),
    };
    for kind in &query.types {
        if !valid_type(kind) || kind == "*" {
            return Err(KnowledgeError::Invalid(format!(
                "`types` holds {kind:?}, which is not an event type: send names such as `memory.create` or `task.update`"
            )));
        }
    }
    let limit = query.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let filter = EventFilter {
        after,
        types: query.types.clone(),
        since,
        subject: query.subject.clone().filter(|s| !s.trim().is_empty()),
        limit: limit + 1,
    };
    let mut events = store.list_events(project.id, &filter).await?;
    let next_cursor = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|event| event.sequence.to_string())
    } else {
        None
    };
    Ok((
        project,
        EventPage {
            events,
            next_cursor,
        },
    ))
}

/// Whether `text` can be an event type (`memory.create`, `api_key.create`) or `*`.
pub fn valid_type(text: &str) -> bool {
    text == "*"
        || (!text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, KnowledgeError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            KnowledgeError::Invalid(format!(
                "`since` {text:?} is not an RFC 3339 time: send one such as 2026-01-31T09:00:00Z"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_lowercase_dotted_names_or_a_star() {
        for good in ["memory.create", "api_key.create", "*", "task.update"] {
            assert!(valid_type(good), "{good}");
        }
        for bad in ["", "Memory.Create", "a,b", "x%", "memory create"] {
            assert!(!valid_type(bad), "{bad}");
        }
    }
}
