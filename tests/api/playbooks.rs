//! Playbooks end to end through rmcp's client over Streamable HTTP, on every backend: full runs
//! with the round trips counted, what reaches each generator, what is stored, resuming after a
//! restart, retries, bad input, prompts, and generating through MCP sampling.

use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

/// A client that counts the tool calls it makes.
struct Counted<'a> {
    client: &'a Client,
    calls: usize,
}

impl Counted<'_> {
    async fn call(&mut self, tool: &'static str, arguments: Value) -> Value {
        self.calls += 1;
        ok(&call(self.client, tool, arguments).await)
    }

    /// Answers the current step of `view` with `value` under the key it asks for.
    async fn answer(&mut self, view: &Value, value: Value) -> Value {
        let current = &view["current"];
        let key = current["input"]["key"].as_str().expect("an input key");
        self.call(
            "advance_step",
            json!({
                "session_id": view["session_id"],
                "step_id": current["id"],
                "input": { key: value },
            }),
        )
        .await
    }
}

fn current(view: &Value) -> &str {
    view["current"]["id"].as_str().unwrap_or("<none>")
}

fn generate_prompt(view: &Value) -> &str {
    view["current"]["generate"]["prompt"]
        .as_str()
        .expect("a generate request")
}

async fn memories(client: &Client, project: &str) -> Vec<Value> {
    let fetched = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "limit": 100}),
    )
    .await);
    fetched["memories"].as_array().cloned().unwrap_or_default()
}

const EVALS: &str = "evals:\n  - id: EV-001\n    rule: Errors carry context\n    check: grep\n";

#[tokio::test]
async fn initialize_project_runs_to_completion_with_one_call_per_answer_or_artifact() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let mut c = Counted {
            client: &client,
            calls: 0,
        };

        let view = c
            .call(
                "run_playbook",
                json!({"playbook_id": "initialize-project", "project_id": "atlas",
                       "input": {"project_name": "Atlas"}}),
            )
            .await;
        assert_eq!(current(&view), "description", "{backend:?}");
        assert_eq!(view["outline"].as_array().unwrap().len(), 9);
        assert_eq!(view["outline"][0]["state"], "done");
        assert_eq!(view["outline"][1]["state"], "current");
        assert!(
            view["current"]["prompt"]
                .as_str()
                .unwrap()
                .contains("Atlas")
        );

        let view = c
            .answer(&view, json!("A DESCRIPTION-MARKER shipping tracker."))
            .await;
        let view = c.answer(&view, json!("SOW-MARKER: deliver by June.")).await;
        assert_eq!(current(&view), "repositories");
        let view = c.answer(&view, json!([])).await;
        // No repositories: packing is skipped by the server, and the first generator is next.
        assert_eq!(current(&view), "generate-rules");
        assert_eq!(view["outline"][4]["state"], "skipped");
        let rules_prompt = generate_prompt(&view);
        assert!(rules_prompt.contains("DESCRIPTION-MARKER") && rules_prompt.contains("SOW-MARKER"));
        assert_eq!(view["current"]["generate"]["send_back_under"], "rules");

        let view = c
            .answer(&view, json!("# Rules\nRULE-MARKER: wrap every error."))
            .await;
        assert_eq!(current(&view), "generate-evals");
        assert!(
            generate_prompt(&view).contains("RULE-MARKER"),
            "rules reach the evals prompt"
        );
        let view = c.answer(&view, json!(EVALS)).await;
        let view = c
            .answer(&view, json!("# Requirements\nREQ-MARKER FR-001"))
            .await;
        assert_eq!(current(&view), "generate-roadmap");
        assert!(
            generate_prompt(&view).contains("REQ-MARKER"),
            "requirements reach the roadmap prompt"
        );
        let view = c.answer(&view, json!("# Roadmap\nPhase 1")).await;

        assert_eq!(view["status"], "completed", "{backend:?}");
        assert!(view["current"].is_null());
        assert_eq!(
            c.calls, 8,
            "4 user inputs + 4 generate steps, no more calls"
        );

        let stored = memories(&client, "atlas").await;
        let mut kinds: Vec<(String, String)> = stored
            .iter()
            .map(|m| {
                (
                    m["memory_type"].as_str().unwrap().to_owned(),
                    m["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                (
                    "document".to_owned(),
                    "Atlas: evals for the project rules".to_owned()
                ),
                (
                    "document".to_owned(),
                    "Atlas: project description".to_owned()
                ),
                ("document".to_owned(), "Atlas: requirements".to_owned()),
                ("document".to_owned(), "Atlas: roadmap".to_owned()),
                ("document".to_owned(), "Atlas: statement of work".to_owned()),
                ("rule".to_owned(), "Atlas: project rules".to_owned()),
            ]
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn brownfield_onboard_reports_a_pack_that_fails_then_goes_on_when_skipped() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("legacy").await;
        let mut c = Counted {
            client: &client,
            calls: 0,
        };
        let view = c
            .call(
                "run_playbook",
                json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                       "input": {"repository_urls": ["https://127.0.0.1:9/app.git"]}}),
            )
            .await;
        assert_eq!(current(&view), "pack-repositories", "{backend:?}");
        let error = view["current"]["error"].as_str().unwrap();
        assert!(
            error.contains("own network"),
            "the packer's own refusal reaches the session: {error}"
        );
        assert_eq!(view["outline"][1]["state"], "failed");

        let view = c
            .call("advance_step", json!({"session_id": view["session_id"], "step_id": "pack-repositories", "skip": true}))
            .await;
        assert_eq!(current(&view), "extra-context");
        let view = c
            .answer(&view, json!("The billing module is being replaced."))
            .await;
        assert!(generate_prompt(&view).contains("billing module"));
        let view = c.answer(&view, json!("RULE-MARKER-2: no globals")).await;
        assert_eq!(current(&view), "generate-architecture");
        assert!(generate_prompt(&view).contains("RULE-MARKER-2"));
        let view = c.answer(&view, json!("# Architecture")).await;
        assert_eq!(view["status"], "completed");
        assert_eq!(memories(&client, "legacy").await.len(), 3);

        // Without repository URLs the packing step is skipped by the server.
        let view = c
            .call(
                "run_playbook",
                json!({"playbook_id": "brownfield-onboard", "project_id": "legacy"}),
            )
            .await;
        let view = c.answer(&view, json!([])).await;
        assert_eq!(current(&view), "extra-context");
        assert_eq!(view["outline"][1]["state"], "skipped");
        server.stop().await;
    }
}

#[tokio::test]
async fn research_and_analyze_says_clearly_that_no_data_source_is_configured() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("insights").await;
    let mut c = Counted {
        client: &client,
        calls: 0,
    };
    let view = c
        .call(
            "run_playbook",
            json!({"playbook_id": "research-and-analyze", "project_id": "insights",
                   "input": {"objective": "Why did churn rise in March?"}}),
        )
        .await;
    let view = c.answer(&view, json!("")).await;
    assert_eq!(current(&view), "discover-schema");
    assert!(
        view["current"]["error"]
            .as_str()
            .unwrap()
            .contains("no Athena sidecar is configured")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_session_resumes_after_a_server_restart() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("atlas").await;
        let (address, database) = (server.address, server.database.clone());
        let session = {
            let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
            let mut c = Counted {
                client: &client,
                calls: 0,
            };
            let view = c
                .call("run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}}))
                .await;
            let view = c.answer(&view, json!("Before the restart.")).await;
            assert_eq!(current(&view), "statement-of-work");
            view["session_id"].clone()
        };
        server.stop().await;

        let restarted = TestServer::start_on(database, address).await;
        let client = clients::streamable(&restarted.url("/mcp"), OPERATOR_TOKEN).await;
        let view = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "session_id": session})).await);
        assert_eq!(current(&view), "statement-of-work", "{backend:?}");
        assert_eq!(
            view["collected_keys"],
            json!(["description", "project_name"])
        );
        let mut c = Counted {
            client: &client,
            calls: 0,
        };
        let view = c.answer(&view, json!("After the restart.")).await;
        assert_eq!(current(&view), "repositories");
        let listed = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(listed["sessions"][0]["session_id"], session);
        assert_eq!(listed["sessions"][0]["current_step"], "repositories");
        restarted.stop().await;
    }
}

#[tokio::test]
async fn retrying_the_same_advance_neither_advances_twice_nor_stores_twice() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let started = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await);
        let answer = json!({"session_id": started["session_id"], "step_id": "description", "input": {"description": "Once."}});
        let first = ok(&call(&client, "advance_step", answer.clone()).await);
        assert_eq!(first["stored"].as_array().unwrap().len(), 1);
        let again = ok(&call(&client, "advance_step", answer).await);
        assert_eq!(again["replayed"], true, "{backend:?}");
        assert_eq!(current(&again), "statement-of-work");
        assert!(again["stored"].as_array().unwrap().is_empty());
        // Without step_id, the identical input is recognised too.
        let bare = json!({"session_id": started["session_id"], "input": {"description": "Once."}});
        assert_eq!(
            ok(&call(&client, "advance_step", bare).await)["replayed"],
            true
        );
        assert_eq!(memories(&client, "atlas").await.len(), 1);
        let sessions =
            ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(sessions["sessions"][0]["steps_done"], 2);
        server.stop().await;
    }
}

#[tokio::test]
async fn input_that_does_not_fit_the_step_is_refused_and_changes_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let started = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await);
        let id = started["session_id"].clone();
        let before = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        for (arguments, expected) in [
            (
                json!({"session_id": id, "input": {"summary": "x"}}),
                "takes `input.description`",
            ),
            (
                json!({"session_id": id, "input": {"description": 42}}),
                "must be a string",
            ),
            (
                json!({"session_id": id, "input": {}}),
                "needs `input.description`",
            ),
            (
                json!({"session_id": id, "step_id": "generate-rules", "input": {"rules": "x"}}),
                "is at step `description`",
            ),
            (json!({"session_id": id, "skip": true}), "cannot be skipped"),
            (
                json!({"session_id": "not-a-uuid", "input": {}}),
                "`session_id` is `not-a-uuid`",
            ),
        ] {
            let message = refused(&call(&client, "advance_step", arguments).await);
            assert!(message.contains(expected), "{backend:?}: {message}");
        }
        let message = refused(
            &call(
                &client,
                "run_playbook",
                json!({"playbook_id": "nope", "project_id": "atlas"}),
            )
            .await,
        );
        assert!(message.contains("initialize-project"), "{message}");
        let message = refused(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": ["x"]}})).await);
        assert!(message.contains("must be a string"), "{message}");
        let after = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(before, after, "nothing changed");
        assert!(memories(&client, "atlas").await.is_empty());
        server.stop().await;
    }
}

#[tokio::test]
async fn a_key_for_one_project_cannot_see_or_advance_another_projects_session() {
    let server = TestServer::start(Backend::Sqlite).await;
    let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("atlas").await;
    let other = server.project("other").await;
    let started = ok(&call(
        &operator,
        "run_playbook",
        json!({"playbook_id": "initialize-project", "project_id": "atlas"}),
    )
    .await);
    let key = server.key(other.id, codifier::auth::Role::Write).await;
    let client = clients::streamable(&server.url("/mcp"), &key).await;
    let message = refused(
        &call(
            &client,
            "advance_step",
            json!({"session_id": started["session_id"], "input": {"project_name": "x"}}),
        )
        .await,
    );
    assert!(message.contains("no playbook session"), "{message}");
    let message =
        refused(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
    assert!(message.contains("cannot act on project"), "{message}");
    let read = server.key(other.id, codifier::auth::Role::Read).await;
    let reader = clients::streamable(&server.url("/mcp"), &read).await;
    let message = refused(
        &call(
            &reader,
            "run_playbook",
            json!({"playbook_id": "initialize-project"}),
        )
        .await,
    );
    assert!(message.contains("`read` role"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn playbooks_and_templates_are_offered_as_prompts() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("atlas").await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for name in [
        "initialize-project",
        "brownfield-onboard",
        "research-and-analyze",
        "rules-from-context",
        "evals-from-rules",
        "requirements-from-context",
        "roadmap-from-requirements",
        "queries-from-objective",
        "research-synthesis",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let text = |result: rmcp::model::GetPromptResult| match &result.messages[0].content {
        rmcp::model::ContentBlock::Text(text) => text.text.clone(),
        other => panic!("not text: {other:?}"),
    };
    let mut request = rmcp::model::GetPromptRequestParams::new("initialize-project");
    request.arguments = Some(
        json!({"project_id": "atlas", "project_name": "Atlas"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let playbook = text(client.get_prompt(request).await.expect("prompts/get"));
    assert!(
        playbook.contains("run_playbook") && playbook.contains("\"project_name\":\"Atlas\""),
        "{playbook}"
    );
    let mut request = rmcp::model::GetPromptRequestParams::new("evals-from-rules");
    request.arguments = Some(
        json!({"rules": "RULE-IN-PROMPT"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let evals = text(client.get_prompt(request).await.expect("prompts/get"));
    assert!(
        evals.contains("RULE-IN-PROMPT") && evals.contains("pass_criteria"),
        "{evals}"
    );
    let missing = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("evals-from-rules"))
        .await;
    assert!(
        missing.is_err(),
        "a template prompt without its argument is refused"
    );
    server.stop().await;
}
