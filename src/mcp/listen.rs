//! `subscriptions/listen` (revision 2026-07-28): a client holds one request open and is told when
//! the resource list changes. Our resources are the project's snapshots, so a `snapshot.*`
//! event of the caller's project sends `notifications/resources/list_changed`. The events come
//! from the store ([`crate::events::stream::follow`]), so a snapshot packed through another
//! server process is announced too; nothing about the subscription lives outside its request.

use futures::StreamExt;
use rmcp::model::SubscriptionFilter;
use rmcp::service::SubscriptionContext;
use tokio_util::sync::CancellationToken;

use super::CodifierServer;

/// The notifications a listener may ask for: resource list changes (tools and prompts are fixed
/// while the server runs, so they never change under a listener).
pub fn accepted() -> SubscriptionFilter {
    let mut filter = SubscriptionFilter::new();
    filter.resources_list_changed = Some(true);
    filter
}

/// Runs one subscription until the client cancels it or the server shuts down.
pub async fn run(
    server: &CodifierServer,
    subscription: SubscriptionContext,
) -> Result<(), rmcp::ErrorData> {
    let identity = server
        .identity(subscription.request_context())
        .map_err(|_| {
            rmcp::ErrorData::invalid_request("this request carries no verified API key", None)
        })?;
    let wants_resources = subscription.accepted().resources_list_changed == Some(true);
    // A key belongs to one project; the operator's listener has no project to follow.
    let Some(project) = identity.bound_project().filter(|_| wants_resources) else {
        subscription.cancelled().await;
        return Ok(());
    };
    let after = server
        .store
        .latest_event_sequence(project)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error opening a subscription");
            rmcp::ErrorData::internal_error("the server could not reach its database", None)
        })?;
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
