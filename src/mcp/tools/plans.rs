//! Plans and tasks — `plan_tasks`, `next_tasks`, `update_task`, `plan_report` — and
//! `project_state`. Each resolves the project (named, active, or the key's own), checks the
//! caller's role on it, and calls the [`crate::plans`] services; `render` is in
//! [`super::plans_render`].

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::plans_render as render;
use super::{input_schema, output_schema};
use crate::auth::Identity;
use crate::domain::Role;
use crate::domain::plan::{Assumption, Confidence, Mcps, Phase, TaskSpec};
use crate::knowledge::{KnowledgeError, projects};
use crate::mcp::CodifierServer;
use crate::plans::report::PlanReport;
use crate::plans::state::{StateChange, StateView};
use crate::plans::tasks::{OutputFile, TaskChange, TaskUpdated};
use crate::plans::{NextTasks, PlanCreated};
use crate::store::TaskStatus;

/// What `project_state` does.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateOperation {
    Get,
    Update,
}

/// Arguments of `project_state`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectStateParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// `get` the state (with the project's decisions) or `update` it.
    pub operation: StateOperation,
    /// discovery, planning, building or review.
    pub phase: Option<Phase>,
    /// The skill the work is in now.
    pub current_skill: Option<String>,
    /// Where the work stands (task completions set `{skill}:{task}:{status}`).
    pub checkpoint: Option<String>,
    /// Whether the project is ready to move on, and what it still lacks.
    pub confidence: Option<Confidence>,
    /// What the work assumes (replaces the whole list).
    pub assumptions: Option<Vec<Assumption>>,
    /// The MCP servers required, available and missing.
    pub mcps: Option<Mcps>,
    /// For `update`: the revision you read with `get` (0 before the first update). A stale
    /// revision is refused and the answer shows the current state.
    #[schemars(range(min = 0))]
    pub revision: Option<i32>,
}

/// Arguments of `plan_tasks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTasksParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// What the plan is for.
    pub title: String,
    /// The tasks: each with a plan-local `id`, a `title`, and optionally `depends_on` (ids of
    /// tasks that must be completed first), `priority` (higher first), `checks` (`guardrails`
    /// or validation ids that must pass before it is done), `skill` and `timeout_seconds`.
    pub tasks: Vec<TaskSpec>,
    /// Send the same key again to get the same plan back without making a second one.
    pub idempotency_key: Option<String>,
}

/// Arguments of `next_tasks` and `plan_report`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// The project's id or name; may be left out after `manage_projects switch` or with a
    /// project's own key.
    pub project_id: Option<String>,
    /// The plan's id (from `plan_tasks`).
    pub plan_id: String,
}

/// Completing despite failed checks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Why the task is done although its checks fail (recorded).
    pub reason: String,
}

/// The statuses `update_task` moves a task to.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NewStatus {
    InProgress,
    Completed,
    Blocked,
    Failed,
}

impl From<NewStatus> for TaskStatus {
    fn from(status: NewStatus) -> Self {
        match status {
            NewStatus::InProgress => TaskStatus::InProgress,
            NewStatus::Completed => TaskStatus::Completed,
            NewStatus::Blocked => TaskStatus::Blocked,
            NewStatus::Failed => TaskStatus::Failed,
        }
    }
}

/// Arguments of `update_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskParams {
    /// The project's id or name; may be left out after `manage_projects switch` or with a
    /// project's own key.
    pub project_id: Option<String>,
    /// The task's server-wide `task_id` (from `plan_tasks` or `next_tasks`).
    pub task_id: String,
    /// in-progress, completed, blocked or failed.
    pub status: NewStatus,
    /// The files the task produced; with `content`, a task's `checks` run on them.
    #[serde(default)]
    pub outputs: Vec<OutputFile>,
    /// What the task waits for (with `blocked`) or what went wrong (with `failed`).
    #[serde(default)]
    pub blockers: Vec<String>,
    /// A note on this change (kept as the attempt's reason when it ends).
    pub note: Option<String>,
    /// Complete although checks fail, with the reason (recorded as a guardrail override).
    #[serde(rename = "override")]
    pub override_: Option<Override>,
    /// Send the same key again to get the first answer back without changing anything twice.
    pub idempotency_key: Option<String>,
}

impl CodifierServer {
    /// The project a plan tool acts on, with the caller's `role` checked.
    async fn plan_project(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        named: Option<&str>,
        role: Role,
    ) -> Result<uuid::Uuid, KnowledgeError> {
        let named = self.project_for(ctx, identity, named).await?;
        Ok(projects::resolve(&self.store, identity, &named, role)
            .await?
            .id)
    }
}

#[tool_router(router = plan_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Read or update the project's state: phase (discovery, planning, building, review),
    /// current skill, checkpoint, confidence {ready, gaps}, assumptions and MCPs. `get` also
    /// lists the project's decisions. An `update` names the `revision` it read; if the state
    /// changed since, nothing changes and the answer shows the current state.
    #[tool(
        name = "project_state",
        input_schema = input_schema::<ProjectStateParams>(),
        output_schema = output_schema::<StateView>(),
        annotations(
            title = "Project state",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn project_state(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ProjectStateParams, identity: Identity| async move {
            let store = self.store.as_ref();
            let named = params.project_id.as_deref();
            match params.operation {
                StateOperation::Get => {
                    let project = self.plan_project(ctx, &identity, named, Role::Read).await?;
                    crate::plans::state::get(store, project).await
                }
                StateOperation::Update => {
                    let project = self
                        .plan_project(ctx, &identity, named, Role::Write)
                        .await?;
                    let change = StateChange {
                        phase: params.phase,
                        current_skill: params.current_skill,
                        checkpoint: params.checkpoint,
                        confidence: params.confidence,
                        assumptions: params.assumptions,
                        mcps: params.mcps,
                    };
                    let read = params.revision;
                    crate::plans::state::update(store, &identity, project, read, change).await
                }
            }
        };
        self.run_tool("project_state", arguments, ctx, action, render::state)
            .await
    }

    /// Create a plan: tasks with dependencies (`depends_on`), priorities, checks and timeouts.
    /// Refused, with nothing stored, when a task id repeats, a dependency names no task, or the
    /// dependencies form a cycle (every cycle is listed). Returns the `plan_id` and each task's
    /// server-wide `task_id`.
    #[tool(
        name = "plan_tasks",
        input_schema = input_schema::<PlanTasksParams>(),
        output_schema = output_schema::<PlanCreated>(),
        annotations(
            title = "Plan tasks",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn plan_tasks(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: PlanTasksParams, identity: Identity| async move {
            let named = params.project_id.as_deref();
            let project = self
                .plan_project(ctx, &identity, named, Role::Write)
                .await?;
            let key = params.idempotency_key;
            crate::plans::create(
                &self.app,
                &identity,
                project,
                &params.title,
                params.tasks,
                key,
            )
            .await
        };
        self.run_tool("plan_tasks", arguments, ctx, action, render::created)
            .await
    }

    /// The tasks of a plan that can start now (pending, every dependency completed), highest
    /// priority first.
    #[tool(
        name = "next_tasks",
        input_schema = input_schema::<PlanParams>(),
        output_schema = output_schema::<NextTasks>(),
        annotations(
            title = "Next tasks",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn next_tasks(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: PlanParams, identity: Identity| async move {
            let named = params.project_id.as_deref();
            let project = self.plan_project(ctx, &identity, named, Role::Read).await?;
            crate::plans::next(&self.app, project, &params.plan_id).await
        };
        self.run_tool("next_tasks", arguments, ctx, action, render::next)
            .await
    }

    /// Move a task on: in-progress, completed, blocked or failed. Starting a task whose
    /// dependencies are not completed answers `blocked` with them named. Completing a task with
    /// `checks` runs them on its `outputs` (with content): if a critical or error check fails it
    /// stays in progress and the answer is a "not done" report (what failed, and the options:
    /// fix, an alternative, or `override` with a reason, which is recorded). The third failed
    /// attempt comes with the `unstick` analysis. Each completion sets the project checkpoint.
    #[tool(
        name = "update_task",
        input_schema = input_schema::<UpdateTaskParams>(),
        output_schema = output_schema::<TaskUpdated>(),
        annotations(
            title = "Update task",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn update_task(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: UpdateTaskParams, identity: Identity| async move {
            let named = params.project_id.as_deref();
            let project = self
                .plan_project(ctx, &identity, named, Role::Write)
                .await?;
            let change = TaskChange {
                task_id: params.task_id,
                status: params.status.into(),
                outputs: params.outputs,
                blockers: params.blockers,
                note: params.note,
                override_reason: params.override_.map(|o| o.reason),
                idempotency_key: params.idempotency_key,
            };
            crate::plans::tasks::update(&self.app, &identity, project, change).await
        };
        self.run_tool("update_task", arguments, ctx, action, render::updated)
            .await
    }

    /// What happened in a plan: tasks by status, success rate, outputs, guardrail blocks and
    /// overrides, attempts, time in progress, and the plan's events (audit entries).
    #[tool(
        name = "plan_report",
        input_schema = input_schema::<PlanParams>(),
        output_schema = output_schema::<PlanReport>(),
        annotations(
            title = "Plan report",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn plan_report(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: PlanParams, identity: Identity| async move {
            let named = params.project_id.as_deref();
            let project = self.plan_project(ctx, &identity, named, Role::Read).await?;
            crate::plans::report::report(&self.app, project, &params.plan_id).await
        };
        self.run_tool("plan_report", arguments, ctx, action, render::report)
            .await
    }
}
