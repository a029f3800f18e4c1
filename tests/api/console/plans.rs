//! The Plans pages: a project's plans listed, a plan's task graph drawn as SVG with one box per
//! task and one arrow per dependency, its report, no change controls, and a key of another
//! project never seeing the plan.

use codifier::domain::Role;
use serde_json::json;

use super::sign_in;
use crate::clients::{self, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};
use crate::plans::{plan, task_id, update};

#[tokio::test]
async fn a_plan_is_listed_and_its_page_draws_one_box_per_task_with_its_report() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("atlas").await;
        let other = server.project("other").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(
            &client,
            "atlas",
            json!([
                {"id": "schema", "title": "Design the <schema>"},
                {"id": "api", "title": "Write the API", "depends_on": ["schema"]},
                {"id": "ui", "title": "Draw the UI", "depends_on": ["schema"]},
                {"id": "ship", "title": "Ship", "depends_on": ["api", "ui"]}
            ]),
        )
        .await;
        let schema = task_id(&made, "schema");
        ok(&update(&client, "atlas", &schema, "in-progress", json!({})).await);
        ok(&update(&client, "atlas", &schema, "completed", json!({})).await);
        client.cancel().await.unwrap();
        let plan_id = made["plan_id"].as_str().unwrap().to_owned();

        let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
        let list = format!("/console/projects/{}/plans", project.id);
        let (status, html) = reader.get(&list).await;
        assert_eq!(status, 200, "{backend:?}");
        assert!(
            html.contains(&plan_id) && html.contains("ship it"),
            "{html}"
        );
        assert!(html.contains(r#"data-label="Completed">1<"#), "{html}");

        let page = format!("{list}/{plan_id}");
        let (status, html) = reader.get(&page).await;
        assert_eq!(status, 200, "{backend:?}");
        assert!(html.contains("<svg"), "{html}");
        assert_eq!(html.matches("<g class=\"task ").count(), 4, "{html}");
        assert_eq!(html.matches("<line class=\"edge\"").count(), 4, "{html}");
        assert!(html.contains(r#"<g class="task status-completed" data-task="schema">"#));
        assert!(
            html.contains("Design the &lt;schema&gt;"),
            "titles are escaped"
        );
        assert!(html.contains("100 % of the tasks that ended"), "{html}");
        assert!(html.contains("task.update"), "the plan's events: {html}");
        assert_eq!(
            html.matches("method=\"post\"").count(),
            1,
            "a read key sees no change control, only Sign out"
        );

        let outsider = sign_in(&server, &server.key(other.id, Role::Admin).await).await;
        assert_eq!(outsider.get(&page).await.0, 403, "{backend:?}");
        assert_eq!(outsider.get(&list).await.0, 403, "{backend:?}");
        let guessed = format!("/console/projects/{}/plans/{plan_id}", other.id);
        assert_eq!(outsider.get(&guessed).await.0, 404, "{backend:?}");
        let (_, theirs) = outsider
            .get(&format!("/console/projects/{}/plans", other.id))
            .await;
        assert!(!theirs.contains(&plan_id), "{theirs}");
        let (status, _) = reader.get(&format!("{list}/not-a-plan")).await;
        assert_eq!(status, 400, "{backend:?}");
    }
}
