//! `watch_out`, `unstick` and the `start-session` prompt through a real MCP client, on every
//! backend, over the fixture pack of `agent_pack.rs`: edges whose pattern matches the code
//! first, stacks named in tags and triggers, circular attempts by shingles and by embeddings.

use codifier::domain::GuardrailEventKind;
use serde_json::{Value, json};

use super::agent_pack::{events, ids, server_with_library};
use crate::clients::{self, call, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

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
