//! `memory_history` and `restore_memory`: every update keeps the previous version, and nothing
//! deleted is lost.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{input_schema, output_schema};
use crate::domain::{Memory, MemoryRevision};
use crate::knowledge::memories;
use crate::mcp::{CodifierServer, render};

/// Arguments of `memory_history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryHistoryParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The memory's UUID.
    pub id: String,
}

/// The structured result of `memory_history`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryHistoryOutput {
    pub current: Memory,
    /// Earlier versions, newest first.
    pub revisions: Vec<MemoryRevision>,
}

/// Arguments of `restore_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreMemoryParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The memory's UUID.
    pub id: String,
    /// Make this earlier version (from `memory_history`) current again; the version it
    /// replaces is kept as a new revision. Leave it out to bring back a deleted memory.
    #[schemars(range(min = 1))]
    pub revision: Option<i64>,
}

/// The structured result of `restore_memory`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RestoreMemoryOutput {
    pub memory: Memory,
}

#[tool_router(router = revision_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Show a memory's earlier versions (every update keeps the one it replaced).
    #[tool(
        name = "memory_history",
        input_schema = input_schema::<MemoryHistoryParams>(),
        output_schema = output_schema::<MemoryHistoryOutput>(),
        annotations(
            title = "Memory history",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn memory_history(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: MemoryHistoryParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let (current, revisions) =
                memories::history(&self.store, &identity, &project, &params.id).await?;
            Ok(MemoryHistoryOutput { current, revisions })
        };
        self.run_tool("memory_history", arguments, ctx, action, render::history)
            .await
    }

    /// Restore an earlier version of a memory (`revision`), or bring back a deleted memory
    /// (no `revision`; list them with fetch_context `deleted: true`).
    #[tool(
        name = "restore_memory",
        input_schema = input_schema::<RestoreMemoryParams>(),
        output_schema = output_schema::<RestoreMemoryOutput>(),
        annotations(
            title = "Restore a memory",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn restore_memory(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: RestoreMemoryParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let (id, revision) = (&params.id, params.revision);
            let memory = memories::restore(
                &self.app.knowledge,
                &identity,
                "restore_memory",
                &project,
                id,
                revision,
            )
            .await?;
            Ok(RestoreMemoryOutput { memory })
        };
        self.run_tool("restore_memory", arguments, ctx, action, render::restored)
            .await
    }
}
