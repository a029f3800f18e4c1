//! The pages added last: Guardrails (open issues, decisions and the sharp edges of the
//! project's stack), one playbook session (its outline and collected values), the Server
//! page's backlog and figures, and the Projects page's counts — each read through real HTTP
//! with a signed-in session, on both stores where the rows are a tenant's.

use codifier::domain::Role;
use serde_json::json;

use super::{memory, sign_in};
use crate::clients::{self, call, ok};
use crate::guardrails::agent_pack::import_pack;
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

/// How many forms a page holds that post somewhere other than sign-out.
fn change_forms(html: &str) -> usize {
    html.matches("method=\"post\"").count() - html.matches("action=\"/console/sign-out\"").count()
}

#[tokio::test]
async fn the_guardrails_page_shows_a_read_key_its_projects_open_issues_decisions_and_stack_edges() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        import_pack(&server, "tests/fixtures/skills/agent").await;
        let project = server.project("p").await;
        let other = server.project("other").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let remembered = ok(&call(
            &client,
            "remember",
            json!({"project_id": "p",
                   "decision": {"what": "Fetch with a query library", "why": "Effects leaked requests"},
                   "issue": {"description": "The dashboard flickers on load", "status": "open"},
                   "sharp_edge": {"id": "tenant-cache", "summary": "Cache keys that forget the tenant", "severity": "error",
                                  "situation": "Caching per request path", "why": "Two tenants share a path", "solution": "Put the tenant in the key"}}),
        )
        .await);
        ok(&call(
            &client,
            "remember",
            json!({"project_id": "p", "issue": {"description": "Charts render twice", "status": "open"}}),
        )
        .await);
        ok(&call(
            &client,
            "remember",
            json!({"project_id": "other", "issue": {"description": "Another team's private trouble", "status": "open"}}),
        )
        .await);
        ok(&call(
            &client,
            "load_context",
            json!({"project_id": "p", "stack_hints": ["React"]}),
        )
        .await);
        let flicker = remembered["saved"]
            .as_array()
            .unwrap()
            .iter()
            .find(|saved| saved["part"] == "issue")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
        let page = format!("/console/projects/{}/guardrails", project.id);
        let (status, html) = reader.get(&page).await;
        assert_eq!(status, 200, "{backend:?}: {html}");
        for shown in [
            "Fetch with a query library",
            "Effects leaked requests",
            "The dashboard flickers on load",
            "Charts render twice",
            "Cache keys that forget the tenant",
            "Put the tenant in the key",
            // A library edge of the React skill, with the why and solution read whole.
            "An interval started in an effect keeps reading the first render",
            "Use the functional form of the state setter",
        ] {
            assert!(
                html.contains(shown),
                "{backend:?}: `{shown}` missing: {html}"
            );
        }
        assert!(html.contains("Open issues (2)"), "{html}");
        assert!(!html.contains("Another team"), "another project's issue");
        // The severest edge comes first.
        assert!(
            html.find("An interval started").unwrap() < html.find("Cache keys that").unwrap(),
            "critical before error: {html}"
        );
        assert_eq!(
            change_forms(&html),
            0,
            "a read key gets no controls: {html}"
        );

        // A resolved issue leaves the page.
        ok(&call(
            &client,
            "remember",
            json!({"project_id": "p", "issue": {"id": flicker, "status": "resolved", "description": "Fixed"}}),
        )
        .await);
        client.cancel().await.unwrap();
        let (_, html) = reader.get(&page).await;
        assert!(!html.contains("The dashboard flickers on load"), "{html}");
        assert!(html.contains("Open issues (1)"), "{html}");

        let outsider = sign_in(&server, &server.key(other.id, Role::Admin).await).await;
        assert_eq!(outsider.get(&page).await.0, 403, "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_playbook_sessions_page_shows_each_steps_state_and_what_it_collected() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("atlas").await;
        let other = server.project("other").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let started = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas <web>"}}),
        )
        .await);
        client.cancel().await.unwrap();
        let session = started["session_id"].as_str().unwrap();
        let outline = started["outline"].as_array().unwrap();
        let current = started["current"]["id"].as_str().unwrap();

        let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
        let list = format!("/console/projects/{}/playbooks", project.id);
        let (_, html) = reader.get(&list).await;
        let page = format!("{list}/{session}");
        assert!(
            html.contains(&format!("href=\"{page}\"")),
            "the list links the session: {html}"
        );
        let (status, html) = reader.get(&page).await;
        assert_eq!(status, 200, "{backend:?}: {html}");
        assert_eq!(
            html.matches("<tr data-step=").count(),
            outline.len(),
            "one row per step: {html}"
        );
        for step in outline {
            let (id, state) = (
                step["id"].as_str().unwrap(),
                step["state"].as_str().unwrap(),
            );
            let row_start = html.find(&format!("<tr data-step=\"{id}\"")).unwrap();
            let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
            assert!(
                row.contains(&format!("state-{state}\">{state}<")),
                "step {id} is {state}: {row}"
            );
        }
        assert!(html.contains(&format!(
            "<tr data-step=\"{current}\" aria-current=\"step\">"
        )));
        assert!(
            html.contains("project_name") && html.contains("Atlas &lt;web&gt;"),
            "{html}"
        );
        assert_eq!(change_forms(&html), 0, "{html}");

        let outsider = sign_in(&server, &server.key(other.id, Role::Admin).await).await;
        assert_eq!(outsider.get(&page).await.0, 403);
        let guessed = format!("/console/projects/{}/playbooks/{session}", other.id);
        assert_eq!(outsider.get(&guessed).await.0, 404, "{backend:?}");
        assert_eq!(reader.get(&format!("{list}/not-a-session")).await.0, 404);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_server_page_shows_the_operator_the_embedding_backlog_and_the_tool_figures() {
    let fake = crate::fake_embeddings::FakeEmbeddings::start().await;
    // Every embedding request fails, so what is written stays waiting for a vector.
    *fake.behaviour.fail_status.lock().unwrap() = 400;
    *fake.behaviour.fail_after.lock().unwrap() = Some(0);
    let provider = fake.config("m");
    let server = TestServer::start_with(Backend::Sqlite, move |config| {
        config.embeddings = codifier::config::EmbeddingsConfig::Http(provider)
    })
    .await;
    let project = server.project("waiting").await;
    for title in ["one", "two", "three"] {
        memory(&server, project.id, title).await;
    }
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
    client.cancel().await.unwrap();

    let operator = sign_in(&server, OPERATOR_TOKEN).await;
    let (status, html) = operator.get("/console/server").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<dd id=\"backlog\">3 memories waiting for a vector"),
        "{html}"
    );
    assert!(html.contains("<td>waiting</td>"), "{html}");
    assert!(html.contains("<code>manage_projects</code>"), "{html}");
    assert!(html.contains("Store operations"), "{html}");
    let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
    assert_eq!(reader.get("/console/server").await.0, 403);
    server.stop().await;
}

#[tokio::test]
async fn the_projects_page_counts_what_each_reachable_project_holds() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("atlas").await;
        let other = server.project("other").await;
        for title in ["a", "b"] {
            memory(&server, project.id, title).await;
        }
        memory(&server, other.id, "elsewhere").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        ok(&call(
            &client,
            "plan_tasks",
            json!({"project_id": "atlas", "title": "Ship", "tasks": [{"id": "one", "title": "One"}]}),
        )
        .await);
        ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "atlas"}),
        )
        .await);
        client.cancel().await.unwrap();
        let counts = server.store.project_counts(project.id).await.unwrap();
        assert_eq!(
            (
                counts.memories,
                counts.snapshots,
                counts.plans,
                counts.playbook_sessions
            ),
            (2, 0, 1, 1),
            "{backend:?}"
        );

        let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
        let (status, html) = reader.get("/console").await;
        assert_eq!(status, 200);
        for cell in [
            r#"data-label="Memories">2<"#,
            r#"aria-label="Plans of atlas: 1">1<"#,
            r#"aria-label="Playbook sessions of atlas: 1">1<"#,
            r#"aria-label="Snapshots of atlas: 0">0<"#,
        ] {
            assert!(html.contains(cell), "{backend:?}: `{cell}` missing: {html}");
        }
        assert!(!html.contains("other"), "only the key's project: {html}");
        let operator = sign_in(&server, OPERATOR_TOKEN).await;
        let (_, html) = operator.get("/console").await;
        assert!(
            html.contains(r#"data-label="Memories">1<"#),
            "the other project's count: {html}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_memory_list_pages_on_to_the_next_twenty_and_keeps_the_search_mode() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("many").await;
    for n in 0..25 {
        memory(&server, project.id, &format!("note {n:02}")).await;
    }
    let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
    let list = format!("/console/projects/{}/memories", project.id);
    let (status, html) = reader.get(&format!("{list}?mode=text")).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("<li>\n    <h2>").count(), 20, "{html}");
    let start = html.find("rel=\"next\" href=\"").expect("a next page link") + 17;
    let next = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(next.contains("mode=text"), "{next}");
    let (status, html) = reader.get(&format!("{list}{next}")).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("<li>\n    <h2>").count(), 5, "{html}");
    assert!(html.contains("First page"), "{html}");
    assert_eq!(reader.get(&format!("{list}?mode=fuzzy")).await.0, 400);
    server.stop().await;
}
