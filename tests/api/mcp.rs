//! The tools end to end, through real MCP clients over Streamable HTTP, legacy SSE and stdio,
//! on every backend.

use serde_json::json;

use crate::clients::{self, Client, call, ok, refused, text};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends, fresh_database};

/// Creates a project, writes, reads by tag, type and query, pages, and deletes: the whole
/// lifecycle any transport must carry.
async fn the_memory_lifecycle_works(client: &Client, project: &str) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "advance_step",
            "delete_memory",
            "fetch_context",
            "find_skills",
            "guardrail_stats",
            "list_events",
            "list_snapshots",
            "load_context",
            "manage_projects",
            "manage_webhooks",
            "memory_history",
            "next_tasks",
            "pack_repo",
            "plan_report",
            "plan_tasks",
            "playbook_sessions",
            "project_state",
            "query_data",
            "read_snapshot",
            "remember",
            "restore_memory",
            "run_playbook",
            "unstick",
            "update_memory",
            "update_task",
            "validate_code",
            "watch_out"
        ]
    );
    for tool in &tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert!(annotations.read_only_hint.is_some() && annotations.destructive_hint.is_some());
    }

    let created = ok(&call(
        client,
        "manage_projects",
        json!({"operation": "create", "name": project}),
    )
    .await);
    let project_id = created["project"]["id"]
        .as_str()
        .expect("project id")
        .to_owned();

    let rule = json!({
        "project_id": project, "memory_type": "rule", "title": "Errors carry context",
        "content": {"text": "Wrap every error with what was being done."}, "tags": ["errors", "style"]
    });
    let first = ok(&call(client, "update_memory", rule.clone()).await);
    assert_eq!(first["outcome"], "created");
    let again = ok(&call(client, "update_memory", rule).await);
    assert_eq!(
        again["outcome"], "unchanged",
        "the same content twice is one memory"
    );
    assert_eq!(again["memory"]["id"], first["memory"]["id"]);
    for n in 0..4 {
        let learning = json!({
            "project_id": project_id, "memory_type": "learning", "title": format!("Learning {n}"),
            "content": {"text": format!("Observation number {n}")}, "tags": ["errors"]
        });
        ok(&call(client, "update_memory", learning).await);
    }

    let by_tags = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "tags": ["errors", "style"]}),
    )
    .await);
    assert_eq!(by_tags["count"], 1);
    assert_eq!(by_tags["memories"][0]["title"], "Errors carry context");
    let by_type = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "memory_type": "learning"}),
    )
    .await);
    assert_eq!(by_type["count"], 4);
    assert_eq!(
        by_type["memories"][0]["title"], "Learning 3",
        "newest first"
    );
    let by_query = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "query": "WRAP every"}),
    )
    .await);
    assert_eq!(by_query["count"], 1);

    let mut seen = Vec::new();
    let mut cursor = serde_json::Value::Null;
    loop {
        let page = ok(&call(
            client,
            "fetch_context",
            json!({"project_id": project, "limit": 2, "cursor": cursor}),
        )
        .await);
        seen.extend(
            page["memories"]
                .as_array()
                .expect("memories")
                .iter()
                .map(|m| m["id"].clone()),
        );
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "pages walk every memory once");

    let id = first["memory"]["id"].as_str().expect("memory id");
    let deleted = call(
        client,
        "delete_memory",
        json!({"project_id": project, "id": id}),
    )
    .await;
    assert!(text(&deleted).contains("Deleted"), "{}", text(&deleted));
    let after = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "tags": ["style"]}),
    )
    .await);
    assert_eq!(after["count"], 0, "a deleted memory is gone from reads");
    let twice = refused(
        &call(
            client,
            "delete_memory",
            json!({"project_id": project, "id": id}),
        )
        .await,
    );
    assert!(twice.contains("already deleted"), "{twice}");
}

#[tokio::test]
async fn the_memory_lifecycle_works_over_streamable_http() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        the_memory_lifecycle_works(&client, "over-http").await;
        client.cancel().await.ok();
    }
}

#[tokio::test]
async fn the_memory_lifecycle_works_over_legacy_sse() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::sse(&server.url(""), OPERATOR_TOKEN).await;
        the_memory_lifecycle_works(&client, "over-sse").await;
        client.cancel().await.ok();
    }
}

#[tokio::test]
async fn the_memory_lifecycle_works_over_stdio() {
    for backend in backends() {
        let database = fresh_database(backend).await;
        let client = clients::stdio(&database.url).await;
        the_memory_lifecycle_works(&client, "over-stdio").await;
        client.cancel().await.ok();
    }
}

#[tokio::test]
async fn switch_makes_a_project_active_so_later_calls_may_leave_it_out() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("first").await;
        server.project("second").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let missing = refused(&call(&client, "fetch_context", json!({})).await);
        assert!(missing.contains("`project_id`"), "{missing}");
        let switched = ok(&call(
            &client,
            "manage_projects",
            json!({"operation": "switch", "project_id": "second"}),
        )
        .await);
        let memory =
            json!({"memory_type": "document", "title": "Readme", "content": {"text": "hi"}});
        let written = ok(&call(&client, "update_memory", memory).await);
        assert_eq!(written["memory"]["project_id"], switched["project"]["id"]);
        let listed = ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
        assert_eq!(listed["active_project_id"], switched["project"]["id"]);
    }
}

#[tokio::test]
async fn bad_input_is_a_tool_error_that_names_the_field_and_writes_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let cases = [
            (
                json!({"project_id": "p", "memory_type": "opinion", "title": "t", "content": {"text": "x"}}),
                "memory_type",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "title": "t", "content": 42}),
                "content",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "content": {"text": "x"}}),
                "title",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "title": "x".repeat(501), "content": {"text": "x"}}),
                "title",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "title": "t", "content": {"text": "x"}, "confidence": 2}),
                "confidence",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "title": "t", "content": {"text": "x"}, "colour": "red"}),
                "colour",
            ),
            (
                json!({"project_id": "p", "memory_type": "rule", "title": "t", "content": {"text": "x"}, "id": "nope"}),
                "id",
            ),
            (
                json!({"project_id": "nowhere", "memory_type": "rule", "title": "t", "content": {"text": "x"}}),
                "nowhere",
            ),
        ];
        for (arguments, field) in cases {
            let message = refused(&call(&client, "update_memory", arguments).await);
            assert!(
                message.contains(field),
                "{backend:?}: `{message}` should name {field}"
            );
        }
        let limit = refused(
            &call(
                &client,
                "fetch_context",
                json!({"project_id": "p", "limit": 500}),
            )
            .await,
        );
        assert!(limit.contains("`limit`"), "{limit}");
        let empty = ok(&call(&client, "fetch_context", json!({"project_id": "p"})).await);
        assert_eq!(
            empty["count"], 0,
            "{backend:?}: refused writes left nothing behind"
        );
    }
}

#[tokio::test]
async fn concurrent_writers_all_land_without_busy_errors() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("busy").await;
        let url = server.url("/mcp");
        let writers = (0..8).map(|writer| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = clients::streamable(&url, OPERATOR_TOKEN).await;
                for n in 0..5 {
                    let memory = json!({
                        "project_id": "busy", "memory_type": "learning",
                        "title": format!("writer {writer} note {n}"), "content": {"text": "x"}
                    });
                    ok(&call(&client, "update_memory", memory).await);
                }
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.expect("writer task");
        }
        let client = clients::streamable(&url, OPERATOR_TOKEN).await;
        let all = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "busy", "limit": 100}),
        )
        .await);
        assert_eq!(all["count"], 40, "{backend:?}");
    }
}
