//! The event log over MCP, through rmcp's own client: a project's log is a resource
//! (`codifier://projects/<id>/events`) that reads back the latest events, that a 2026-07-28
//! client follows with `subscriptions/listen` and a 2025-11-25 session with
//! `resources/subscribe` — each told of every new event of its own project only, also of
//! events written through another server — and the cap on open listeners refuses one more
//! with an error that says what to change.
#![expect(
    deprecated,
    reason = "resources/subscribe is how 2025 revisions follow a resource"
)]

use std::time::Duration;

use codifier::domain::Role;
use codifier::mcp::event_resource::{EVENT_META, uri};
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, NotificationMetaObject, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService, Subscription,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::clients::{self, Client, call, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

pub(super) const WAIT: Duration = Duration::from_secs(10);

/// A client that speaks `revision` and hands on every `notifications/resources/updated`.
#[derive(Clone)]
pub(super) struct Follower {
    revision: ProtocolVersion,
    updates: mpsc::UnboundedSender<ResourceUpdatedNotificationParam>,
}

impl ClientHandler for Follower {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("event-follower", "1.0"),
        )
        .with_protocol_version(self.revision.clone())
    }

    async fn on_resource_updated(
        &self,
        mut params: ResourceUpdatedNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        // rmcp hands the notification's `_meta` over in the context's extensions.
        params.meta = params
            .meta
            .or_else(|| context.extensions.get::<NotificationMetaObject>().cloned());
        let _ = self.updates.send(params);
    }
}

pub(super) type Connected = (
    RunningService<RoleClient, Follower>,
    mpsc::UnboundedReceiver<ResourceUpdatedNotificationParam>,
);

/// Connects with `key` at 2026-07-28 (`server/discover`, no session) or 2025-11-25.
pub(super) async fn connect(url: String, key: &str, modern: bool) -> Connected {
    let (updates, received) = mpsc::unbounded_channel();
    let revision = if modern {
        ProtocolVersion::V_2026_07_28
    } else {
        ProtocolVersion::V_2025_11_25
    };
    let follower = Follower { revision, updates };
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(key),
    );
    let client = if modern {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        follower.serve_with_lifecycle(transport, lifecycle).await
    } else {
        follower.serve(transport).await
    };
    (client.expect("connect"), received)
}

/// Connects over the legacy HTTP+SSE transport (`GET {base}/sse`) with `key`, at 2025-11-25.
pub(super) async fn connect_sse(base: &str, key: &str) -> Connected {
    let (updates, received) = mpsc::unbounded_channel();
    let follower = Follower {
        revision: ProtocolVersion::V_2025_11_25,
        updates,
    };
    (clients::sse_with(base, key, follower).await, received)
}

/// Subscribes a 2025 session to the event log of `project` (`resources/subscribe`).
pub(super) async fn subscribe(
    client: &RunningService<RoleClient, Follower>,
    project: Uuid,
) -> Result<(), rmcp::ServiceError> {
    client
        .peer()
        .subscribe(SubscribeRequestParams::new(uri(project)))
        .await
}

/// Listens for updates of `logs`.
pub(super) async fn listen(
    client: &RunningService<RoleClient, Follower>,
    logs: &[String],
) -> Result<Subscription, rmcp::ServiceError> {
    client
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .resource_subscriptions(logs)
                .build(),
        )
        .await
}

/// The next resource update of a listener (panics after [`WAIT`]).
pub(super) async fn next_update(
    subscription: &mut Subscription,
) -> ResourceUpdatedNotificationParam {
    let next = tokio::time::timeout(WAIT, subscription.next()).await;
    match next.expect("an update within 10 s") {
        Ok(Some(ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification {
                params, extensions, ..
            },
        ))) => {
            let mut params = params;
            if params.meta.is_none() {
                params.meta = extensions.get::<NotificationMetaObject>().cloned();
            }
            params
        }
        other => panic!("not a resource update: {other:?}"),
    }
}

/// The event an update carries in its `_meta`.
pub(super) fn event_of(update: &ResourceUpdatedNotificationParam) -> Value {
    update
        .meta
        .as_ref()
        .and_then(|meta| meta.0.get(EVENT_META).cloned())
        .unwrap_or_else(|| panic!("no {EVENT_META} in {update:?}"))
}

pub(super) async fn remember(client: &Client, project: &str, title: &str) {
    let args = json!({"project_id": project, "memory_type": "rule", "title": title,
                      "content": {"text": format!("{title} body")}});
    ok(&call(client, "update_memory", args).await);
}

#[tokio::test]
async fn a_2026_07_28_listener_hears_each_event_of_its_own_project_written_through_another_server()
{
    for backend in backends() {
        let first = TestServer::start_with(backend, super::fast).await;
        let second = TestServer::start_on_with(
            first.database.clone(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            super::fast,
        )
        .await;
        let (alpha, beta) = (first.project("alpha").await, first.project("beta").await);
        let alpha_key = first.key(alpha.id, Role::Read).await;
        let beta_key = first.key(beta.id, Role::Read).await;
        let (alpha_client, _) = connect(first.url("/mcp"), &alpha_key, true).await;
        let (beta_client, _) = connect(first.url("/mcp"), &beta_key, true).await;

        let mut alpha_listener = listen(&alpha_client, &[uri(alpha.id)]).await.unwrap();
        let accepted = alpha_listener.acknowledged().resource_subscriptions.clone();
        assert_eq!(accepted, Some(vec![uri(alpha.id)]), "{backend:?}");
        let mut beta_listener = listen(&beta_client, &[uri(beta.id)]).await.unwrap();

        // Written through the other server process, alpha's first, then beta's.
        let writer = clients::streamable(&second.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&writer, "alpha", "Alpha rule").await;
        remember(&writer, "beta", "Beta rule").await;

        let update = next_update(&mut alpha_listener).await;
        assert_eq!(update.uri, uri(alpha.id), "{backend:?}");
        let event = event_of(&update);
        assert_eq!(event["type"], "memory.create", "{event}");
        assert_eq!(event["project_id"], alpha.id.to_string());
        let latest = first.store.latest_event_sequence(alpha.id).await.unwrap();
        assert_eq!(event["sequence"], latest, "{event}");

        // Beta's listener never sees alpha's event: its first update is beta's own.
        let update = next_update(&mut beta_listener).await;
        assert_eq!(update.uri, uri(beta.id), "{backend:?}");
        assert_eq!(event_of(&update)["project_id"], beta.id.to_string());

        // A key naming another project's log is refused, saying why.
        let mut foreign = listen(&beta_client, &[uri(alpha.id)]).await.unwrap();
        let refused = tokio::time::timeout(WAIT, foreign.next()).await.unwrap();
        let error = refused.expect_err("another project's log is refused");
        assert!(error.to_string().contains("no event log"), "{error}");

        // A snapshot's URI never changes, so it is not acknowledged.
        let snapshot = format!("codifier://projects/{}/snapshots/{}", alpha.id, alpha.id);
        let reduced = listen(&alpha_client, &[snapshot]).await.unwrap();
        assert_eq!(reduced.acknowledged().resource_subscriptions, None);
        second.stop().await;
    }
}

#[tokio::test]
async fn reading_the_event_log_returns_the_latest_events_and_those_after_a_sequence() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (alpha, beta) = (server.project("alpha").await, server.project("beta").await);
        let key = server.key(alpha.id, Role::Read).await;
        let writer = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        for title in ["One", "Two", "Three"] {
            remember(&writer, "alpha", title).await;
        }
        let (client, _) = connect(server.url("/mcp"), &key, true).await;
        let listed = client.peer().list_all_resources().await.unwrap();
        let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
        assert!(uris.contains(&uri(alpha.id).as_str()), "{uris:?}");
        assert!(!uris.contains(&uri(beta.id).as_str()), "{uris:?}");
        let templates = client.peer().list_resource_templates(None).await.unwrap();
        assert_eq!(
            templates.resource_templates[0].uri_template,
            "codifier://projects/{project_id}/events{?after}"
        );

        let read = |target: String| {
            let peer = client.peer().clone();
            async move {
                let result = peer
                    .read_resource(ReadResourceRequestParams::new(target))
                    .await?;
                let ResourceContents::TextResourceContents { text, .. } = &result.contents[0]
                else {
                    panic!("not text: {result:?}")
                };
                Ok::<Value, rmcp::ServiceError>(serde_json::from_str(text).unwrap())
            }
        };
        let log = read(uri(alpha.id)).await.unwrap();
        let latest = log["latest_sequence"].as_i64().unwrap();
        let sequences: Vec<i64> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(sequences, (1..=latest).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(log["events"][latest as usize - 1]["type"], "memory.create");
        assert_eq!(log["more"], false);
        assert_eq!(log["next_uri"], format!("{}?after={latest}", uri(alpha.id)));

        let after = read(format!("{}?after={}", uri(alpha.id), latest - 1))
            .await
            .unwrap();
        assert_eq!(after["events"].as_array().unwrap().len(), 1, "{after}");
        assert_eq!(after["events"][0]["sequence"], latest);

        let error = read(uri(beta.id))
            .await
            .expect_err("beta's log is not alpha's");
        assert!(error.to_string().contains("no event log"), "{error}");
    }
}

#[tokio::test]
async fn a_2025_11_25_session_subscribed_to_the_event_log_is_told_of_each_new_event_until_it_unsubscribes()
 {
    for backend in backends() {
        let server = TestServer::start_with(backend, super::fast).await;
        let (alpha, beta) = (server.project("alpha").await, server.project("beta").await);
        let key = server.key(alpha.id, Role::Read).await;
        let beta_key = server.key(beta.id, Role::Read).await;
        let (client, mut updates) = connect(server.url("/mcp"), &key, false).await;
        let capabilities = client.peer().peer_info().unwrap().capabilities.clone();
        assert_eq!(capabilities.resources.unwrap().subscribe, Some(true));
        subscribe(&client, alpha.id)
            .await
            .expect("subscribe to the event log");

        let writer = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&writer, "beta", "Not for alpha").await;
        remember(&writer, "alpha", "For alpha").await;
        let update = tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("an update within 10 s")
            .unwrap();
        assert_eq!(update.uri, uri(alpha.id), "{backend:?}");
        let event = event_of(&update);
        assert_eq!(event["type"], "memory.create", "{event}");
        assert_eq!(event["project_id"], alpha.id.to_string());

        client
            .peer()
            .unsubscribe(UnsubscribeRequestParams::new(uri(alpha.id)))
            .await
            .unwrap();
        remember(&writer, "alpha", "After unsubscribing").await;
        let late = tokio::time::timeout(Duration::from_millis(1500), updates.recv()).await;
        assert!(late.is_err(), "an update after unsubscribing: {late:?}");

        let snapshot = format!("codifier://projects/{}/snapshots/{}", alpha.id, alpha.id);
        let error = client
            .peer()
            .subscribe(SubscribeRequestParams::new(snapshot))
            .await
            .expect_err("a snapshot never changes");
        assert!(error.to_string().contains("event log"), "{error}");
        let (other, _) = connect(server.url("/mcp"), &beta_key, false).await;
        let error = subscribe(&other, alpha.id)
            .await
            .expect_err("another project's log");
        assert!(error.to_string().contains("no event log"), "{error}");
    }
}

#[tokio::test]
async fn a_2025_11_25_subscription_outlasts_the_session_idle_time_while_its_client_is_there() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |config| {
            super::fast(config);
            config.session_idle = Duration::from_secs(2);
        })
        .await;
        let alpha = server.project("alpha").await;
        let key = server.key(alpha.id, Role::Read).await;
        let (client, mut updates) = connect(server.url("/mcp"), &key, false).await;
        subscribe(&client, alpha.id).await.unwrap();
        // Quiet for longer than a session may idle: the pings keep it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let writer = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&writer, "alpha", "After a quiet while").await;
        let update = tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("an update after the idle time")
            .unwrap();
        assert_eq!(
            event_of(&update)["data"]["title"],
            "After a quiet while",
            "{backend:?}"
        );
    }
}
