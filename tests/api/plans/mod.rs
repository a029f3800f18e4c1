//! Plans, tasks and project state through a real MCP client, on every backend: the plan's
//! graph refusals and idempotent creation (`creation.rs`), the task flow, the "not done" gate,
//! the third failure's analysis and timeouts (`tasks.rs`), and the project's state and who may
//! touch what (`state.rs`), and row-level security on Postgres (`rls.rs`).

mod creation;
mod rls;
mod state;
mod tasks;

use serde_json::{Value, json};

use crate::clients::{Client, call, ok};

/// Makes a plan through `plan_tasks`; returns its structured answer.
pub async fn plan(client: &Client, project: &str, tasks: Value) -> Value {
    let args = json!({"project_id": project, "title": "ship it", "tasks": tasks});
    ok(&call(client, "plan_tasks", args).await)
}

/// The server-wide id of the task with plan-local id `id` in a `plan_tasks` answer.
pub fn task_id(plan: &Value, id: &str) -> String {
    plan["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {plan}"))["task_id"]
        .as_str()
        .expect("task_id")
        .to_owned()
}

/// Calls `update_task` with `status` and `extra` fields.
pub async fn update(
    client: &Client,
    project: &str,
    task: &str,
    status: &str,
    extra: Value,
) -> rmcp::model::CallToolResult {
    let mut args = json!({"project_id": project, "task_id": task, "status": status});
    if let Value::Object(extra) = extra {
        args.as_object_mut().unwrap().extend(extra);
    }
    call(client, "update_task", args).await
}
