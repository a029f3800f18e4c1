//! `plan_tasks` and `next_tasks`: refusals that store nothing (a cycle, every cycle listed; an
//! unknown dependency; a repeated id), ready tasks by priority, and a retried `plan_tasks`.

use serde_json::json;

use super::{plan, task_id, update};
use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// How many plans the project has, read through the audit log's `plan.create` entries.
async fn plans_created(server: &TestServer, project: uuid::Uuid) -> usize {
    let entries = server.store.list_audit(project, 1000).await.expect("audit");
    entries.iter().filter(|e| e.action == "plan.create").count()
}

#[tokio::test]
async fn a_plan_with_cycles_is_refused_listing_every_cycle_and_nothing_is_stored() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let tasks = json!([
            {"id": "a", "title": "A", "depends_on": ["b"]},
            {"id": "b", "title": "B", "depends_on": ["a", "c"]},
            {"id": "c", "title": "C", "depends_on": ["a"]},
            {"id": "d", "title": "D", "depends_on": ["d"]},
            {"id": "e", "title": "E"}
        ]);
        let args = json!({"project_id": "p", "title": "loops", "tasks": tasks});
        let message = refused(&call(&client, "plan_tasks", args).await);
        for cycle in ["a → b → a", "a → b → c → a", "d → d"] {
            assert!(message.contains(cycle), "{backend:?}: {cycle} in {message}");
        }
        assert!(message.contains("3 cycles"), "{message}");
        assert_eq!(plans_created(&server, project.id).await, 0, "{backend:?}");
    }
}

#[tokio::test]
async fn an_unknown_dependency_or_a_repeated_id_is_refused_and_nothing_is_stored() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let unknown = json!([{"id": "a", "title": "A", "depends_on": ["ghost"]}]);
        let args = json!({"project_id": "p", "title": "t", "tasks": unknown});
        let message = refused(&call(&client, "plan_tasks", args).await);
        assert!(
            message.contains("`a` depends on `ghost`"),
            "{backend:?}: {message}"
        );

        let repeated = json!([{"id": "a", "title": "A"}, {"id": "a", "title": "A again"}]);
        let args = json!({"project_id": "p", "title": "t", "tasks": repeated});
        let message = refused(&call(&client, "plan_tasks", args).await);
        assert!(
            message.contains("task ids repeat: `a`"),
            "{backend:?}: {message}"
        );

        let unknown_check = json!([{"id": "a", "title": "A", "checks": ["no-such-check"]}]);
        let args = json!({"project_id": "p", "title": "t", "tasks": unknown_check});
        let message = refused(&call(&client, "plan_tasks", args).await);
        assert!(message.contains("no-such-check"), "{backend:?}: {message}");
        assert_eq!(plans_created(&server, project.id).await, 0, "{backend:?}");
    }
}

#[tokio::test]
async fn next_tasks_lists_the_ready_tasks_by_priority_and_follows_completions() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(
            &client,
            "p",
            json!([
                {"id": "low", "title": "Low", "priority": 1},
                {"id": "high", "title": "High", "priority": 5},
                {"id": "after", "title": "After", "depends_on": ["low", "high"], "priority": 9},
                {"id": "mid", "title": "Mid", "priority": 3}
            ]),
        )
        .await;
        assert_eq!(made["tasks"][0]["status"], "pending");
        let plan_id = made["plan_id"].as_str().unwrap();
        let next = |client| async move {
            let args = json!({"project_id": "p", "plan_id": plan_id});
            let answer = ok(&call(client, "next_tasks", args).await);
            let ids: Vec<String> = answer["ready"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
            ids
        };
        assert_eq!(next(&client).await, ["high", "mid", "low"], "{backend:?}");
        for id in ["low", "high"] {
            let task = task_id(&made, id);
            ok(&update(&client, "p", &task, "in-progress", json!({})).await);
            ok(&update(&client, "p", &task, "completed", json!({})).await);
        }
        assert_eq!(next(&client).await, ["after", "mid"], "{backend:?}");
    }
}

#[tokio::test]
async fn plan_tasks_sent_again_with_the_same_key_returns_the_same_plan_and_stores_one() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let args = json!({"project_id": "p", "title": "t", "idempotency_key": "k1",
                          "tasks": [{"id": "a", "title": "A"}]});
        let first = ok(&call(&client, "plan_tasks", args.clone()).await);
        let second = ok(&call(&client, "plan_tasks", args).await);
        assert_eq!(first["created"], true);
        assert_eq!(second["created"], false, "{backend:?}");
        assert_eq!(first["plan_id"], second["plan_id"]);
        assert_eq!(first["tasks"][0]["task_id"], second["tasks"][0]["task_id"]);
        assert_eq!(plans_created(&server, project.id).await, 1, "{backend:?}");

        let other = json!({"project_id": "p", "title": "another", "idempotency_key": "k1",
                           "tasks": [{"id": "a", "title": "A"}]});
        let message = refused(&call(&client, "plan_tasks", other).await);
        assert!(
            message.contains("different request"),
            "{backend:?}: {message}"
        );
    }
}
