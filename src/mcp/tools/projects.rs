//! `manage_projects`: create, list, switch and get projects.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::domain::{Project, Role};
use crate::knowledge::KnowledgeError;
use crate::knowledge::projects;
use crate::mcp::{CodifierServer, render};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProjectOperation {
    /// Create a project (operator token only); needs `name`.
    Create,
    /// List the projects this key can see.
    List,
    /// Make a project the active one for this session, so later calls may leave `project_id` out.
    Switch,
    /// Show one project (`project_id`, or the active project).
    Get,
}

/// Arguments of `manage_projects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManageProjectsParams {
    /// What to do: `create`, `list`, `switch` or `get`.
    pub operation: ProjectOperation,
    /// The new project's name (needed for `create`); unique on this server.
    pub name: Option<String>,
    /// The organisation the project belongs to (optional, for `create`).
    pub org: Option<String>,
    /// The project's id or name (needed for `switch`; optional for `get`).
    pub project_id: Option<String>,
}

/// The structured result of `manage_projects`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ManageProjectsOutput {
    pub operation: ProjectOperation,
    /// The project created, switched to or shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<Project>,
    /// The projects listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<Project>>,
    /// The active project of this session after the call, if any.
    pub active_project_id: Option<Uuid>,
}

#[tool_router(router = project_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Create, list, switch to, or show projects. A project holds memories, repository
    /// snapshots and playbook sessions; `switch` makes one active for later calls.
    #[tool(
        name = "manage_projects",
        input_schema = input_schema::<ManageProjectsParams>(),
        output_schema = output_schema::<ManageProjectsOutput>(),
        annotations(
            title = "Manage projects",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn manage_projects(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ManageProjectsParams, identity| async move {
            let (store, operation) = (&self.store, params.operation);
            let needed = |field: &str, what: &str| {
                KnowledgeError::Invalid(format!("`{field}` is needed to {what}: send `{field}`"))
            };
            let mut output = ManageProjectsOutput {
                operation,
                project: None,
                projects: None,
                active_project_id: None,
            };
            match operation {
                ProjectOperation::Create => {
                    let name = params
                        .name
                        .as_deref()
                        .ok_or_else(|| needed("name", "create a project"))?;
                    let org = params.org.as_deref();
                    output.project = Some(
                        projects::create(store, &identity, "manage_projects", name, org).await?,
                    );
                }
                ProjectOperation::List => {
                    output.projects = Some(projects::list(store, &identity).await?);
                }
                ProjectOperation::Switch => {
                    let wanted = params
                        .project_id
                        .as_deref()
                        .ok_or_else(|| needed("project_id", "switch"))?;
                    let project = projects::resolve(store, &identity, wanted, Role::Read).await?;
                    self.set_active_project(ctx, project.id).await?;
                    output.project = Some(project);
                }
                ProjectOperation::Get => {
                    let wanted = self
                        .project_for(ctx, &identity, params.project_id.as_deref())
                        .await?;
                    output.project =
                        Some(projects::resolve(store, &identity, &wanted, Role::Read).await?);
                }
            }
            output.active_project_id = self.active_project(ctx).await?;
            Ok(output)
        };
        self.run_tool("manage_projects", arguments, ctx, action, render::projects)
            .await
    }
}
