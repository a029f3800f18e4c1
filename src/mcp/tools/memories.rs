//! `update_memory`, `fetch_context` and `delete_memory`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::knowledge::memories::{self, FetchInput, MemoryInput};
use crate::knowledge::{KnowledgeError, MemoryType};
use crate::mcp::{CodifierServer, knowledge_error, parse_args, render, tool_success};
use crate::store::{Memory, WriteOutcome};

/// Arguments of `update_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemoryParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Update this memory (its UUID) instead of creating a new one.
    pub id: Option<String>,
    /// The kind of knowledge.
    pub memory_type: MemoryType,
    /// A short title (at most 500 characters).
    pub title: String,
    /// The memory itself, as a JSON object (e.g. {"text": "..."}); at most 256 KiB.
    pub content: serde_json::Map<String, Value>,
    /// Tags to find it by.
    #[serde(default)]
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    /// How sure the source is, from 0 to 1 (default 1).
    pub confidence: Option<f64>,
    /// Who or what produced it (e.g. `developer`, `researcher`).
    pub source_role: Option<String>,
}

/// The structured result of `update_memory`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateMemoryOutput {
    /// `created`, `updated`, or `unchanged` (the same content was already stored).
    pub outcome: WriteOutcome,
    pub memory: Memory,
}

/// Arguments of `fetch_context`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchContextParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Only memories of this kind.
    pub memory_type: Option<MemoryType>,
    /// Only memories carrying every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Text that must occur in the title or content (case-insensitive).
    pub query: Option<String>,
    /// How many memories to return, 1 to 100 (default 20), newest first.
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page, to read the next one.
    pub cursor: Option<String>,
}

/// The structured result of `fetch_context`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FetchContextOutput {
    pub project_id: Uuid,
    pub count: usize,
    pub memories: Vec<Memory>,
    /// Send this as `cursor` to read the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Arguments of `delete_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMemoryParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The memory's UUID.
    pub id: String,
}

/// The structured result of `delete_memory`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteMemoryOutput {
    pub deleted: Memory,
}

#[tool_router(router = memory_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Store a memory (a rule, document, API contract, learning or research finding) in a
    /// project, or update one by `id`. The same type, title and content written twice is kept once.
    #[tool(
        name = "update_memory",
        input_schema = input_schema::<UpdateMemoryParams>(),
        output_schema = output_schema::<UpdateMemoryOutput>(),
        annotations(
            title = "Store or update a memory",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn update_memory(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let params: UpdateMemoryParams = match parse_args("update_memory", arguments) {
            Ok(params) => params,
            Err(result) => return Ok(result),
        };
        let identity = match self.identity(&ctx) {
            Ok(identity) => identity,
            Err(result) => return Ok(result),
        };
        let outcome: Result<UpdateMemoryOutput, KnowledgeError> = async {
            let project = self
                .project_for(&ctx, &identity, params.project_id.as_deref())
                .await?;
            let input = MemoryInput {
                memory_type: params.memory_type.as_str().to_owned(),
                title: params.title,
                content: Value::Object(params.content),
                category: params.category,
                description: params.description,
                confidence: params.confidence,
                tags: params.tags,
                source_role: params.source_role,
            };
            let (memory, outcome) = memories::write(
                &self.store,
                &identity,
                "update_memory",
                &project,
                params.id.as_deref(),
                input,
            )
            .await?;
            Ok(UpdateMemoryOutput { outcome, memory })
        }
        .await;
        Ok(match outcome {
            Ok(output) => tool_success(render::written(&output.memory, output.outcome), &output),
            Err(error) => knowledge_error(error),
        })
    }

    /// Read a project's memories, newest first: filter by `memory_type`, `tags` (all must
    /// match) and a text `query` over title and content; page with `cursor`.
    #[tool(
        name = "fetch_context",
        input_schema = input_schema::<FetchContextParams>(),
        output_schema = output_schema::<FetchContextOutput>(),
        annotations(
            title = "Fetch project memories",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn fetch_context(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let params: FetchContextParams = match parse_args("fetch_context", arguments) {
            Ok(params) => params,
            Err(result) => return Ok(result),
        };
        let identity = match self.identity(&ctx) {
            Ok(identity) => identity,
            Err(result) => return Ok(result),
        };
        let outcome: Result<FetchContextOutput, KnowledgeError> = async {
            let project = self
                .project_for(&ctx, &identity, params.project_id.as_deref())
                .await?;
            let input = FetchInput {
                memory_type: params.memory_type.map(|kind| kind.as_str().to_owned()),
                tags: params.tags,
                query: params.query,
                limit: params.limit,
                cursor: params.cursor,
            };
            let (project, page) = memories::fetch(&self.store, &identity, &project, input).await?;
            Ok(FetchContextOutput {
                project_id: project,
                count: page.memories.len(),
                memories: page.memories,
                next_cursor: page.next.map(|cursor| cursor.encode()),
            })
        }
        .await;
        Ok(match outcome {
            Ok(output) => tool_success(render::fetched(&output), &output),
            Err(error) => knowledge_error(error),
        })
    }

    /// Retire a memory: it disappears from every read. The record and its audit trail stay.
    #[tool(
        name = "delete_memory",
        input_schema = input_schema::<DeleteMemoryParams>(),
        output_schema = output_schema::<DeleteMemoryOutput>(),
        annotations(
            title = "Delete a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn delete_memory(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let params: DeleteMemoryParams = match parse_args("delete_memory", arguments) {
            Ok(params) => params,
            Err(result) => return Ok(result),
        };
        let identity = match self.identity(&ctx) {
            Ok(identity) => identity,
            Err(result) => return Ok(result),
        };
        let outcome: Result<Memory, KnowledgeError> = async {
            let project = self
                .project_for(&ctx, &identity, params.project_id.as_deref())
                .await?;
            memories::delete(
                &self.store,
                &identity,
                "delete_memory",
                &project,
                &params.id,
            )
            .await
        }
        .await;
        Ok(match outcome {
            Ok(deleted) => {
                let output = DeleteMemoryOutput { deleted };
                tool_success(render::deleted(&output.deleted), &output)
            }
            Err(error) => knowledge_error(error),
        })
    }
}
