//! `manage_projects`: create, list, switch and get projects.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::auth::Role;
use crate::knowledge::projects;
use crate::mcp::{CodifierServer, knowledge_error, parse_args, render, tool_error, tool_success};
use crate::store::Project;

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
        let params: ManageProjectsParams = match parse_args("manage_projects", arguments) {
            Ok(params) => params,
            Err(result) => return Ok(result),
        };
        let identity = match self.identity(&ctx) {
            Ok(identity) => identity,
            Err(result) => return Ok(result),
        };
        let outcome = async {
            let operation = params.operation;
            let mut output = ManageProjectsOutput {
                operation,
                project: None,
                projects: None,
                active_project_id: None,
            };
            match operation {
                ProjectOperation::Create => {
                    let Some(name) = params.name.as_deref() else {
                        return Ok(Err(tool_error(
                            "Invalid input: `name` is needed to create a project: send `name`",
                        )));
                    };
                    let project = projects::create(
                        &self.store,
                        &identity,
                        "manage_projects",
                        name,
                        params.org.as_deref(),
                    )
                    .await?;
                    output.project = Some(project);
                }
                ProjectOperation::List => {
                    output.projects = Some(projects::list(&self.store, &identity).await?);
                }
                ProjectOperation::Switch => {
                    let Some(wanted) = params.project_id.as_deref() else {
                        return Ok(Err(tool_error(
                            "Invalid input: `project_id` is needed to switch: send the project's id or name",
                        )));
                    };
                    let project =
                        projects::resolve(&self.store, &identity, wanted, Role::Read).await?;
                    self.set_active_project(&ctx, project.id).await?;
                    output.project = Some(project);
                }
                ProjectOperation::Get => {
                    let wanted =
                        self.project_for(&ctx, &identity, params.project_id.as_deref()).await?;
                    output.project =
                        Some(projects::resolve(&self.store, &identity, &wanted, Role::Read).await?);
                }
            }
            output.active_project_id = self.active_project(&ctx).await?;
            Ok(Ok(output))
        }
        .await;
        Ok(match outcome {
            Ok(Ok(output)) => tool_success(render::projects(&output), &output),
            Ok(Err(result)) => result,
            Err(error) => knowledge_error(error),
        })
    }
}
