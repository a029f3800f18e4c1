//! The live stream at `/events`: events arrive as they commit, and a client that reconnects
//! with `Last-Event-ID` — even to a restarted server — gets every later event once, in order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{SseReader, open_stream};
use crate::clients::{self, Client, call, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

async fn remember(client: &Client, title: &str) {
    let args = json!({"project_id": "p", "memory_type": "rule", "title": title,
                      "content": {"text": format!("{title} body")}});
    ok(&call(client, "update_memory", args).await);
}

#[tokio::test]
async fn the_event_stream_resumes_from_last_event_id_across_a_restart_without_gaps_or_repeats() {
    for backend in backends() {
        let (server, project, key) = super::server_with_reader(backend, "p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&client, "first").await;

        // From the start: the three events so far (the project, the key, a memory), then one
        // written while streaming.
        let response = open_stream(&server.url(""), &key, "p", None, Some(0)).await;
        assert_eq!(response.status(), 200, "{backend:?}");
        let mut stream = SseReader::new(response);
        let wait = Duration::from_secs(10);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(stream.next(wait).await.expect("an event"));
        }
        remember(&client, "second").await;
        seen.push(stream.next(wait).await.expect("a live event"));
        let ids: Vec<&str> = seen.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4"], "{backend:?}");
        let kinds: Vec<&str> = seen.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "project.create",
                "api_key.create",
                "memory.create",
                "memory.create"
            ]
        );
        assert_eq!(seen[3].data["sequence"], 4);
        assert_eq!(seen[3].data["project_id"], project.id.to_string());
        drop(stream);

        // The server goes away; more is written while no one streams.
        let (database, address) = (Arc::clone(&server.database), server.address);
        drop(client);
        server.stop().await;
        let server = TestServer::start_on_with(database, address, super::fast).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&client, "third").await;
        remember(&client, "fourth").await;

        let response = open_stream(&server.url(""), &key, "p", Some("4"), None).await;
        let mut stream = SseReader::new(response);
        let mut resumed = Vec::new();
        for _ in 0..2 {
            resumed.push(stream.next(wait).await.expect("an event after the restart"));
        }
        remember(&client, "fifth").await;
        resumed.push(
            stream
                .next(wait)
                .await
                .expect("a live event after the restart"),
        );
        let ids: Vec<&str> = resumed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["5", "6", "7"], "{backend:?}: no gap, no repeat");
        assert!(
            stream.next(Duration::from_millis(300)).await.is_none(),
            "{backend:?}: nothing more"
        );

        // Without Last-Event-ID the stream starts after the latest event.
        let response = open_stream(&server.url(""), &key, "p", None, None).await;
        let mut live = SseReader::new(response);
        remember(&client, "sixth").await;
        let next = live.next(wait).await.expect("the next event");
        assert_eq!(next.id, "8", "{backend:?}");
    }
}

#[tokio::test]
async fn a_second_server_on_the_same_database_streams_what_the_first_one_writes() {
    for backend in backends() {
        let (first, _, key) = super::server_with_reader(backend, "p").await;
        let second = TestServer::start_on_with(
            Arc::clone(&first.database),
            "127.0.0.1:0".parse().unwrap(),
            super::fast,
        )
        .await;
        let response = open_stream(&second.url(""), &key, "p", None, None).await;
        let mut stream = SseReader::new(response);
        let client = clients::streamable(&first.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&client, "written on the first server").await;
        let event = stream
            .next(Duration::from_secs(10))
            .await
            .expect("the event, found by polling");
        assert_eq!(event.event, "memory.create", "{backend:?}");
    }
}

#[tokio::test]
async fn revoking_a_key_ends_its_open_event_stream_within_the_key_cache_window() {
    for backend in backends() {
        let (server, _, key) = super::server_with_reader(backend, "p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let response = open_stream(&server.url(""), &key, "p", None, None).await;
        assert_eq!(response.status(), 200, "{backend:?}");
        let mut stream = SseReader::new(response);
        remember(&client, "seen").await;
        let wait = Duration::from_secs(10);
        assert!(stream.next(wait).await.is_some(), "{backend:?}: live");

        server.revoke(&key).await;
        let revoked = std::time::Instant::now();
        remember(&client, "written after the revocation").await;
        // The test server trusts a checked key for 1 s; the stream ends at the next check.
        let mut after = Vec::new();
        while let Some(event) = stream.next(wait).await {
            after.push(event.event);
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "{backend:?}: the stream ended {:?} after the revocation",
            revoked.elapsed()
        );
        assert!(after.len() <= 2, "{backend:?}: {after:?}");
        let again = open_stream(&server.url(""), &key, "p", None, None).await;
        assert_eq!(
            again.status(),
            401,
            "{backend:?}: a revoked key cannot reopen it"
        );
        server.stop().await;
    }
}
