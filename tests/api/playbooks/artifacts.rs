//! Generated artifacts as the client sends them back: in a code fence, or not parsing.

use super::*;

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
async fn an_artifact_whose_yaml_aliases_expand_to_millions_of_values_is_refused_quickly() {
    // 15 KB that a YAML parser expands into nine million values (about a gigabyte): one
    // anchored list of 3,000 items and 3,000 aliases to it.
    let bomb = format!(
        "evals: &a [{}]\nmore: [{}]\n",
        vec!["x"; 3000].join(","),
        vec!["*a"; 3000].join(",")
    );
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let view = at_the_evals(&client).await;
        let started = std::time::Instant::now();
        let message = refused(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "generate-evals", "input": {"evals": bomb}})).await);
        assert!(
            message.contains("too large once its aliases are expanded"),
            "{backend:?}: {message}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let still = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "session_id": view["session_id"]})).await);
        assert_eq!(current(&still), "generate-evals", "nothing changed");
        server.stop().await;
    }
}
