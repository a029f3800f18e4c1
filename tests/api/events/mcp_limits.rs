//! The limits on following events over MCP: past `CODIFIER_MAX_LISTENERS` one more listener is
//! refused with an error that says what to change (and `GET /events` with `503`), until one
//! closes; and a revoked key's listen request, session stream and legacy SSE stream end within
//! the key-cache window, so it hears no more events.

use std::time::Duration;

use codifier::domain::Role;
use codifier::mcp::event_resource::uri;
use serde_json::{Value, json};

use super::over_mcp::{WAIT, connect, connect_sse, listen, next_update, remember, subscribe};
use crate::clients;
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

#[tokio::test]
async fn past_codifier_max_listeners_one_more_listener_is_refused_until_one_closes() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |config| {
            super::fast(config);
            config.events.max_listeners = 2;
        })
        .await;
        let alpha = server.project("alpha").await;
        let key = server.key(alpha.id, Role::Read).await;
        let log = [uri(alpha.id)];
        let (client, _) = connect(server.url("/mcp"), &key, true).await;
        let first = listen(&client, &log).await.unwrap();
        let _second = listen(&client, &log).await.unwrap();

        let error = listen(&client, &log).await.expect_err("over the cap");
        assert!(
            error.to_string().contains("CODIFIER_MAX_LISTENERS"),
            "{error}"
        );

        // Raw HTTP: 503 with Retry-After, and the JSON-RPC error names the request.
        let body = crate::protocol_2026::modern_with(
            7,
            "subscriptions/listen",
            json!({ "notifications": { "resourceSubscriptions": log } }),
            json!({}),
        );
        let response = reqwest::Client::new()
            .post(server.url("/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{backend:?}");
        assert_eq!(response.headers()["retry-after"], "30");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["id"], 7, "{refused}");
        assert_eq!(
            refused["error"]["data"]["setting"],
            "CODIFIER_MAX_LISTENERS"
        );
        let stream = super::open_stream(&server.url(""), &key, "alpha", None, None).await;
        assert_eq!(stream.status(), 503);
        assert_eq!(stream.headers()["retry-after"], "30");

        // Closing a listener frees its place.
        drop(first);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match listen(&client, &log).await {
                Ok(_) => break,
                Err(error) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "no place after closing a listener: {error}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_revoked_key_hears_no_more_events_over_listen_or_subscribe() {
    for backend in backends() {
        let (server, alpha, listening) = super::server_with_reader(backend, "alpha").await;
        let subscribing = server.key(alpha.id, Role::Read).await;
        let (modern, _) = connect(server.url("/mcp"), &listening, true).await;
        let mut listener = listen(&modern, &[uri(alpha.id)]).await.unwrap();
        let (legacy, mut updates) = connect(server.url("/mcp"), &subscribing, false).await;
        subscribe(&legacy, alpha.id).await.unwrap();
        let writer = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&writer, "alpha", "Before").await;
        next_update(&mut listener).await;
        tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("the subscriber hears the first event");

        for key in [&listening, &subscribing] {
            server.revoke(key).await;
        }
        let revoked = std::time::Instant::now();
        // The test server trusts a checked key for 1 s; the streams end at the next check (the
        // revocations are events of the project too, and may be heard before).
        let mut after = 0;
        loop {
            match tokio::time::timeout(WAIT, listener.next()).await {
                Ok(Ok(Some(_))) => after += 1,
                Ok(_) => break,
                Err(_) => panic!("{backend:?}: the listen stream went on past 10 s"),
            }
        }
        assert!(
            after <= 2,
            "{backend:?}: {after} updates after the revocation"
        );
        assert!(revoked.elapsed() < Duration::from_secs(5), "{backend:?}");
        tokio::time::sleep(Duration::from_millis(2500).saturating_sub(revoked.elapsed())).await;
        while updates.try_recv().is_ok() {}
        remember(&writer, "alpha", "After").await;
        let late = tokio::time::timeout(Duration::from_millis(1500), updates.recv()).await;
        assert!(
            !matches!(late, Ok(Some(_))),
            "{backend:?}: a revoked key's session was told of an event: {late:?}"
        );
    }
}

#[tokio::test]
async fn a_revoked_keys_legacy_sse_stream_ends_within_the_key_cache_window() {
    for backend in backends() {
        let (server, alpha, key) = super::server_with_reader(backend, "alpha").await;
        let (session, mut updates) = connect_sse(&server.url(""), &key).await;
        subscribe(&session, alpha.id).await.unwrap();
        let writer = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(&writer, "alpha", "Before").await;
        tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("the SSE session hears the first event");

        server.revoke(&key).await;
        let revoked = std::time::Instant::now();
        remember(&writer, "alpha", "After").await;
        // The test server trusts a checked key for 1 s; the stream ends at the next check (the
        // revocation is an event of the project too, and may be heard before), and the client's
        // service with it.
        let quit = tokio::time::timeout(WAIT, session.waiting())
            .await
            .unwrap_or_else(|_| panic!("{backend:?}: the SSE stream went on past 10 s"));
        assert!(quit.is_ok(), "{backend:?}: {quit:?}");
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "{backend:?}: the SSE stream ended {:?} after the revocation",
            revoked.elapsed()
        );
        let mut heard = 0;
        while updates.try_recv().is_ok() {
            heard += 1;
        }
        assert!(
            heard <= 2,
            "{backend:?}: {heard} updates after the revocation"
        );
        let again = reqwest::Client::new()
            .get(server.url("/sse"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            again.status(),
            401,
            "{backend:?}: a revoked key cannot reopen it"
        );
        server.stop().await;
    }
}
