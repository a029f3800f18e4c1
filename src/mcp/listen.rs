//! `subscriptions/listen` (revision 2026-07-28): a client holds one request open and is told when
//! the resource list changes. Our resources are the project's snapshots, so a `snapshot.*`
//! event of the caller's project sends `notifications/resources/list_changed`. The events come
//! from the store ([`crate::events::stream::follow`]), so a snapshot packed through another
//! server process is announced too; nothing about the subscription lives outside its request.
//! Where the stream starts is read before rmcp acknowledges the subscription ([`ListenStart`]),
//! so every event committed after the acknowledgement is announced.

use futures::StreamExt;
use rmcp::model::SubscriptionFilter;
use rmcp::service::SubscriptionContext;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::CodifierServer;
use crate::auth::Identity;
use crate::store::{Store, StoreResult};

/// The notifications a listener may ask for: resource list changes (tools and prompts are fixed
/// while the server runs, so they never change under a listener).
pub fn accepted() -> SubscriptionFilter {
    let mut filter = SubscriptionFilter::new();
    filter.resources_list_changed = Some(true);
    filter
}

/// Where a subscription follows events from: its project and the sequence number of the latest
/// event before it was acknowledged. `None`: nothing to follow (the operator's listener has no
/// project). Read by the HTTP layer before rmcp sees the request
/// (`http::subscriptions`), since rmcp acknowledges before the handler runs.
#[derive(Debug, Clone, Copy)]
pub struct ListenStart(Option<(Uuid, i64)>);

/// Reads where a subscription of `identity` starts.
pub async fn start(store: &dyn Store, identity: &Identity) -> StoreResult<ListenStart> {
    // A key belongs to one project; the operator's listener has no project to follow.
    let Some(project) = identity.bound_project() else {
        return Ok(ListenStart(None));
    };
    let after = store.latest_event_sequence(project).await?;
    Ok(ListenStart(Some((project, after))))
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
        .copied();
    let from = match read_before {
        Some(from) => from,
        // Not over Streamable HTTP (no HTTP layer read it), or the read failed there.
        None => start(server.store.as_ref(), &identity)
            .await
            .map_err(|error| {
                tracing::error!(%error, "store error opening a subscription");
                rmcp::ErrorData::internal_error("the server could not reach its database", None)
            })?,
    };
    let wants_resources = subscription.accepted().resources_list_changed == Some(true);
    let Some((project, after)) = from.0.filter(|_| wants_resources) else {
        subscription.cancelled().await;
        return Ok(());
    };
    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let events = crate::events::stream::follow(
        server.store.clone(),
        &server.app.events,
        project,
        after,
        stop,
    );
    futures::pin_mut!(events);
    loop {
        tokio::select! {
            () = subscription.cancelled() => return Ok(()),
            event = events.next() => match event {
                None => return Ok(()),
                Some(event) if event.kind.starts_with("snapshot.") => {
                    if subscription.sink().notify_resource_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
                Some(_) => {}
            },
        }
    }
}
