//! Postgres only: row-level security confines the plan and state tables to their project, for
//! reads and writes, whatever the statement asks for.

use codifier::domain::plan::TaskSpec;
use codifier::store::{Actor, PlanDraft, PlanStore, ProjectStateStore, ProjectStore, StateFields};

use crate::helpers::fresh_postgres;

const TABLES: [&str; 4] = [
    "plans",
    "plan_tasks",
    "project_state",
    "project_state_revisions",
];

fn draft(title: &str) -> PlanDraft {
    let task = TaskSpec {
        id: "t".into(),
        title: "T".into(),
        description: None,
        skill: None,
        depends_on: Vec::new(),
        priority: 0,
        checks: None,
        timeout_seconds: None,
    };
    PlanDraft {
        title: title.into(),
        tasks: vec![task],
        idempotency_key: None,
        request_digest: title.into(),
    }
}

#[tokio::test]
async fn row_level_security_hides_another_projects_plans_tasks_and_state() {
    let Some((pg, _db)) = fresh_postgres().await else {
        return;
    };
    let actor = Actor {
        label: "test".into(),
        tool: "test".into(),
    };
    let mut projects = Vec::new();
    for name in ["a", "b"] {
        let project = pg
            .create_project(&actor, name, None)
            .await
            .expect("project");
        pg.create_plan(project.id, &actor, &draft(name))
            .await
            .expect("plan");
        let fields = StateFields {
            checkpoint: Some(name.into()),
            ..StateFields::default()
        };
        pg.update_project_state(project.id, &actor, 0, &fields)
            .await
            .expect("state");
        projects.push(project.id);
    }
    let (a, b) = (projects[0], projects[1]);
    let mut tx = pg.scoped(a).await.expect("scope A");
    for table in TABLES {
        let sql = format!("SELECT count(*) FROM {table} WHERE project_id <> $1");
        let others: i64 = sqlx::query_scalar(&sql)
            .bind(a)
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(others, 0, "{table}: B's rows are invisible in A");
        let sql = format!("SELECT count(*) FROM {table}");
        let own: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(own, 1, "{table}: A sees its own row");
    }
    let hijack = sqlx::query("UPDATE project_state SET revision = 99 WHERE project_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(hijack.rows_affected(), 0, "A cannot change B's state");
    let forged = "INSERT INTO task_replies (project_id, idempotency_key, request_digest, reply, created_at) \
                  VALUES ($1, 'k', 'd', '{}', now())";
    let forged = sqlx::query(forged).bind(b).execute(&mut *tx).await;
    assert!(forged.is_err(), "A cannot write B's replies");
}
