//! Webhooks through `manage_webhooks` and a receiver written here: signed deliveries the
//! receiver verifies, retries after failures, 410 Gone, delivery after a crash, a burst
//! delivered once each, and who may manage them.

use std::sync::Arc;
use std::time::Duration;

use codifier::domain::{MemoryType, Role};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Received, Receiver, fast};
use crate::clients::{self, Client, call, ok, refused, text};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends, local_actor, text_draft};

async fn remember(client: &Client, title: &str) -> String {
    let args = json!({"project_id": "p", "memory_type": "rule", "title": title,
                      "content": {"text": format!("{title} body")}});
    let written = ok(&call(client, "update_memory", args).await);
    written["memory"]["id"].as_str().unwrap().to_owned()
}

async fn subscribe(client: &Client, url: &str, types: &[&str]) -> (String, String) {
    let created = ok(&call(
        client,
        "manage_webhooks",
        json!({"project_id": "p", "operation": "create", "url": url, "event_types": types}),
    )
    .await);
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    (id, created["secret"].as_str().unwrap().to_owned())
}

async fn listed(client: &Client) -> Vec<Value> {
    let listed = ok(&call(
        client,
        "manage_webhooks",
        json!({"project_id": "p", "operation": "list"}),
    )
    .await);
    listed["webhooks"].as_array().unwrap().clone()
}

/// What a receiver does: parse `t=…,v1=…`, recompute HMAC-SHA256 of "<t>.<body>" with the
/// secret, compare, and refuse a timestamp more than five minutes away.
fn verify(received: &Received, secret: &str) -> bool {
    let header = received.header("codifier-signature");
    let mut parts = header.split(',');
    let (Some(t), Some(v1)) = (
        parts.next().and_then(|p| p.strip_prefix("t=")),
        parts.next().and_then(|p| p.strip_prefix("v1=")),
    ) else {
        return false;
    };
    let Ok(timestamp) = t.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    let Ok(expected) = hex::decode(v1) else {
        return false;
    };
    mac.verify_slice(&expected).is_ok()
}

#[tokio::test]
async fn a_receiver_verifies_the_signature_of_each_delivery_of_the_types_it_asked_for() {
    for backend in backends() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, fast).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let (webhook, secret) = subscribe(&client, &receiver.url(), &["memory.create"]).await;
        assert!(secret.starts_with("whsec_"));

        let id = remember(&client, "first").await;
        let update = json!({"project_id": "p", "id": id, "title": "first, renamed"});
        ok(&call(&client, "update_memory", update).await);
        remember(&client, "second").await;
        let got = receiver.wait_for(2).await;
        for delivery in &got {
            assert!(
                verify(delivery, &secret),
                "{backend:?}: the signature verifies"
            );
            assert!(!verify(delivery, "whsec_wrong"), "a wrong secret does not");
            assert_eq!(delivery.header("codifier-event"), "memory.create");
            assert!(uuid::Uuid::parse_str(&delivery.header("codifier-delivery")).is_ok());
        }
        let body = got[0].json();
        assert_eq!(body["type"], "memory.create");
        assert_eq!(body["project_id"], project.id.to_string());
        assert_eq!(body["data"]["title"], json!("first"), "{body}");
        for field in ["id", "sequence", "time"] {
            assert!(!body[field].is_null(), "{field} in {body}");
        }
        assert!(got[1].json()["sequence"].as_i64() > body["sequence"].as_i64());
        let mut tampered = got[0].clone();
        tampered.body = axum::body::Bytes::from([&got[0].body[..], b" "].concat());
        assert!(
            !verify(&tampered, &secret),
            "a changed body does not verify"
        );

        // The secret is shown once: never in a list.
        let list = ok(&call(
            &client,
            "manage_webhooks",
            json!({"project_id": "p", "operation": "list"}),
        )
        .await);
        assert!(!list.to_string().contains(&secret), "{backend:?}");
        let deleted = call(
            &client,
            "manage_webhooks",
            json!({"project_id": "p", "operation": "delete", "webhook_id": webhook}),
        )
        .await;
        ok(&deleted);
        remember(&client, "third").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            receiver.received().len(),
            2,
            "{backend:?}: nothing after delete"
        );
        assert!(listed(&client).await.is_empty());
    }
}

#[tokio::test]
async fn a_delivery_that_fails_twice_is_retried_until_it_succeeds_and_each_attempt_is_logged() {
    for backend in backends() {
        let receiver = Receiver::start(&[500, 503]).await;
        let server = TestServer::start_with(backend, fast).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        subscribe(&client, &receiver.url(), &["memory.create"]).await;
        remember(&client, "retried").await;

        let got = receiver.wait_for(3).await;
        let ids: Vec<String> = got.iter().map(|r| r.header("codifier-delivery")).collect();
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "one delivery id across attempts"
        );
        assert!(got.iter().all(|r| r.json()["id"] == got[0].json()["id"]));
        let mut tries = 0;
        let attempts = loop {
            tries += 1;
            assert!(tries < 300, "gave up waiting after 15 s");
            let webhooks = listed(&client).await;
            let attempts = webhooks[0]["attempts"].as_array().unwrap().clone();
            if attempts.len() == 3 {
                break attempts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let codes: Vec<i64> = attempts
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, [200, 503, 500], "{backend:?}: newest first");
        let numbers: Vec<i64> = attempts
            .iter()
            .map(|a| a["attempt"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, [3, 2, 1]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            receiver.received().len(),
            3,
            "{backend:?}: delivered once it succeeded"
        );
    }
}

#[tokio::test]
async fn a_410_answer_disables_the_webhook() {
    for backend in backends() {
        let receiver = Receiver::start(&[410]).await;
        let server = TestServer::start_with(backend, fast).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        subscribe(&client, &receiver.url(), &["*"]).await;
        remember(&client, "gone").await;
        receiver.wait_for(1).await;
        let mut tries = 0;
        let webhook = loop {
            tries += 1;
            assert!(tries < 300, "gave up waiting after 15 s");
            let webhooks = listed(&client).await;
            if webhooks[0]["status"] == "disabled" {
                break webhooks[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(webhook["disabled_reason"].as_str().unwrap().contains("410"));
        // Deliveries already in flight when the 410 came may still land; nothing new is sent.
        let before = receiver.received().len();
        remember(&client, "after").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            receiver.received().len(),
            before,
            "{backend:?}: nothing after 410"
        );
    }
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_delivered_after_the_restart() {
    for backend in backends() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, fast).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        subscribe(&client, &receiver.url(), &["memory.create"]).await;
        drop(client);
        let (database, store) = (Arc::clone(&server.database), server.store.clone());
        server.stop().await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        // The change commits (its delivery queued in the same transaction) and the server
        // that leased the delivery dies before sending it.
        let draft = text_draft(MemoryType::Rule, "committed before the crash", "x");
        let actor = local_actor();
        store
            .create_memory(project.id, &actor, &draft)
            .await
            .unwrap();
        let leased = store
            .lease_deliveries(project.id, Duration::from_secs(1), 10)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1, "{backend:?}");
        drop(leased);
        assert!(receiver.received().is_empty());

        let _restarted =
            TestServer::start_on_with(database, "127.0.0.1:0".parse().unwrap(), fast).await;
        let got = receiver.wait_for(1).await;
        assert_eq!(
            got[0].json()["data"]["title"],
            "committed before the crash",
            "{backend:?}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(receiver.received().len(), 1, "{backend:?}: once");
    }
}

#[tokio::test]
async fn a_burst_of_events_is_delivered_once_each_and_every_attempt_is_logged() {
    for backend in backends() {
        // The first three posts fail: those deliveries are tried again, the rest go through
        // in batches larger than one lease.
        let receiver = Receiver::start(&[500, 500, 500]).await;
        let server = TestServer::start_with(backend, fast).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let (webhook, _) = subscribe(&client, &receiver.url(), &["memory.create"]).await;
        let actor = local_actor();
        const BURST: usize = 150;
        for i in 0..BURST {
            let draft = text_draft(
                MemoryType::Rule,
                &format!("burst {i}"),
                &format!("burst {i} body"),
            );
            server
                .store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
        }
        let got = receiver.wait_for(BURST + 3).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got_all = receiver.received();
        assert_eq!(got_all.len(), got.len(), "{backend:?}: nothing more");
        let mut ids: Vec<_> = got_all
            .iter()
            .map(|r| r.header("codifier-delivery"))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            BURST,
            "{backend:?}: every event, each retried one twice"
        );
        let webhook = webhook.parse().unwrap();
        let attempts = server
            .store
            .webhook_attempts(project.id, webhook, 1000)
            .await
            .unwrap();
        let failed = attempts
            .iter()
            .filter(|a| a.status_code == Some(500))
            .count();
        let delivered = attempts.iter().filter(|a| a.status_code == Some(200));
        let delivered: std::collections::HashSet<_> = delivered.map(|a| a.event_id).collect();
        assert_eq!(
            (attempts.len(), failed, delivered.len()),
            (BURST + 3, 3, BURST),
            "{backend:?}: each attempt logged once"
        );
    }
}

#[tokio::test]
async fn only_an_admin_key_may_manage_webhooks() {
    for backend in backends() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, fast).await;
        let project = server.project("p").await;
        let create = json!({"project_id": "p", "operation": "create", "url": receiver.url(),
                            "event_types": ["*"]});
        for role in [Role::Read, Role::Write] {
            let key = server.key(project.id, role).await;
            let client = clients::streamable(&server.url("/mcp"), &key).await;
            let refusal = refused(&call(&client, "manage_webhooks", create.clone()).await);
            assert!(refusal.contains("`admin`"), "{backend:?}: {refusal}");
            let list = json!({"project_id": "p", "operation": "list"});
            refused(&call(&client, "manage_webhooks", list).await);
        }
        let admin = server.key(project.id, Role::Admin).await;
        let client = clients::streamable(&server.url("/mcp"), &admin).await;
        let created = call(&client, "manage_webhooks", create).await;
        ok(&created);
        assert!(
            text(&created).contains("whsec_"),
            "the secret is shown on creation"
        );
    }
}

#[tokio::test]
async fn testing_a_webhook_sends_a_signed_test_event_to_that_webhook_alone() {
    for backend in backends() {
        let (tested, other) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
        let server = TestServer::start_with(backend, fast).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let (id, secret) = subscribe(&client, &tested.url(), &["*"]).await;
        subscribe(&client, &other.url(), &["*"]).await;
        let before = other.received().len();

        let result = call(
            &client,
            "manage_webhooks",
            json!({"project_id": "p", "operation": "test", "webhook_id": id}),
        )
        .await;
        let answer = ok(&result);
        assert_eq!(
            answer["attempt"]["status_code"], 200,
            "{backend:?}: {answer}"
        );
        let got = tested.received();
        let test = got
            .iter()
            .find(|r| r.header("codifier-event") == "webhook.test")
            .expect("the test event");
        assert!(verify(test, &secret));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            other.received()[before..]
                .iter()
                .all(|r| r.header("codifier-event") != "webhook.test"),
            "{backend:?}: the other webhook gets no test event"
        );
    }
}
