//! The working-session tools through a real MCP client, on every backend: `load_context`,
//! `remember` (one transaction), `watch_out`, `unstick` and the `start-session` prompt, with
//! read-key limits and isolation between projects. The library is the small pack in
//! `tests/fixtures/skills/agent` (our own text): three skills whose stacks are named in each of
//! the three places (`stack`, `tags`, `triggers`), sharp edges of every severity with symptoms
//! and detection patterns (one with a lookahead), patterns and handoffs.

use codifier::domain::{GuardrailEventKind, Role};
use serde_json::{Value, json};

use super::agent_pack::import_pack;
use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

const PACK: &str = "tests/fixtures/skills/agent";

/// A server with the fixture pack imported and a project `p` (its id returned).
async fn server_with_library(backend: crate::helpers::Backend) -> (TestServer, String) {
    let server = TestServer::start(backend).await;
    import_pack(&server, PACK).await;
    let project = server.project("p").await;
    (server, project.id.to_string())
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn events(server: &TestServer, project: &str, kind: GuardrailEventKind) -> u64 {
    let project = project.parse().expect("a project id");
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let counts = server
        .store
        .guardrail_event_counts(project, since)
        .await
        .expect("event counts");
    counts
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.count)
        .sum()
}

async fn remember(client: &Client, arguments: Value) -> Value {
    ok(&call(client, "remember", arguments).await)
}

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
            [second.clone()],
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
                   "content": {"summary": "Our grid re-renders on every keystroke", "severity": "critical",
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
async fn watch_out_puts_edges_whose_pattern_matches_the_code_first_and_returns_at_most_five() {
    for backend in backends() {
        let (server, project) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let situation = json!({"project_id": "p", "stack": "react",
                               "situation": "a counter that ticks with setInterval inside useEffect"});
        let by_words = ok(&call(&client, "watch_out", situation.clone()).await);
        assert_eq!(
            by_words["edges"].as_array().unwrap().len(),
            5,
            "{backend:?}: at most five of six"
        );
        assert_eq!(by_words["considered"], 6);
        assert_eq!(
            by_words["edges"][0]["id"], "interval-stale-closure",
            "{backend:?}"
        );
        assert_eq!(by_words["edges"][0]["matches_current_code"], false);
        assert!(
            by_words["edges"][0]["solution"]
                .as_str()
                .unwrap()
                .contains("functional form")
        );

        // The code fetches without a signal (the lookahead pattern) and parses JSON: those two
        // come first, marked, whatever the situation says.
        let mut with_code = situation;
        with_code["code_context"] =
            json!("useEffect(() => { fetch(url).then(r => r.json()).then(setRows) }, [url])");
        let found = ok(&call(&client, "watch_out", with_code).await);
        let edges = found["edges"].as_array().unwrap();
        let marked: Vec<&str> = edges
            .iter()
            .take_while(|e| e["matches_current_code"] == true)
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            marked,
            ["effect-fetch-without-abort", "json-before-ok"],
            "{backend:?}: {found}"
        );
        assert_eq!(edges[2]["id"], "interval-stale-closure");
        assert_eq!(found["code_check"]["matched"], 2);

        // A stack named only in a skill's tags, or in a word of its triggers.
        let by_tag = ok(&call(&client, "watch_out", json!({"stack": "tokio"})).await);
        assert_eq!(
            ids(&by_tag["edges"], "id"),
            ["sleep-in-async"],
            "{backend:?}"
        );
        let by_trigger = ok(&call(&client, "watch_out", json!({"stack": "JWT"})).await);
        assert_eq!(
            ids(&by_trigger["edges"], "id"),
            ["parallel-refresh-race", "token-in-local-storage"]
        );
        let unknown = ok(&call(&client, "watch_out", json!({"stack": "cobol"})).await);
        assert_eq!(unknown["edges"], json!([]));
        assert_eq!(
            events(&server, &project, GuardrailEventKind::SharpEdgeSurfaced).await,
            10
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn unstick_finds_circular_attempts_by_shingles_and_the_known_pattern_their_errors_show() {
    for backend in backends() {
        let (server, project) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let circling = ok(&call(
            &client,
            "unstick",
            json!({"project_id": "p", "task_description": "keep users logged in when their token expires",
                   "attempts": ["retry the request with a new token",
                                "retry the request after refreshing the token",
                                "refresh the token and retry the request"],
                   "errors": ["POST /orders: 401 Unauthorized after token refresh"],
                   "current_code": "await refreshToken(session)"}),
        )
        .await);
        let analyzed = &circling["attempts_analyzed"];
        assert_eq!(analyzed["method"], "shingles", "{backend:?}");
        assert_eq!(analyzed["circular"], true, "{circling}");
        assert!(analyzed["similarity"].as_f64().unwrap() > 0.7);
        assert_eq!(circling["should_reset"], true);
        assert!(
            circling["reset_reason"]
                .as_str()
                .unwrap()
                .contains("3 attempts")
        );
        let known = &circling["known_patterns"][0];
        assert_eq!(
            known["title"],
            "Parallel requests each refresh the same token and log the user out"
        );
        assert_eq!(
            known["matched_symptom"],
            "401 Unauthorized after token refresh"
        );
        assert_eq!(known["matches_current_code"], true);
        let approaches = ids(&circling["alternatives"], "approach").join("\n");
        assert!(
            approaches.contains("Single-flight refresh"),
            "{backend:?}: {approaches}"
        );
        assert!(
            approaches.contains("make every other request wait"),
            "the edge's fix"
        );
        let handoffs = ids(&circling["alternatives"], "handoff_to");
        assert!(
            handoffs.contains(&"web-fetching".to_owned()),
            "{handoffs:?}"
        );
        assert!(
            circling["diagnosis"]
                .as_str()
                .unwrap()
                .contains("variations of one approach")
        );

        let exploring = ok(&call(
            &client,
            "unstick",
            json!({"project_id": "p", "task_description": "load the orders page faster",
                   "attempts": ["switched the HTTP client from axios to fetch",
                                "moved the data loading into a server component",
                                "cached the response in redis"],
                   "errors": ["the page still takes four seconds"]}),
        )
        .await);
        assert_eq!(
            exploring["attempts_analyzed"]["circular"], false,
            "{backend:?}"
        );
        assert_eq!(exploring["should_reset"], false);
        assert_eq!(exploring["known_patterns"], json!([]));
        assert_eq!(
            events(&server, &project, GuardrailEventKind::EscapeHatchTrigger).await,
            1
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_start_session_prompt_walks_through_load_work_validate_and_remember() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(prompts.iter().any(|p| p.name == "start-session"));
    let arguments = json!({"project_id": "p", "task": "add refunds", "stack": "rust, axum"});
    let prompt = client
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("start-session")
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .expect("prompts/get");
    let text = format!("{:?}", prompt.messages);
    let order: Vec<usize> = ["load_context", "watch_out", "validate_code", "remember"]
        .iter()
        .map(|tool| {
            text.find(tool)
                .unwrap_or_else(|| panic!("{tool} in {text}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn unstick_compares_attempts_by_meaning_when_a_model_is_ready() {
    let fake = crate::fake_embeddings::FakeEmbeddings::start().await;
    for backend in backends() {
        let provider = fake.config("m");
        let server = TestServer::start_with(backend, move |config| {
            config.embeddings = codifier::config::EmbeddingsConfig::Http(provider)
        })
        .await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        // Worded apart, meaning the same (the fake's synonyms): shingles would call them
        // different, embeddings call them circular.
        let attempts = json!([
            "release the automobile build",
            "ship the car build",
            "deploy the vehicle build"
        ]);
        let mut analyzed = Value::Null;
        for _ in 0..100 {
            let result = ok(&call(
                &client,
                "unstick",
                json!({"project_id": "p", "task_description": "get the build out",
                       "attempts": attempts, "errors": ["the build fails"]}),
            )
            .await);
            analyzed = result["attempts_analyzed"].clone();
            if analyzed["method"] == "embeddings" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            analyzed["method"], "embeddings",
            "{backend:?}: the model never became ready"
        );
        assert_eq!(analyzed["circular"], true, "{backend:?}: {analyzed}");
        assert!(analyzed["similarity"].as_f64().unwrap() > 0.9);
        server.stop().await;
    }
}
