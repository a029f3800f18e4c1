//! `subscriptions/listen` (revision 2026-07-28): a client holds one request open and is told
//! what changes. Two kinds of notification: `notifications/resources/list_changed` when a
//! snapshot of the caller's project is stored (snapshots are our listed resources), and
//! `notifications/resources/updated` of a project's event log
//! ([`super::event_resource`]) for each event of that project, when the listener names the log's
//! URI in `resourceSubscriptions` (a key: its own project's log only; another is refused).
//! The events come from the store ([`crate::events::stream::follow`]), so a change made
//! through another server process is announced too; nothing about the subscription lives
//! outside its request. Where each stream starts is read before rmcp acknowledges the
//! subscription ([`ListenStart`]), so every event committed after the acknowledgement is
//! announced. A listener holds one of the server's listener places
//! ([`crate::events::listeners`]).

use std::collections::HashMap;

use futures::StreamExt;
use rmcp::model::SubscriptionFilter;
use rmcp::service::SubscriptionContext;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CodifierServer, event_resource};
use crate::auth::Identity;
use crate::store::{Store, StoreResult};

/// The most event logs one listener may follow.
const MAX_LOGS: usize = 16;

/// The notifications a listener may have of those it asked for: resource list changes (tools
/// and prompts are fixed while the server runs, so they never change under a listener), and
/// updates of event logs (snapshots never change once stored).
pub fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut filter = SubscriptionFilter::new();
    filter.resources_list_changed = Some(true);
    filter.resource_subscriptions = requested.resource_subscriptions.as_ref().map(|uris| {
        uris.iter()
            .filter(|uri| event_resource::parse(uri).is_some_and(|named| named.after.is_none()))
            .cloned()
            .collect()
    });
    filter
}

/// Where a subscription's event streams start: the sequence number of each followed project's
/// latest event before the subscription was acknowledged. Read by the HTTP layer before rmcp
/// sees the request (`http::subscriptions`), since rmcp acknowledges before the handler runs.
#[derive(Debug, Clone, Default)]
pub struct ListenStart(HashMap<Uuid, i64>);

/// Reads where a subscription of `identity` asking for `requested` starts: the key's own
/// project, or (the operator, the local user) each project whose event log it names.
pub async fn start(
    store: &dyn Store,
    identity: &Identity,
    requested: &SubscriptionFilter,
) -> StoreResult<ListenStart> {
    let projects: Vec<Uuid> = match identity.bound_project() {
        Some(project) => vec![project],
        None => logs(requested).map(|(project, _)| project).collect(),
    };
    let mut start = ListenStart::default();
    for project in projects.into_iter().take(MAX_LOGS) {
        let after = store.latest_event_sequence(project).await?;
        start.0.insert(project, after);
    }
    Ok(start)
}

/// The event logs a filter names, with their projects.
fn logs(filter: &SubscriptionFilter) -> impl Iterator<Item = (Uuid, &String)> {
    filter
        .resource_subscriptions
        .iter()
        .flatten()
        .filter_map(|uri| event_resource::parse(uri).map(|named| (named.project, uri)))
}

/// What one followed project is announced as.
#[derive(Debug, Default)]
struct Followed {
    /// Its event log's URI, when the listener subscribed to it.
    log: Option<String>,
    /// Whether its stored snapshots are announced as a resource list change.
    snapshots: bool,
}

/// Runs one subscription until the client cancels it or the server shuts down.
pub async fn run(
    server: &CodifierServer,
    subscription: SubscriptionContext,
) -> Result<(), rmcp::ErrorData> {
    let ctx = subscription.request_context();
    let identity = server.identity(ctx).map_err(|_| {
        rmcp::ErrorData::invalid_request("this request carries no verified API key", None)
    })?;
    let read_before = ctx
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ListenStart>())
        .cloned();
    // Over HTTP the place was taken before the acknowledgement; elsewhere (stdio) it is here.
    let _place = match read_before {
        Some(_) => None,
        None => Some(
            server
                .app
                .listeners
                .admit()
                .map_err(super::subscribe::listener_refused)?,
        ),
    };
    let from = match read_before {
        Some(from) => from,
        None => start(server.store.as_ref(), &identity, subscription.requested())
            .await
            .map_err(|error| {
                tracing::error!(%error, "store error opening a subscription");
                rmcp::ErrorData::internal_error("the server could not reach its database", None)
            })?,
    };

    let accepted = subscription.accepted();
    let mut followed: HashMap<Uuid, Followed> = HashMap::new();
    if accepted.resources_list_changed == Some(true)
        && let Some(project) = identity.bound_project()
    {
        followed.entry(project).or_default().snapshots = true;
    }
    let named: Vec<(Uuid, String)> = logs(accepted)
        .map(|(project, uri)| (project, uri.clone()))
        .collect();
    if named.len() > MAX_LOGS {
        return Err(rmcp::ErrorData::invalid_params(
            format!(
                "a listener follows at most {MAX_LOGS} event logs: open another listener for the rest"
            ),
            None,
        ));
    }
    for (project, uri) in named {
        event_resource::readable(&server.store, &identity, &uri, project).await?;
        followed.entry(project).or_default().log = Some(uri);
    }
    if followed.is_empty() {
        subscription.cancelled().await;
        return Ok(());
    }

    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let mut streams = Vec::with_capacity(followed.len());
    for &project in followed.keys() {
        let after = match from.0.get(&project) {
            Some(after) => *after,
            None => server
                .store
                .latest_event_sequence(project)
                .await
                .map_err(|_| {
                    rmcp::ErrorData::internal_error("the server could not reach its database", None)
                })?,
        };
        let events = crate::events::stream::follow(
            server.store.clone(),
            &server.app.events,
            project,
            after,
            stop.clone(),
        );
        streams.push(events.boxed());
    }
    let mut events = futures::stream::select_all(streams);
    let sink = subscription.sink();
    loop {
        let event = tokio::select! {
            () = subscription.cancelled() => return Ok(()),
            event = events.next() => match event {
                Some(event) => event,
                None => return Ok(()),
            },
        };
        let Some(announce) = followed.get(&event.project_id) else {
            continue;
        };
        let sent = match &announce.log {
            Some(uri) => sink.send(event_resource::updated(uri, &event)).await,
            None => Ok(()),
        };
        let sent = match sent {
            Ok(()) if announce.snapshots && event.kind.starts_with("snapshot.") => {
                sink.notify_resource_list_changed().await
            }
            other => other,
        };
        if sent.is_err() {
            return Ok(());
        }
    }
}
