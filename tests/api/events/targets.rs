//! Webhooks post to public addresses only: internal targets are refused when a webhook is
//! created, and again when a delivery connects (so a target that became internal is not
//! reached), unless the operator sets `CODIFIER_WEBHOOK_ALLOW_PRIVATE`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Receiver, fast};
use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

fn create(url: &str) -> Value {
    json!({"project_id": "p", "operation": "create", "url": url, "event_types": ["*"]})
}

#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_unless_the_operator_allows_them() {
    for backend in backends() {
        let receiver = Receiver::start(&[]).await;
        let port = receiver.address.port();
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        for url in [
            format!("http://127.0.0.1:{port}/hook"),
            "http://10.1.2.3/hook".to_owned(),
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "http://[::1]/hook".to_owned(),
            format!("http://localhost:{port}/hook"),
        ] {
            let refusal = refused(&call(&client, "manage_webhooks", create(&url)).await);
            assert!(
                refusal.contains("CODIFIER_WEBHOOK_ALLOW_PRIVATE"),
                "{backend:?} {url}: {refusal}"
            );
        }
        let refusal =
            refused(&call(&client, "manage_webhooks", create("ftp://example.com/x")).await);
        assert!(refusal.contains("http or https"), "{refusal}");

        let open =
            TestServer::start_with(backend, |config| config.events.allow_private = true).await;
        open.project("p").await;
        let client = clients::streamable(&open.url("/mcp"), OPERATOR_TOKEN).await;
        ok(&call(&client, "manage_webhooks", create(&receiver.url())).await);
    }
}

#[tokio::test]
async fn a_delivery_never_connects_to_an_internal_address_when_private_targets_are_not_allowed() {
    for backend in backends() {
        let receiver = Receiver::start(&[]).await;
        let port = receiver.address.port();
        let open = TestServer::start_with(backend, fast).await;
        open.project("p").await;
        let client = clients::streamable(&open.url("/mcp"), OPERATOR_TOKEN).await;
        // Both created while private targets were allowed: a literal and a name for loopback,
        // for memory writes only (so nothing is sent before the restart).
        let by_name = format!("http://localhost:{port}/hook");
        for url in [receiver.url(), by_name] {
            let mut args = create(&url);
            args["event_types"] = json!(["memory.create"]);
            ok(&call(&client, "manage_webhooks", args).await);
        }
        drop(client);
        let database = Arc::clone(&open.database);
        open.stop().await;

        let closed =
            TestServer::start_on_with(database, "127.0.0.1:0".parse().unwrap(), |config| {
                fast(config);
                config.events.allow_private = false;
            })
            .await;
        let client = clients::streamable(&closed.url("/mcp"), OPERATOR_TOKEN).await;
        let write = json!({"project_id": "p", "memory_type": "rule", "title": "t",
                           "content": {"text": "x"}});
        ok(&call(&client, "update_memory", write).await);
        let mut tries = 0;
        let errors = loop {
            tries += 1;
            assert!(tries < 300, "gave up waiting after 15 s");
            let listed = ok(&call(
                &client,
                "manage_webhooks",
                json!({"project_id": "p", "operation": "list"}),
            )
            .await);
            let errors: Vec<String> = listed["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|w| w["attempts"][0]["error"].as_str().map(str::to_owned))
                .collect();
            if errors.len() == 2 {
                break errors;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for error in &errors {
            assert!(error.contains("own network"), "{backend:?}: {error}");
        }
        assert!(receiver.received().is_empty(), "{backend:?}: never reached");
    }
}
