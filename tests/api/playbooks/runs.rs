//! Whole runs of each playbook: the round trips counted, what reaches each generator, what
//! is stored, and what a run says when it cannot go on.

use super::*;

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
