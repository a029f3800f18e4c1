//! The legacy SSE transport's message endpoint as a fuzz target: generated JSON-RPC messages
//! (real method names with arbitrary params and ids), arbitrary JSON, raw bytes and made-up
//! session ids posted to `POST /messages` of a live session. Every post must get an answer
//! below 500 within the slow-case bound, and the server must still open and serve a session after.

use futures::StreamExt;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

use super::{SLOW_CASE, fuzz, inputs};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer};

const METHODS: &[&str] = &[
    "ping",
    "initialize",
    "notifications/initialized",
    "notifications/cancelled",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "x",
    "",
];

/// One post: the body's bytes, and whether it goes to a made-up session instead of the live one.
fn post() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let message = (
        select(METHODS),
        inputs::json(),
        inputs::json(),
        any::<bool>(),
    )
        .prop_map(|(method, id, params, notification)| {
            let mut message = json!({"jsonrpc": "2.0", "method": method, "params": params});
            if !notification {
                message["id"] = id;
            }
            serde_json::to_vec(&message).unwrap()
        });
    let body = prop_oneof![
        4 => message,
        2 => inputs::json().prop_map(|value| serde_json::to_vec(&value).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ];
    (body, proptest::bool::weighted(0.1))
}

#[test]
fn the_legacy_sse_message_endpoint_answers_every_body_below_500() {
    let runtime = super::targets::runtime();
    let (server, messages) = runtime.block_on(async {
        let server = TestServer::start(Backend::Sqlite).await;
        let (messages, stream) = crate::hostile::requests::open_sse(&server).await;
        // Answers go down the stream: read it so the session never backs up.
        tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            while stream.next().await.is_some() {}
        });
        (server, messages)
    });
    let client = reqwest::Client::builder()
        .timeout(SLOW_CASE)
        .build()
        .unwrap();
    let made_up = server.url("/messages?sessionId=00000000-0000-0000-0000-000000000000");
    fuzz("legacy SSE messages", post(), |(body, elsewhere)| {
        let url = if *elsewhere { &made_up } else { &messages };
        runtime.block_on(async {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .bearer_auth(OPERATOR_TOKEN)
                .body(body.clone())
                .send()
                .await
                .map_err(|error| format!("no answer: {error}"))?;
            let status = response.status();
            if status.is_server_error() {
                let text = response.text().await.unwrap_or_default();
                return Err(format!("{status}: {text:.300}"));
            }
            Ok(())
        })
    });
    runtime.block_on(async {
        // A message may end the fuzzed session itself (the long run found it closed, 404);
        // the server must still open and serve a new one.
        let (messages, _stream) = crate::hostile::requests::open_sse(&server).await;
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let answer = client
            .post(&messages)
            .bearer_auth(OPERATOR_TOKEN)
            .json(&ping)
            .send()
            .await
            .expect("the session still answers");
        assert!(answer.status().is_success(), "{}", answer.status());
        let health = reqwest::get(server.url("/health")).await.unwrap();
        assert_eq!(health.status(), 200);
        server.stop().await;
    });
}
