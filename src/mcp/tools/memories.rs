//! `update_memory`, `fetch_context` and `delete_memory`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::knowledge::MemoryType;
use crate::knowledge::memories::{self, FetchInput, Fetched, MemoryInput, NearDuplicate};
use crate::knowledge::search::{Explanation, SearchMode};
use crate::mcp::{CodifierServer, render};
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
    /// An existing memory this one nearly repeats (nothing was merged or deleted).
    pub near_duplicate: Option<NearDuplicate>,
    /// Whether the memory has its embedding already (else it is added in the background).
    pub embedded: bool,
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
    /// What to look for, in words: ranks results by meaning and by words (see `mode`).
    pub query: Option<String>,
    /// How a `query` is matched: `hybrid` (default: meaning and words fused), `semantic`
    /// (meaning only) or `text` (words only).
    pub mode: Option<SearchMode>,
    /// With a `query`: show each result's rank in each half and its fused score.
    #[serde(default)]
    pub explain: bool,
    /// Only memories created at or after this date or time (e.g. 2026-01-31).
    pub since: Option<String>,
    /// Only memories created before this date or time.
    pub until: Option<String>,
    /// List deleted memories instead (admin keys only); restore one with `restore_memory`.
    #[serde(default)]
    pub deleted: bool,
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
    /// How a `query` was matched, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchInfo>,
    /// Each result's ranks and fused score, when `explain` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<Explanation>>,
    /// True when these are deleted memories.
    pub deleted: bool,
}

/// How a search ran.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchInfo {
    /// The mode used: `hybrid` becomes `text` when no embedding model is available.
    pub mode: SearchMode,
    /// Said plainly when part of the search could not run.
    pub notice: Option<String>,
    /// Time spent embedding the query, in milliseconds.
    pub query_embedding_ms: Option<f64>,
}

impl FetchContextOutput {
    fn new(project_id: Uuid, fetched: Fetched, explain: bool) -> Self {
        let mut output = FetchContextOutput {
            project_id,
            count: 0,
            memories: Vec::new(),
            next_cursor: None,
            search: None,
            explain: None,
            deleted: false,
        };
        match fetched {
            Fetched::Page(page) => {
                output.next_cursor = page.next.map(|cursor| cursor.encode());
                output.memories = page.memories;
            }
            Fetched::Search(found) => {
                output.next_cursor = found.next_offset.map(memories::search_cursor);
                output.memories = found.memories;
                output.explain = explain.then_some(found.explanations);
                output.search = Some(SearchInfo {
                    mode: found.mode,
                    notice: found.notice,
                    query_embedding_ms: found.query_embedding_ms,
                });
            }
            Fetched::Deleted(deleted) => {
                output.memories = deleted;
                output.deleted = true;
            }
        }
        output.count = output.memories.len();
        output
    }
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
        let ctx = &ctx;
        let action = |params: UpdateMemoryParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
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
            let id = params.id.as_deref();
            let written = memories::write(
                &self.services,
                &identity,
                "update_memory",
                &project,
                id,
                input,
            )
            .await?;
            Ok(UpdateMemoryOutput {
                outcome: written.outcome,
                memory: written.memory,
                near_duplicate: written.near_duplicate,
                embedded: written.embedded,
            })
        };
        self.run_tool("update_memory", arguments, ctx, action, render::written)
            .await
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
        let ctx = &ctx;
        let action = |params: FetchContextParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let explain = params.explain;
            let input = FetchInput {
                memory_type: params.memory_type.map(|kind| kind.as_str().to_owned()),
                tags: params.tags,
                query: params.query,
                mode: params.mode,
                since: params.since,
                until: params.until,
                limit: params.limit,
                cursor: params.cursor,
                deleted: params.deleted,
            };
            let (project_id, fetched) =
                memories::fetch(&self.services, &identity, &project, input).await?;
            Ok(FetchContextOutput::new(project_id, fetched, explain))
        };
        self.run_tool("fetch_context", arguments, ctx, action, render::fetched)
            .await
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
        let ctx = &ctx;
        let action = |params: DeleteMemoryParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let deleted = memories::delete(
                &self.store,
                &identity,
                "delete_memory",
                &project,
                &params.id,
            )
            .await?;
            Ok(DeleteMemoryOutput { deleted })
        };
        self.run_tool("delete_memory", arguments, ctx, action, render::deleted)
            .await
    }
}
