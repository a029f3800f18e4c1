//! The working-session tools through a real MCP client, on every backend: `load_context`,
//! `remember` (one transaction, resolving by best match), read-key limits and isolation between
//! projects (`agent_watch.rs`: `watch_out`, `unstick` and the prompt). The library is the small
//! pack in `tests/fixtures/skills/agent` (our own text): three skills whose stacks are named in
//! each of the three places (`stack`, `tags`, `triggers`), sharp edges of every severity with
//! symptoms and detection patterns (one with a lookahead), patterns and handoffs.

use codifier::domain::{GuardrailEventKind, Role};
use serde_json::{Value, json};

use super::agent_pack::{PACK, events, ids, import_pack, remember, server_with_library};
use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

#[tokio::test]
async fn load_context_gives_the_project_its_saved_stack_last_session_issues_decisions_skills_and_edges()
 {
    for backend in backends() {
        let (server, project) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        remember(
            &client,
            json!({"project_id": "p",
                   "decision": {"what": "Fetch with a query library", "why": "Effects leaked requests"},
                   "issue": {"description": "The dashboard flickers on load", "status": "open"},
                   "session_summary": "Moved the dashboard to the query library.\nCharts are left.",
                   "validated": ["validate_code on src/Dashboard.tsx"]}),
        )
        .await;

        let first = ok(&call(
            &client,
            "load_context",
            json!({"project_id": "p", "stack_hints": ["React"],
                   "project_description": "a dashboard that loads data in React components"}),
        )
        .await);
        assert_eq!(first["stack_saved"], true, "{backend:?}");
        assert_eq!(first["project"]["stack"], json!(["React"]));
        assert_eq!(
            first["last_session"]["summary"],
            "Moved the dashboard to the query library.\nCharts are left."
        );
        assert_eq!(
            first["last_session"]["validated"],
            json!(["validate_code on src/Dashboard.tsx"])
        );
        assert_eq!(
            ids(&first["open_issues"], "description"),
            ["The dashboard flickers on load"]
        );
        assert_eq!(
            ids(&first["decisions"], "what"),
            ["Fetch with a query library"]
        );
        assert_eq!(
            ids(&first["skills"], "id")[0],
            "web-fetching",
            "{backend:?}"
        );
        // The six React edges, by severity: critical first, unrated (none here) last.
        let edges = &first["sharp_edges"];
        let severities: Vec<&str> = edges
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["severity"].as_str().unwrap())
            .collect();
        assert_eq!(
            severities,
            ["critical", "error", "warning", "warning", "info", "info"],
            "{backend:?}"
        );
        assert_eq!(edges[0]["id"], "interval-stale-closure");
        assert!(first["instruction"].as_str().unwrap().contains("watch_out"));

        // The stack was saved: the next session needs no hints.
        let second = ok(&call(&client, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(second["project"]["stack"], json!(["React"]), "{backend:?}");
        assert_eq!(second["stack_saved"], false);
        assert_eq!(second["sharp_edges"].as_array().unwrap().len(), 6);
        assert_eq!(
            events(&server, &project, GuardrailEventKind::SessionStart).await,
            2
        );
        assert_eq!(
            events(&server, &project, GuardrailEventKind::SessionEnd).await,
            1
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn load_context_with_only_a_description_finds_the_project_or_says_how_to_create_one() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        import_pack(&server, PACK).await;
        server.project("billing-api").await;
        server.project("checkout-web").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let found = ok(&call(
            &client,
            "load_context",
            json!({"project_description": "the billing API that sends invoices"}),
        )
        .await);
        assert_eq!(found["project"]["name"], "billing-api", "{backend:?}");
        assert_eq!(found["project"]["found_by"], "description");

        let none = ok(&call(
            &client,
            "load_context",
            json!({"project_description": "a weather station", "stack_hints": ["rust"]}),
        )
        .await);
        assert_eq!(none["project"], Value::Null, "{backend:?}");
        assert!(
            none["instruction"].as_str().unwrap().contains("create"),
            "{none}"
        );
        assert_eq!(
            ids(&none["sharp_edges"], "id"),
            ["sleep-in-async"],
            "library edges still come"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_read_key_loads_watches_and_unsticks_but_cannot_remember_or_set_the_stack() {
    for backend in backends() {
        let (server, project) = server_with_library(backend).await;
        let key = server.key(project.parse().unwrap(), Role::Read).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let loaded = ok(&call(&client, "load_context", json!({"stack_hints": ["rust"]})).await);
        assert_eq!(loaded["stack_saved"], false, "{backend:?}");
        assert_eq!(loaded["project"]["stack"], json!([]));
        assert!(
            loaded["notices"][0].as_str().unwrap().contains("read key"),
            "{loaded}"
        );
        assert_eq!(
            ids(&loaded["sharp_edges"], "id"),
            ["sleep-in-async"],
            "hints used for the call"
        );
        ok(&call(&client, "watch_out", json!({"stack": "rust"})).await);
        ok(&call(
            &client,
            "unstick",
            json!({"task_description": "t", "attempts": ["a", "b"], "errors": []}),
        )
        .await);
        let refusal = refused(
            &call(
                &client,
                "remember",
                json!({"session_summary": "did things"}),
            )
            .await,
        );
        assert!(refusal.contains("`read` role"), "{backend:?}: {refusal}");
        server.stop().await;
    }
}

#[tokio::test]
async fn remember_writes_its_parts_in_one_transaction_so_a_failing_part_leaves_nothing() {
    for backend in backends() {
        let (server, _) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        // An issue resolved once, then the same issue opened again.
        let opened = remember(&client, json!({"project_id": "p", "issue": {"description": "Uploads time out", "status": "open"}})).await;
        let first = opened["saved"][0]["id"].as_str().unwrap().to_owned();
        remember(&client, json!({"project_id": "p", "issue": {"id": first, "description": "Raised the proxy timeout", "status": "resolved"}})).await;
        let reopened = remember(&client, json!({"project_id": "p", "issue": {"description": "Uploads time out", "status": "open"}})).await;
        let second = reopened["saved"][0]["id"].as_str().unwrap().to_owned();
        assert_ne!(first, second, "{backend:?}: a new issue");

        // Resolving the second the same way would make it a copy of the first: the store refuses
        // that part inside the transaction, and the decision sent with it is not kept either.
        let failed = call(
            &client,
            "remember",
            json!({"project_id": "p",
                   "decision": {"what": "Use resumable uploads", "why": "Timeouts"},
                   "session_summary": "Fixed uploads",
                   "issue": {"id": second, "description": "Raised the proxy timeout", "status": "resolved"}}),
        )
        .await;
        assert!(
            refused(&failed).contains("Conflict"),
            "{backend:?}: {}",
            refused(&failed)
        );
        for kind in ["decision", "session_summary"] {
            let fetched = ok(&call(
                &client,
                "fetch_context",
                json!({"project_id": "p", "memory_type": kind}),
            )
            .await);
            assert_eq!(fetched["count"], 0, "{backend:?}: no {kind} was kept");
        }
        let loaded = ok(&call(&client, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(
            ids(&loaded["open_issues"], "id"),
            std::slice::from_ref(&second),
            "{backend:?}: still open"
        );

        // A part refused before writing (an unknown issue) leaves nothing either.
        let unknown = call(
            &client,
            "remember",
            json!({"project_id": "p", "decision": {"what": "x", "why": "y"},
                   "issue": {"id": uuid::Uuid::new_v4().to_string(), "description": "d", "status": "resolved"}}),
        )
        .await;
        assert!(refused(&unknown).contains("not in this project"));
        let decisions = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "memory_type": "decision"}),
        )
        .await);
        assert_eq!(decisions["count"], 0, "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn resolving_without_an_id_resolves_the_open_issue_that_matches_best_and_says_which() {
    for backend in backends() {
        let (server, _) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        for description in [
            "Login redirects loop after the session expires",
            "The CSV export drops its last row",
        ] {
            remember(
                &client,
                json!({"project_id": "p", "issue": {"description": description, "status": "open"}}),
            )
            .await;
        }
        let resolved = remember(
            &client,
            json!({"project_id": "p", "issue": {"status": "resolved",
                   "description": "CSV export: the last row was dropped by an off-by-one"}}),
        )
        .await;
        let saved = &resolved["saved"][0];
        assert_eq!(saved["found_by"], "best_match", "{backend:?}");
        assert_eq!(
            saved["title"], "The CSV export drops its last row",
            "{backend:?}"
        );
        assert_eq!(saved["status"], "resolved");
        assert_eq!(saved["outcome"], "updated");
        let loaded = ok(&call(&client, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(
            ids(&loaded["open_issues"], "description"),
            ["Login redirects loop after the session expires"],
            "{backend:?}"
        );
        let again = call(&client, "remember", json!({"project_id": "p", "issue": {"id": saved["id"], "description": "again", "status": "resolved"}})).await;
        assert!(refused(&again).contains("already resolved"), "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_key_for_one_project_never_sees_another_projects_edges_issues_or_decisions() {
    for backend in backends() {
        let (server, a) = server_with_library(backend).await;
        let b = server.project("b").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "memory_type": "sharp_edge", "title": "Our grid re-renders on every keystroke",
                   "content": {"id": "grid-rerender", "summary": "Our grid re-renders on every keystroke", "severity": "critical",
                               "situation": "Typing into the grid filter", "detection_pattern": "onKeyUp"},
                   "tags": ["react"]}),
        )
        .await);
        remember(
            &client,
            json!({"project_id": "p", "decision": {"what": "Secret plan", "why": "x"},
                                 "issue": {"description": "Secret issue", "status": "open"}}),
        )
        .await;

        let own = ok(&call(
            &client,
            "watch_out",
            json!({"project_id": "p", "stack": "react", "code_context": "onKeyUp={go}"}),
        )
        .await);
        assert_eq!(
            own["edges"][0]["summary"], "Our grid re-renders on every keystroke",
            "{backend:?}"
        );
        assert_eq!(own["edges"][0]["source"], "project");

        let key_b = server.key(b.id, Role::Write).await;
        let client_b = clients::streamable(&server.url("/mcp"), &key_b).await;
        let seen = ok(&call(
            &client_b,
            "watch_out",
            json!({"stack": "react", "code_context": "onKeyUp={go}"}),
        )
        .await);
        assert!(
            seen["edges"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["source"] == "library"),
            "{backend:?}: {seen}"
        );
        let loaded = ok(&call(&client_b, "load_context", json!({})).await);
        assert_eq!(loaded["project"]["name"], "b");
        assert_eq!(loaded["open_issues"], json!([]), "{backend:?}");
        assert_eq!(loaded["decisions"], json!([]));
        for (tool, arguments) in [
            ("watch_out", json!({"project_id": a, "stack": "react"})),
            ("load_context", json!({"project_id": a})),
            (
                "unstick",
                json!({"project_id": a, "task_description": "t", "attempts": ["x"], "errors": []}),
            ),
            (
                "remember",
                json!({"project_id": a, "session_summary": "sneaky"}),
            ),
        ] {
            let refusal = refused(&call(&client_b, tool, arguments).await);
            assert!(
                refusal.contains("another project"),
                "{backend:?} {tool}: {refusal}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn remember_keeps_a_sharp_edge_the_session_ran_into_that_watch_out_then_shows() {
    for backend in backends() {
        let (server, _) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        // A pattern that does not compile refuses the whole call, the decision with it.
        let bad = call(
            &client,
            "remember",
            json!({"project_id": "p", "decision": {"what": "Debounce the filter", "why": "Grid lag"},
                   "sharp_edge": {"id": "filter-lag", "summary": "The filter re-renders the grid", "detection_pattern": "onKeyUp("}}),
        )
        .await;
        let refusal = refused(&bad);
        assert!(
            refusal.contains("sharp_edge.detection_pattern"),
            "{backend:?}: {refusal}"
        );
        let decisions = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "memory_type": "decision"}),
        )
        .await);
        assert_eq!(decisions["count"], 0, "{backend:?}");

        let saved = remember(
            &client,
            json!({"project_id": "p", "decision": {"what": "Debounce the filter", "why": "Grid lag"},
                   "sharp_edge": {"id": "filter-lag", "summary": "The filter re-renders the grid on every key",
                                  "severity": "high", "situation": "Typing into the grid filter",
                                  "detection_pattern": "onKeyUp"}}),
        )
        .await;
        let parts: Vec<&str> = saved["saved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["part"].as_str().unwrap())
            .collect();
        assert_eq!(parts, ["decision", "sharp_edge"], "{backend:?}");

        let seen = ok(&call(
            &client,
            "watch_out",
            json!({"project_id": "p", "stack": "react", "code_context": "<input onKeyUp={go}>"}),
        )
        .await);
        let first = &seen["edges"][0];
        assert_eq!(
            first["summary"], "The filter re-renders the grid on every key",
            "{backend:?}: {seen}"
        );
        assert_eq!(first["source"], "project");
        assert_eq!(first["severity"], "error", "high is stored as error");
        assert_eq!(first["matches_current_code"], true);
        server.stop().await;
    }
}
