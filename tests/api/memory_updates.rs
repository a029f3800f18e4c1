//! Everyday use of the memory tools through an MCP client: partial updates by id, plain-text
//! content, undoing a delete with a write key, and refusals that do not leak project names.

use codifier::domain::Role;
use serde_json::{Value, json};

use crate::clients::{self, call, ok, refused, text};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// A memory with every optional field set, in project `p`; returns its id.
async fn a_full_memory(client: &crate::clients::Client) -> String {
    let written = ok(&call(
        client,
        "update_memory",
        json!({
            "project_id": "p", "memory_type": "rule", "title": "Deploys go through CI",
            "content": {"text": "Never deploy from a laptop."}, "tags": ["ops", "deploy"],
            "category": "delivery", "description": "How we ship", "confidence": 0.8,
            "source_role": "developer"
        }),
    )
    .await);
    written["memory"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn updating_a_memory_by_id_keeps_the_fields_it_does_not_name() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let id = a_full_memory(&client).await;

        let result = call(
            &client,
            "update_memory",
            json!({"project_id": "p", "id": id, "title": "Deploys go through CI only",
                   "content": {"text": "Never deploy from a laptop, ever."}}),
        )
        .await;
        let updated = ok(&result);
        assert_eq!(updated["outcome"], "updated", "{backend:?}");
        assert_eq!(updated["changed"], json!(["title", "content"]));
        let memory = &updated["memory"];
        assert_eq!(memory["memory_type"], "rule");
        assert_eq!(memory["tags"], json!(["ops", "deploy"]), "{backend:?}");
        assert_eq!(memory["category"], "delivery");
        assert_eq!(memory["description"], "How we ship");
        assert_eq!(memory["confidence"], 0.8);
        assert_eq!(memory["source_role"], "developer");
        assert!(
            text(&result).contains("title, content"),
            "{}",
            text(&result)
        );

        // The revision keeps the whole previous version.
        let history = ok(&call(
            &client,
            "memory_history",
            json!({"project_id": "p", "id": id}),
        )
        .await);
        let previous = &history["revisions"][0]["memory"];
        assert_eq!(previous["title"], "Deploys go through CI");
        assert_eq!(
            previous["content"],
            json!({"text": "Never deploy from a laptop."})
        );
        assert_eq!(previous["tags"], json!(["ops", "deploy"]));
        assert_eq!(previous["category"], "delivery");
        assert_eq!(previous["description"], "How we ship");
        assert_eq!(previous["source_role"], "developer");
    }
}

#[tokio::test]
async fn an_update_by_id_needs_only_the_fields_it_changes_and_null_clears_one() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let id = a_full_memory(&client).await;

        let content_only = ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "id": id, "content": "Only CI deploys."}),
        )
        .await);
        assert_eq!(content_only["changed"], json!(["content"]), "{backend:?}");
        assert_eq!(content_only["memory"]["title"], "Deploys go through CI");

        let cleared = ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "id": id, "category": null, "tags": null,
                   "description": null}),
        )
        .await);
        assert_eq!(
            cleared["changed"],
            json!(["category", "description", "tags"])
        );
        let memory = &cleared["memory"];
        assert_eq!(memory["category"], Value::Null);
        assert_eq!(memory["description"], Value::Null);
        assert_eq!(memory["tags"], json!([]));
        assert_eq!(memory["source_role"], "developer", "{backend:?}");

        let new_without_title = refused(
            &call(
                &client,
                "update_memory",
                json!({"project_id": "p", "memory_type": "rule", "content": "x"}),
            )
            .await,
        );
        assert!(
            new_without_title.contains("`title` is missing"),
            "{new_without_title}"
        );
    }
}

#[tokio::test]
async fn content_sent_as_plain_text_is_stored_as_a_text_object_and_empty_content_is_refused() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let written = ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "memory_type": "learning", "title": "Plain",
                   "content": "Models send text."}),
        )
        .await);
        assert_eq!(
            written["memory"]["content"],
            json!({"text": "Models send text."}),
            "{backend:?}"
        );
        for empty in [json!(""), json!("  "), json!({}), json!({"text": ""})] {
            let message = refused(
                &call(
                    &client,
                    "update_memory",
                    json!({"project_id": "p", "memory_type": "learning", "title": "Empty",
                           "content": empty}),
                )
                .await,
            );
            assert!(message.contains("`content` is empty"), "{message}");
        }
        let number = refused(
            &call(
                &client,
                "update_memory",
                json!({"project_id": "p", "memory_type": "learning", "title": "N", "content": 7}),
            )
            .await,
        );
        assert!(number.contains("a string"), "{number}");
        let all = ok(&call(&client, "fetch_context", json!({"project_id": "p"})).await);
        assert_eq!(all["count"], 1, "refused writes left nothing behind");
    }
}

#[tokio::test]
async fn a_write_key_can_list_and_restore_the_memories_it_deleted() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let key = server.key(project.id, Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let id = a_full_memory(&client).await;

        let result = call(&client, "delete_memory", json!({"id": id})).await;
        let deleted = ok(&result);
        assert_eq!(
            deleted["undo"],
            json!({"tool": "restore_memory", "arguments": {"project_id": project.id, "id": id}})
        );
        let reply = text(&result);
        assert!(
            reply.contains("restore_memory") && reply.contains(&id),
            "{reply}"
        );

        let listing = call(&client, "fetch_context", json!({"deleted": true})).await;
        assert!(
            text(&listing).contains("## 1 deleted memory,"),
            "{}",
            text(&listing)
        );
        let listed = ok(&listing);
        assert_eq!(listed["count"], 1, "{backend:?}");
        assert_eq!(listed["memories"][0]["id"], id.as_str());

        let again = refused(&call(&client, "delete_memory", json!({"id": id})).await);
        assert!(again.contains("already deleted"), "{again}");

        let restored = ok(&call(&client, "restore_memory", json!({"id": id})).await);
        assert_eq!(restored["memory"]["tags"], json!(["ops", "deploy"]));
        let live = ok(&call(&client, "fetch_context", json!({})).await);
        assert_eq!(live["count"], 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_bound_key_gets_the_same_refusal_for_another_project_whether_it_exists_or_not() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let own = server.project("own").await;
        let other = server.project("secret-acquisition").await;
        let key = server.key(own.id, Role::Admin).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let calls: [(&'static str, Value); 4] = [
            ("fetch_context", json!({})),
            (
                "update_memory",
                json!({"memory_type": "rule", "title": "t", "content": "c"}),
            ),
            ("manage_projects", json!({"operation": "switch"})),
            ("manage_projects", json!({"operation": "get"})),
        ];
        for (tool, arguments) in calls {
            let answer = |project: &str| {
                let mut arguments = arguments.clone();
                arguments["project_id"] = json!(project);
                arguments
            };
            let existing = refused(&call(&client, tool, answer("secret-acquisition")).await);
            let missing = refused(&call(&client, tool, answer("no-such-project")).await);
            assert_eq!(
                existing.replace("secret-acquisition", "NAME"),
                missing.replace("no-such-project", "NAME"),
                "{backend:?} {tool}"
            );
            let by_id = refused(&call(&client, tool, answer(&other.id.to_string())).await);
            let random = uuid::Uuid::new_v4().to_string();
            let by_missing_id = refused(&call(&client, tool, answer(&random)).await);
            assert_eq!(
                by_id.replace(&other.id.to_string(), "ID"),
                by_missing_id.replace(&random, "ID")
            );
            assert!(
                !by_id.contains("secret-acquisition"),
                "an id must not reveal the name: {by_id}"
            );
        }
    }
}
