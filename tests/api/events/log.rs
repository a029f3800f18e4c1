//! The event log: every memory change is an event, numbered in order, paged and filtered by
//! `list_events`, and confined to its project.

use codifier::domain::Role;
use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// Every page of `list_events` with `args`, followed by its cursors.
async fn all_pages(client: &Client, mut args: Value) -> (Vec<Value>, usize) {
    let (mut events, mut pages) = (Vec::new(), 0);
    loop {
        let page = ok(&call(client, "list_events", args.clone()).await);
        pages += 1;
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(cursor) => args["cursor"] = json!(cursor),
            None => return (events, pages),
        }
    }
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn memory_changes_become_events_in_order_and_list_events_pages_and_filters() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let written = ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "memory_type": "rule", "title": "Ship from CI",
                   "content": {"text": "Never from a laptop."}}),
        )
        .await);
        let id = written["memory"]["id"].as_str().unwrap().to_owned();
        let update = json!({"project_id": "p", "id": id, "title": "Ship from CI only"});
        ok(&call(&client, "update_memory", update).await);
        ok(&call(
            &client,
            "delete_memory",
            json!({"project_id": "p", "id": id}),
        )
        .await);
        ok(&call(
            &client,
            "restore_memory",
            json!({"project_id": "p", "id": id}),
        )
        .await);

        let (events, pages) = all_pages(&client, json!({"project_id": "p", "limit": 2})).await;
        assert_eq!(pages, 3, "{backend:?}: five events, two per page");
        assert_eq!(
            kinds(&events),
            [
                "project.create",
                "memory.create",
                "memory.update",
                "memory.delete",
                "memory.restore"
            ],
            "{backend:?}"
        );
        let sequences: Vec<i64> = events
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(sequences, [1, 2, 3, 4, 5], "{backend:?}");
        let memory_event = &events[1];
        assert_eq!(memory_event["subject"], id.as_str());
        assert_eq!(memory_event["actor"], "operator");
        assert!(memory_event["data"].is_object() && memory_event["time"].is_string());

        let updates = ok(&call(
            &client,
            "list_events",
            json!({"project_id": "p", "types": ["memory.update", "memory.restore"]}),
        )
        .await);
        assert_eq!(
            kinds(updates["events"].as_array().unwrap()),
            ["memory.update", "memory.restore"]
        );
        let about = ok(&call(
            &client,
            "list_events",
            json!({"project_id": "p", "subject": id}),
        )
        .await);
        assert_eq!(about["events"].as_array().unwrap().len(), 4, "{backend:?}");
        let later = ok(&call(
            &client,
            "list_events",
            json!({"project_id": "p", "since": "2999-01-01T00:00:00Z"}),
        )
        .await);
        assert_eq!(later["events"], json!([]));

        let bad = refused(
            &call(
                &client,
                "list_events",
                json!({"project_id": "p", "cursor": "x"}),
            )
            .await,
        );
        assert!(bad.contains("`cursor`"), "{bad}");
        let bad = refused(
            &call(
                &client,
                "list_events",
                json!({"project_id": "p", "since": "yesterday"}),
            )
            .await,
        );
        assert!(bad.contains("RFC 3339"), "{bad}");
    }
}

#[tokio::test]
async fn a_key_of_one_project_cannot_list_or_stream_another_projects_events() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let a = server.project("a").await;
        server.project("b").await;
        let key = server.key(a.id, Role::Read).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;

        ok(&call(&client, "list_events", json!({"project_id": "a"})).await);
        let refusal = refused(&call(&client, "list_events", json!({"project_id": "b"})).await);
        assert!(refusal.contains("another project"), "{refusal}");

        let base = server.url("");
        let own = super::open_stream(&base, &key, "a", None, Some(0)).await;
        assert_eq!(own.status(), 200, "{backend:?}");
        let other = super::open_stream(&base, &key, "b", None, Some(0)).await;
        assert_eq!(other.status(), 403, "{backend:?}");
        let nobody = reqwest::Client::new()
            .get(format!("{base}/events?project=a"))
            .send()
            .await
            .unwrap();
        assert_eq!(nobody.status(), 401);
    }
}
