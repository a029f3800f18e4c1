//! The research playbook and `query_data`'s `session_id` against the real Athena sidecar: the
//! data-query steps run on the server, and query results reach the session's collected data.

use std::time::Duration;

use codifier::domain::Role;
use serde_json::{Value, json};

use crate::athena::{AthenaServer, Moto, result_set, sidecar_config, sidecar_python};
use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::Backend;

fn current(view: &Value) -> &str {
    view["current"]["id"].as_str().unwrap_or("<none>")
}

/// Answers the current step of `view` with `value` under the key it asks for.
async fn answer(client: &Client, view: &Value, value: Value) -> Value {
    let key = view["current"]["input"]["key"]
        .as_str()
        .expect("an input key");
    ok(&call(
        client,
        "advance_step",
        json!({"session_id": view["session_id"], "step_id": view["current"]["id"], "input": {key: value}}),
    )
    .await)
}

/// A local moto and a server whose sidecar reaches it; `None` when the sidecar is not installed.
async fn warehouse() -> Option<(Moto, AthenaServer)> {
    let python = sidecar_python()?;
    let moto = Moto::start(&python).await;
    let server = AthenaServer::start(
        Backend::Sqlite,
        Some(sidecar_config(&python, &moto, Duration::from_secs(60))),
    )
    .await;
    Some((moto, server))
}

#[tokio::test]
async fn research_and_analyze_runs_to_completion_with_its_data_steps_on_the_real_sidecar() {
    let Some((moto, server)) = warehouse().await else {
        return;
    };
    let (_, key) = server.project_key("insights", Role::Write).await;
    let client = clients::streamable(&server.url, &key).await;
    // SHOW TABLES (the sidecar drops its first row), DESCRIBE orders, then the planned query.
    moto.seed(json!([
        result_set(
            &["tab_name"],
            &[&["dropped_by_sidecar"], &["orders"], &["users"]]
        ),
        result_set(
            &["col_name", "data_type", "comment"],
            &[
                &["dropped_by_sidecar", "string", ""],
                &["month", "string", ""],
                &["churned", "bigint", ""]
            ],
        ),
        result_set(
            &["month", "churned"],
            &[&["month", "churned"], &["2026-03", "412"]]
        ),
    ]))
    .await;

    let view = ok(&call(
        &client,
        "run_playbook",
        json!({"playbook_id": "research-and-analyze", "project_id": "insights",
               "input": {"objective": "Why did churn rise in March?"}}),
    )
    .await);
    assert_eq!(current(&view), "context");
    // Answering the context runs discover-schema on the server, with no round trip.
    let view = answer(&client, &view, json!("")).await;
    assert_eq!(current(&view), "choose-tables", "{view}");
    assert!(
        view["collected_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("tables"))
    );
    assert!(
        view["current"]["prompt"]
            .as_str()
            .unwrap()
            .contains("orders"),
        "the listed tables reach the next prompt"
    );

    let view = answer(&client, &view, json!(["orders"])).await;
    assert_eq!(current(&view), "generate-queries", "{view}");
    let prompt = view["current"]["generate"]["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("churned"),
        "the described columns reach the query generator"
    );

    let plan = "queries:\n  - id: q1\n    purpose: churn by month\n    sql: SELECT month, churned FROM orders\n    expected_columns: [month, churned]\n    notes: ''\n";
    let view = answer(&client, &view, json!(plan)).await;
    assert_eq!(current(&view), "synthesize", "{view}");
    let prompt = view["current"]["generate"]["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("412"),
        "the query's rows reach the synthesis: {prompt}"
    );
    let view = answer(
        &client,
        &view,
        json!("# Findings\nChurn rose in March: 412."),
    )
    .await;
    assert_eq!(view["status"], "completed", "{view}");
    let stored = ok(&call(
        &client,
        "fetch_context",
        json!({"project_id": "insights", "memory_type": "research_finding"}),
    )
    .await);
    assert_eq!(stored["memories"].as_array().unwrap().len(), 1, "{stored}");
    server.stop().await;
}

#[tokio::test]
async fn query_data_keeps_a_result_in_a_session_only_for_a_write_key() {
    let Some((moto, server)) = warehouse().await else {
        return;
    };
    let (_, writer) = server.project_key("insights", Role::Write).await;
    let (_, reader) = server.project_key("insights", Role::Read).await;
    let client = clients::streamable(&server.url, &writer).await;
    let view = ok(&call(
        &client,
        "run_playbook",
        json!({"playbook_id": "research-and-analyze", "project_id": "insights",
               "input": {"objective": "Churn"}}),
    )
    .await);
    let session = view["session_id"].clone();

    let reading = clients::streamable(&server.url, &reader).await;
    let message = refused(
        &call(
            &reading,
            "query_data",
            json!({"operation": "list-tables", "project_id": "insights", "session_id": session}),
        )
        .await,
    );
    assert!(message.contains("Not allowed"), "{message}");

    moto.seed(json!([result_set(&["tab_name"], &[&["x"], &["orders"]])]))
        .await;
    let kept = ok(&call(
        &client,
        "query_data",
        json!({"operation": "list-tables", "project_id": "insights", "session_id": session}),
    )
    .await);
    assert_eq!(kept["recorded"]["key"], "query_list_tables");
    let resumed = ok(&call(
        &client,
        "run_playbook",
        json!({"playbook_id": "research-and-analyze", "project_id": "insights", "session_id": session}),
    )
    .await);
    assert!(
        resumed["collected_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("query_list_tables")),
        "{resumed}"
    );
    let unknown = refused(&call(
        &client,
        "query_data",
        json!({"operation": "list-tables", "project_id": "insights", "session_id": uuid::Uuid::new_v4()}),
    )
    .await);
    assert!(unknown.contains("Not found"), "{unknown}");
    server.stop().await;
}
