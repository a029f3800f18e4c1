//! `resources/subscribe` and `resources/unsubscribe` (revisions 2025-11-25 and 2025-06-18,
//! which have sessions): a subscription to a project's event log
//! ([`super::event_resource`]) follows the project's events from the store and sends
//! `notifications/resources/updated` of the log's URI for each one committed after the
//! subscribe call answered, over the session's own stream (the standalone `GET /mcp` stream,
//! the legacy SSE stream, or stdout). A subscription belongs to the session (the handler
//! instance) that made it: it ends with `resources/unsubscribe`, when the session ends, or
//! when the stream is gone; a session restored on another server after a restart subscribes
//! again. Over Streamable HTTP the client is pinged every third of the session idle time, so a
//! subscribed session that is still there does not idle out, and one whose client is gone ends.
//! Each subscription holds one of the server's listener places
//! ([`crate::events::listeners`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rmcp::model::{ErrorCode, ServerRequest, SubscribeRequestParams, UnsubscribeRequestParams};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tokio_util::sync::CancellationToken;

use super::{CodifierServer, event_resource};
use crate::events::listeners::{Full, RETRY_AFTER_SECONDS};
use crate::knowledge::snapshots::RESOURCE_PREFIX;

/// The subscriptions of one session, by URI; dropping one ends it.
pub type Subscriptions = Arc<Mutex<HashMap<String, Live>>>;

/// One running subscription: ends when dropped; cancelled once its task has ended.
pub struct Live(CancellationToken);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// How long a ping of the client may take before its subscriptions are given up.
const PING_TIMEOUT: Duration = Duration::from_secs(30);

/// The JSON-RPC error for a listener refused because the server holds its maximum: a server
/// error (-32000) with the setting to change and when to retry in `data`.
pub fn listener_refused(full: Full) -> ErrorData {
    ErrorData::new(
        ErrorCode(-32000),
        full.to_string(),
        Some(serde_json::json!({
            "setting": "CODIFIER_MAX_LISTENERS",
            "max_listeners": full.max,
            "retry_after_seconds": RETRY_AFTER_SECONDS,
        })),
    )
}

/// Subscribes the session to the event log at `request.uri`.
pub async fn subscribe(
    server: &CodifierServer,
    request: SubscribeRequestParams,
    ctx: RequestContext<RoleServer>,
) -> Result<(), ErrorData> {
    let identity = server.identity(&ctx).map_err(|_| {
        ErrorData::invalid_request("this request carries no verified API key", None)
    })?;
    let uri = request.uri.trim().to_owned();
    let Some(named) = event_resource::parse(&uri).filter(|named| named.after.is_none()) else {
        return Err(ErrorData::invalid_params(
            format!(
                "`{uri}` is not a resource that changes: snapshots never change once stored; subscribe to a project's event log, {RESOURCE_PREFIX}<project id>/events"
            ),
            None,
        ));
    };
    let project = event_resource::readable(&server.store, &identity, &uri, named.project).await?;
    let running = lock(&server.subscriptions)
        .get(&uri)
        .is_some_and(|live| !live.0.is_cancelled());
    if running {
        return Ok(());
    }
    let place = server.app.listeners.admit().map_err(listener_refused)?;
    // Read before answering, so every event committed after the answer is announced.
    let after = server
        .store
        .latest_event_sequence(project.id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error opening a subscription");
            ErrorData::internal_error("the server could not reach its database", None)
        })?;
    let stop = CancellationToken::new();
    let events = crate::events::stream::follow(
        server.store.clone(),
        &server.app.events,
        project.id,
        after,
        stop.clone(),
    );
    let peer = ctx.peer.clone();
    let announced = uri.clone();
    let mut ping = server
        .keepalive
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let ended = stop.clone();
    tokio::spawn(async move {
        let _place = place;
        // Marks the subscription ended, so subscribing again starts a new one.
        let _ended = ended.drop_guard();
        futures::pin_mut!(events);
        loop {
            tokio::select! {
                event = events.next() => {
                    let Some(event) = event else { break };
                    let notification = event_resource::updated(&announced, &event);
                    if peer.send_notification(notification).await.is_err() {
                        break;
                    }
                }
                () = tick(&mut ping) => {
                    if !answers_ping(&peer).await {
                        break;
                    }
                }
            }
        }
    });
    lock(&server.subscriptions).insert(uri, Live(stop));
    Ok(())
}

/// Ends the session's subscription to `request.uri` (none: nothing to do).
pub fn unsubscribe(server: &CodifierServer, request: &UnsubscribeRequestParams) {
    lock(&server.subscriptions).remove(request.uri.trim());
}

/// Waits for the next keep-alive ping, if the session has an idle limit; else forever.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(ping) => {
            ping.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Pings the client. A Streamable HTTP session with no message for `CODIFIER_SESSION_IDLE_SECONDS`
/// leaves the process, and its subscriptions with it: the ping and its answer are messages, so a
/// subscribed client that is still there keeps its session; one that is gone fails the ping.
async fn answers_ping(peer: &rmcp::Peer<RoleServer>) -> bool {
    let ping = ServerRequest::PingRequest(Default::default());
    matches!(
        tokio::time::timeout(PING_TIMEOUT, peer.send_request(ping)).await,
        Ok(Ok(_))
    )
}

fn lock(subscriptions: &Subscriptions) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
    subscriptions.lock().unwrap_or_else(|e| e.into_inner())
}
