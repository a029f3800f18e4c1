//! Playbooks end to end through rmcp's client over Streamable HTTP, on every backend: full runs
//! with the round trips counted, what reaches each generator, what is stored, resuming after a
//! restart, retries, bad input, prompts, and generating through MCP sampling.

use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::git_server::{GitServer, versioned_repo};
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
        // Private addresses allowed, so the URL passes the check and fails when cloned.
        let server =
            TestServer::start_with(backend, |config| config.packer.allow_private_network = true)
                .await;
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
                       "input": {"repository_urls": ["http://127.0.0.1:9/app.git"]}}),
            )
            .await;
        assert_eq!(current(&view), "pack-repositories", "{backend:?}");
        let error = view["current"]["error"].as_str().unwrap();
        assert!(
            error.contains("http://127.0.0.1:9/app.git") && error.contains("`revise: true`"),
            "the packer's own error reaches the session, with the way out: {error}"
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

        let abandon = json!({"session_id": started["session_id"], "abandon": true});
        let ended = ok(&call(&client, "advance_step", abandon.clone()).await);
        assert_eq!(ended["status"], "abandoned");
        assert_eq!(
            ok(&call(&client, "advance_step", abandon).await)["replayed"],
            true
        );
        let late =
            json!({"session_id": started["session_id"], "input": {"statement_of_work": "x"}});
        assert!(refused(&call(&client, "advance_step", late).await).contains("abandoned"));
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
    let key = server.key(other.id, codifier::domain::Role::Write).await;
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
    let read = server.key(other.id, codifier::domain::Role::Read).await;
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

/// A server that may clone from 127.0.0.1 (the test git server), with a project `legacy`.
async fn packing_server(backend: Backend) -> (TestServer, Client) {
    let server =
        TestServer::start_with(backend, |config| config.packer.allow_private_network = true).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("legacy").await;
    (server, client)
}

#[tokio::test]
async fn a_repository_url_the_server_cannot_pack_is_refused_when_answered_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        let started = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "legacy",
                   "input": {"project_name": "Legacy"}}),
        )
        .await);
        let id = started["session_id"].clone();
        for (step, value) in [
            ("description", json!("A tracker.")),
            ("statement-of-work", json!("")),
        ] {
            let key = if step == "description" {
                "description"
            } else {
                "statement_of_work"
            };
            ok(&call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": step, "input": {key: value}}),
            )
            .await);
        }
        let before = ok(&call(
            &client,
            "playbook_sessions",
            json!({"project_id": "legacy"}),
        )
        .await);
        let good = git.url("versioned.git");
        let message = refused(
            &call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": "repositories",
                       "input": {"repository_urls": ["/home/me/code/app", good, "ftp://example.com/x.git"]}}),
            )
            .await,
        );
        assert!(
            message.contains("2 of the 3 repository URLs")
                && message.contains("`/home/me/code/app`: local paths")
                && message.contains("`ftp://example.com/x.git`: `url` uses the scheme `ftp`")
                && message.contains("Send `input.repository_urls` again"),
            "{backend:?}: {message}"
        );
        assert!(
            !message.contains("versioned.git"),
            "the good URL is not blamed: {message}"
        );
        let after = ok(&call(
            &client,
            "playbook_sessions",
            json!({"project_id": "legacy"}),
        )
        .await);
        assert_eq!(before, after, "nothing changed");
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "legacy", "session_id": id}),
        )
        .await);
        assert_eq!(current(&view), "repositories");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_good_and_a_bad_repository_are_each_packed_or_reported_without_sinking_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        // `missing.git` passes every check and fails at clone time: the git server has no such
        // repository.
        let (good, bad) = (git.url("versioned.git"), git.url("missing.git"));
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                   "input": {"repository_urls": [good, bad]}}),
        )
        .await);
        assert_eq!(current(&view), "extra-context", "{backend:?}: {view}");
        let pack = &view["outline"][1];
        assert_eq!(pack["state"], "done");
        let outcomes = pack["outcomes"].as_array().unwrap();
        assert_eq!(outcomes[0]["url"], good);
        assert_eq!(outcomes[0]["status"], "packed");
        assert!(outcomes[0]["snapshot_id"].is_string());
        assert_eq!(outcomes[1]["url"], bad);
        assert_eq!(outcomes[1]["status"], "failed");
        assert!(outcomes[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
        let note = pack["note"].as_str().unwrap();
        assert!(
            note.contains("packed 1 of 2") && note.contains(&bad),
            "{note}"
        );
        let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "extra-context", "input": {"extra_context": ""}})).await);
        let prompt = generate_prompt(&view);
        assert!(
            prompt.contains("app.py") && !prompt.contains("missing.git"),
            "{prompt}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn answering_an_earlier_step_again_reruns_what_depends_on_it_and_the_outline_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        let (good, bad) = (git.url("versioned.git"), git.url("missing.git"));
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                   "input": {"repository_urls": [bad]}}),
        )
        .await);
        let id = view["session_id"].clone();
        assert_eq!(current(&view), "pack-repositories", "{backend:?}");
        assert_eq!(view["outline"][1]["state"], "failed");
        assert!(
            view["current"]["error"]
                .as_str()
                .unwrap()
                .contains("`step_id` `repositories`")
        );

        // Go back to the repositories: the pack runs again by itself, with the new list.
        let revise = json!({"session_id": id, "step_id": "repositories", "revise": true,
                            "input": {"repository_urls": [good]}});
        let view = ok(&call(&client, "advance_step", revise.clone()).await);
        assert_eq!(current(&view), "extra-context", "{view}");
        assert_eq!(view["outline"][0]["revisions"], 1);
        assert_eq!(view["outline"][1]["state"], "done");
        assert_eq!(view["outline"][1]["outcomes"][0]["status"], "packed");
        let again = ok(&call(&client, "advance_step", revise).await);
        assert_eq!(
            again["replayed"], true,
            "the same revision sent twice is one revision"
        );
        assert_eq!(again["outline"], view["outline"]);

        let mut view = view;
        for (key, value) in [
            ("extra_context", "Deployed by hand."),
            ("rules", "RULES-ONE"),
            ("architecture", "# Architecture"),
        ] {
            let step = view["current"]["id"].clone();
            view = ok(&call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": step, "input": {key: value}}),
            )
            .await);
        }
        assert_eq!(view["status"], "completed");

        // Answering it again after the end reopens the session at the first step that reads
        // it; the user's own answer in between is kept, and packing ran again by itself.
        let view = ok(&call(&client, "advance_step", json!({"session_id": id, "step_id": "repositories", "revise": true, "input": {"repository_urls": [good.clone(), good]}})).await);
        assert_eq!(view["status"], "active");
        assert_eq!(current(&view), "generate-rules");
        let states: Vec<(&str, &str, bool)> = view["outline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap(),
                    s["state"].as_str().unwrap(),
                    s["runs_again"] == true,
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("repositories", "done", false),
                ("pack-repositories", "done", false),
                ("extra-context", "done", false),
                ("generate-rules", "current", true),
                ("generate-architecture", "pending", true),
            ]
        );
        assert_eq!(view["outline"][0]["revisions"], 2);
        assert_eq!(view["outline"][1]["outcomes"].as_array().unwrap().len(), 2);
        let markdown = clients::text(&call(&client, "run_playbook", json!({"playbook_id": "brownfield-onboard", "project_id": "legacy", "session_id": id})).await);
        assert!(
            markdown.contains("Repositories (revised 2 times)") && markdown.contains("runs again"),
            "{markdown}"
        );

        let view = ok(&call(
            &client,
            "advance_step",
            json!({"session_id": id, "step_id": "generate-rules", "input": {"rules": "RULES-TWO"}}),
        )
        .await);
        assert!(generate_prompt(&view).contains("RULES-TWO"));
        let view = ok(&call(&client, "advance_step", json!({"session_id": id, "step_id": "generate-architecture", "input": {"architecture": "# Architecture 2"}})).await);
        assert_eq!(view["status"], "completed");
        // The new artifacts replaced those the steps stored before (restorable, not kept live).
        let titles: Vec<String> = memories(&client, "legacy")
            .await
            .iter()
            .map(|m| m["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(titles.len(), 3, "{titles:?}");

        // What cannot be answered again says why.
        for (arguments, expected) in [
            (
                json!({"session_id": id, "step_id": "pack-repositories", "revise": true, "input": {}}),
                "answer again the step it reads (`repositories`)",
            ),
            (
                json!({"session_id": id, "revise": true, "input": {"repository_urls": []}}),
                "needs `step_id`",
            ),
            (
                json!({"session_id": id, "step_id": "repositories", "revise": true, "input": {"repository_urls": ["/srv/app"]}}),
                "local paths",
            ),
        ] {
            let message = refused(&call(&client, "advance_step", arguments).await);
            assert!(message.contains(expected), "{message}");
        }
        server.stop().await;
    }
}

/// Runs initialize-project in `atlas` up to the evals, answering every step before them.
async fn at_the_evals(client: &Client) -> Value {
    let mut view = ok(&call(
        client,
        "run_playbook",
        json!({"playbook_id": "initialize-project", "project_id": "atlas",
               "input": {"project_name": "atlas"}}),
    )
    .await);
    for value in [
        json!("A tracker."),
        json!(""),
        json!([]),
        json!("```markdown\n# Rules\n```rust\nlet x = 1;\n```\nRULE-MARKER\n```"),
    ] {
        let key = view["current"]["input"]["key"].as_str().unwrap().to_owned();
        let step = view["current"]["id"].clone();
        view = ok(&call(
            client,
            "advance_step",
            json!({"session_id": view["session_id"], "step_id": step, "input": {key: value}}),
        )
        .await);
    }
    assert_eq!(current(&view), "generate-evals");
    view
}

#[tokio::test]
async fn a_generated_artifact_in_a_code_fence_is_kept_without_the_fence() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let view = at_the_evals(&client).await;
        assert!(
            generate_prompt(&view).contains("# Rules\n```rust"),
            "{backend:?}: the rules reached the evals without their fence"
        );
        let fenced = format!("```yaml\n{EVALS}```\n");
        let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "generate-evals", "input": {"evals": fenced}})).await);
        assert_eq!(current(&view), "generate-requirements");
        let stored = memories(&client, "atlas").await;
        let text = |title: &str| {
            let memory = stored
                .iter()
                .find(|m| m["title"] == title)
                .unwrap_or_else(|| panic!("{title}"));
            memory["content"]["text"].as_str().unwrap().to_owned()
        };
        assert_eq!(text("atlas: evals for the project rules"), EVALS.trim());
        assert!(text("atlas: project rules").starts_with("# Rules\n```rust"));
        server.stop().await;
    }
}

#[tokio::test]
async fn an_artifact_that_does_not_parse_is_refused_with_the_shape_to_send() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let view = at_the_evals(&client).await;
        let id = view["session_id"].clone();
        for broken in [
            "```yaml\nevals: [EV-001, {rule\n```",
            "Here are the evals you asked for.",
        ] {
            let message = refused(&call(&client, "advance_step", json!({"session_id": id, "step_id": "generate-evals", "input": {"evals": broken}})).await);
            assert!(
                message.contains("send the artifact as YAML")
                    && message.contains("a list `evals`, each with id, rule, check, pass_criteria"),
                "{backend:?}: {message}"
            );
        }
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "atlas", "session_id": id}),
        )
        .await);
        assert_eq!(current(&view), "generate-evals", "nothing changed");
        server.stop().await;
    }
}

#[tokio::test]
async fn initialize_project_does_not_ask_for_the_name_of_the_project_it_runs_in() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "atlas"}),
        )
        .await);
        assert_eq!(current(&view), "description", "{backend:?}");
        assert_eq!(view["outline"][0]["state"], "done");
        assert!(
            view["outline"][0]["note"]
                .as_str()
                .unwrap()
                .contains("prefilled with `atlas`")
        );
        assert!(
            view["current"]["prompt"]
                .as_str()
                .unwrap()
                .contains("Describe atlas")
        );
        // The name the team uses can still be given.
        let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "project-name", "revise": true, "input": {"project_name": "Atlas Tracker"}})).await);
        assert_eq!(current(&view), "description");
        assert!(
            view["current"]["prompt"]
                .as_str()
                .unwrap()
                .contains("Describe Atlas Tracker")
        );
        server.stop().await;
    }
}
