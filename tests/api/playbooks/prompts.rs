//! Playbooks and templates offered as MCP prompts.

use super::*;

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
