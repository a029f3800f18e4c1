//! A project's event log as an MCP resource, `codifier://projects/<project id>/events`: listed
//! for each project the caller may read (and as a resource template), read as the latest events
//! or those after a sequence number (`…/events?after=N`), and the resource that
//! `subscriptions/listen` and `resources/subscribe` follow: each new event of the project is
//! announced as `notifications/resources/updated` of that URI, the event itself in `_meta`
//! under [`EVENT_META`].

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    NotificationMetaObject, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification,
};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Identity;
use crate::domain::{Event, EventFilter, Project, Role};
use crate::knowledge::snapshots::RESOURCE_PREFIX;
use crate::knowledge::{KnowledgeError, projects};
use crate::store::Store;

/// The `_meta` key of a `notifications/resources/updated` that carries the event announced.
pub const EVENT_META: &str = "codifier/event";

/// The most events one read returns.
const PAGE: u32 = 100;

/// The URI template of every project's event log.
const TEMPLATE: &str = "codifier://projects/{project_id}/events{?after}";

/// The event log's URI of `project`.
pub fn uri(project: Uuid) -> String {
    format!("{RESOURCE_PREFIX}{project}/events")
}

/// What an event-log URI names: its project, and the sequence to read after, if it says one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsUri {
    pub project: Uuid,
    pub after: Option<i64>,
}

/// Reads an event-log URI (`…/events` or `…/events?after=N`); `None` for any other URI.
pub fn parse(uri: &str) -> Option<EventsUri> {
    let (project, rest) = uri
        .trim()
        .strip_prefix(RESOURCE_PREFIX)?
        .split_once("/events")?;
    let project = Uuid::parse_str(project).ok()?;
    let after = match rest {
        "" => None,
        query => Some(
            query
                .strip_prefix("?after=")?
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)?,
        ),
    };
    Some(EventsUri { project, after })
}

/// The event log of every project the caller may read, for `resources/list`.
pub fn listed(visible: &[Project]) -> Vec<Resource> {
    visible
        .iter()
        .map(|project| {
            Resource::new(uri(project.id), format!("{} events", project.name))
                .with_title(format!("Event log of project {}", project.name))
                .with_description(
                    "Every change of the project, numbered in commit order (JSON, newest last). \
                     Subscribe to be told of each new event; read `?after=N` for those after N.",
                )
                .with_mime_type("application/json")
        })
        .collect()
}

/// The event-log template, for `resources/templates/list`.
pub fn template() -> ResourceTemplate {
    ResourceTemplate::new(TEMPLATE, "project-events")
        .with_title("A project's event log")
        .with_description(
            "The project's events (memory, plan, task, snapshot and key changes) with their \
             sequence numbers, newest last; `after` reads those after a sequence number.",
        )
        .with_mime_type("application/json")
}

/// What reading the event log returns.
#[derive(Debug, Serialize)]
struct EventsRead {
    project_id: Uuid,
    project: String,
    /// The sequence number of the project's latest event (0: none yet).
    latest_sequence: i64,
    /// Oldest first: the last ones stored, or those after the `after` of the URI.
    events: Vec<Event>,
    /// Whether more events are stored after the last one here.
    more: bool,
    /// Read this URI for the events after the last one here.
    next_uri: String,
}

/// The events an event-log URI names, as JSON.
pub async fn read(
    store: &Arc<dyn Store>,
    identity: &Identity,
    uri: &str,
    named: EventsUri,
) -> Result<ReadResourceResult, ErrorData> {
    let project = readable(store, identity, uri, named.project).await?;
    let latest = store
        .latest_event_sequence(project.id)
        .await
        .map_err(|error| internal(error.into()))?;
    // Sequence numbers have no gaps, so the last PAGE events are those after latest - PAGE.
    let after = named
        .after
        .unwrap_or_else(|| (latest - i64::from(PAGE)).max(0));
    let filter = EventFilter {
        after,
        limit: PAGE + 1,
        ..EventFilter::default()
    };
    let mut events = store
        .list_events(project.id, &filter)
        .await
        .map_err(|error| internal(error.into()))?;
    let more = events.len() > PAGE as usize;
    events.truncate(PAGE as usize);
    let last = events.last().map_or(after, |event| event.sequence);
    let body = EventsRead {
        project_id: project.id,
        project: project.name,
        latest_sequence: latest,
        events,
        more,
        next_uri: format!("{}?after={last}", self::uri(named.project)),
    };
    // Events are plain JSON values: serializing them cannot fail.
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    Ok(ReadResourceResult::new(vec![
        ResourceContents::TextResourceContents {
            uri: uri.trim().to_owned(),
            mime_type: Some("application/json".into()),
            text,
            meta: None,
        },
    ]))
}

/// The project of an event-log URI, when the caller may read it; another project's log and a
/// missing one are refused alike.
pub async fn readable(
    store: &Arc<dyn Store>,
    identity: &Identity,
    uri: &str,
    project: Uuid,
) -> Result<Project, ErrorData> {
    match projects::resolve(store, identity, &project.to_string(), Role::Read).await {
        Ok(project) => Ok(project),
        Err(KnowledgeError::NotFound(_) | KnowledgeError::Forbidden(_)) => {
            Err(ErrorData::resource_not_found(
                format!(
                    "no event log at `{uri}` for this caller: a key reads its own project's events only (resources/list names them)"
                ),
                None,
            ))
        }
        Err(KnowledgeError::Invalid(message)) => Err(ErrorData::invalid_params(message, None)),
        Err(error) => Err(internal(error)),
    }
}

/// `notifications/resources/updated` of `uri` announcing `event`.
pub fn updated(uri: &str, event: &Event) -> ServerNotification {
    let mut meta = NotificationMetaObject::new();
    meta.0.insert(
        EVENT_META.into(),
        serde_json::to_value(event).unwrap_or_default(),
    );
    let mut params = ResourceUpdatedNotificationParam::new(uri);
    params.meta = Some(meta);
    ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(params))
}

fn internal(error: KnowledgeError) -> ErrorData {
    tracing::error!(%error, "an event log could not be read");
    ErrorData::internal_error(
        "the server could not read its event log; try again shortly",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_log_uri_names_its_project_and_an_optional_starting_sequence() {
        let project = Uuid::new_v4();
        let plain = uri(project);
        assert_eq!(
            parse(&plain),
            Some(EventsUri {
                project,
                after: None
            })
        );
        assert_eq!(
            parse(&format!("{plain}?after=42")),
            Some(EventsUri {
                project,
                after: Some(42)
            })
        );
        for bad in [
            format!("{plain}?after=-1"),
            format!("{plain}?after=x"),
            format!("{plain}?since=3"),
            format!("{plain}/more"),
            format!("{RESOURCE_PREFIX}not-a-uuid/events"),
            format!("{RESOURCE_PREFIX}{project}/snapshots/{project}"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
