//! `project_state`, and who may touch plans and state: a stale revision is a conflict that
//! shows the current state, decisions are listed with it, a key of one project cannot read or
//! change another's plans or state, and a read key cannot change anything.

use codifier::domain::Role;
use serde_json::json;

use super::{plan, task_id, update};
use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

#[tokio::test]
async fn an_update_naming_a_stale_revision_is_a_conflict_that_shows_the_current_state() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let decision = json!({"project_id": "p", "memory_type": "decision", "title": "Use Postgres",
                              "content": {"what": "Postgres", "why": "RLS"}});
        ok(&call(&client, "update_memory", decision).await);
        let state = ok(&call(
            &client,
            "project_state",
            json!({"project_id": "p", "operation": "get"}),
        )
        .await);
        assert_eq!(state["state"]["revision"], 0);
        assert_eq!(
            state["decisions"][0]["title"], "Use Postgres",
            "{backend:?}"
        );

        let first = json!({"project_id": "p", "operation": "update", "revision": 0,
                           "phase": "planning", "confidence": {"ready": false, "gaps": ["auth"]},
                           "assumptions": [{"id": "a1", "text": "one region", "confirmed": false}],
                           "mcps": {"required": ["github"], "available": [], "missing": ["github"]}});
        let updated = ok(&call(&client, "project_state", first).await);
        assert_eq!(updated["state"]["revision"], 1, "{backend:?}");
        assert_eq!(updated["state"]["phase"], "planning");
        let second =
            json!({"project_id": "p", "operation": "update", "revision": 1, "phase": "building"});
        let updated = ok(&call(&client, "project_state", second).await);
        assert_eq!(updated["state"]["revision"], 2);
        assert_eq!(
            updated["state"]["confidence"]["gaps"],
            json!(["auth"]),
            "fields left out stay"
        );

        let stale =
            json!({"project_id": "p", "operation": "update", "revision": 1, "phase": "review"});
        let message = refused(&call(&client, "project_state", stale).await);
        assert!(
            message.contains("now at revision 2"),
            "{backend:?}: {message}"
        );
        assert!(message.contains("\"phase\":\"building\""), "{message}");
        let missing = json!({"project_id": "p", "operation": "update", "phase": "review"});
        assert!(
            refused(&call(&client, "project_state", missing).await)
                .contains("`revision` is missing")
        );
        let bad =
            json!({"project_id": "p", "operation": "update", "revision": 2, "phase": "shipping"});
        assert!(refused(&call(&client, "project_state", bad).await).contains("phase"));

        let state = ok(&call(
            &client,
            "project_state",
            json!({"project_id": "p", "operation": "get"}),
        )
        .await);
        assert_eq!(state["state"]["phase"], "building", "{backend:?}");
        let history = server
            .store
            .project_state_history(state["project_id"].as_str().unwrap().parse().unwrap(), 10)
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|s| s.revision).collect::<Vec<_>>(),
            [2, 1],
            "every revision kept"
        );
        let project = state["project_id"].as_str().unwrap().parse().unwrap();
        let audited = server.store.list_audit(project, 100).await.unwrap();
        assert_eq!(
            audited
                .iter()
                .filter(|e| e.action == "state.update")
                .count(),
            2
        );
    }
}

#[tokio::test]
async fn a_key_of_one_project_cannot_read_or_change_another_projects_plans_or_state() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let a = server.project("a").await;
        server.project("b").await;
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(&operator, "b", json!([{"id": "t", "title": "T"}])).await;
        let plan_id = made["plan_id"].as_str().unwrap();
        let task = task_id(&made, "t");
        let key = server.key(a.id, Role::Admin).await;
        let a_client = clients::streamable(&server.url("/mcp"), &key).await;

        let own = json!({"plan_id": plan_id});
        let message = refused(&call(&a_client, "next_tasks", own.clone()).await);
        assert!(message.contains("no plan"), "{backend:?}: {message}");
        refused(&call(&a_client, "plan_report", own).await);
        let named = json!({"project_id": "b", "plan_id": plan_id});
        assert!(refused(&call(&a_client, "next_tasks", named).await).contains("Not allowed"));
        let args = json!({"task_id": task, "status": "in-progress"});
        assert!(refused(&call(&a_client, "update_task", args).await).contains("no task"));
        let get = json!({"project_id": "b", "operation": "get"});
        assert!(refused(&call(&a_client, "project_state", get).await).contains("Not allowed"));

        let report = ok(&call(
            &operator,
            "plan_report",
            json!({"project_id": "b", "plan_id": plan_id}),
        )
        .await);
        assert_eq!(
            report["tasks"][0]["status"], "pending",
            "{backend:?}: nothing changed"
        );
    }
}

#[tokio::test]
async fn a_read_key_can_read_plans_and_state_but_not_change_them() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let p = server.project("p").await;
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(&operator, "p", json!([{"id": "t", "title": "T"}])).await;
        let key = server.key(p.id, Role::Read).await;
        let reader = clients::streamable(&server.url("/mcp"), &key).await;
        let plan_id = made["plan_id"].as_str().unwrap();
        ok(&call(&reader, "next_tasks", json!({"plan_id": plan_id})).await);
        ok(&call(&reader, "project_state", json!({"operation": "get"})).await);
        let message =
            refused(&update(&reader, "p", &task_id(&made, "t"), "in-progress", json!({})).await);
        assert!(message.contains("Not allowed"), "{backend:?}: {message}");
        let args = json!({"title": "t", "tasks": [{"id": "x", "title": "X"}]});
        assert!(refused(&call(&reader, "plan_tasks", args).await).contains("Not allowed"));
        let change = json!({"operation": "update", "revision": 0, "phase": "review"});
        assert!(refused(&call(&reader, "project_state", change).await).contains("Not allowed"));
    }
}
