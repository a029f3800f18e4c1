//! `update_memory`, `fetch_context` and `delete_memory`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::domain::{Memory, MemoryType, WriteOutcome};
use crate::knowledge::memories::{self, FetchInput, Fetched, MemoryChange, NearDuplicate};
use crate::knowledge::search::{Explanation, SearchMode};
use crate::mcp::{CodifierServer, render};

/// Arguments of `update_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemoryParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Change this memory (its UUID) instead of creating a new one: only the fields you send
    /// change, the others are kept (send `null` to clear one).
    pub id: Option<String>,
    /// The kind of knowledge (needed for a new memory).
    pub memory_type: Option<MemoryType>,
    /// A short title, at most 500 characters (needed for a new memory).
    #[schemars(length(min = 1, max = 500))]
    pub title: Option<String>,
    /// The memory itself (needed for a new memory): its text as a string (stored as
    /// {"text": "..."}), or a JSON object; not empty; at most 256 KiB.
    pub content: Option<MemoryContent>,
    /// Tags to find it by (at most 50); with `id` they replace the memory's tags, `null` or []
    /// removes them.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<Vec<String>>", length(max = 50))]
    pub tags: Option<Option<Vec<String>>>,
    /// A grouping of your own (e.g. `deploy`); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub category: Option<Option<String>>,
    /// A sentence saying what the memory is for; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub description: Option<Option<String>>,
    /// How sure the source is, from 0 to 1 (1 for a new memory when left out; `null` resets it to 1).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<f64>", range(min = 0.0, max = 1.0))]
    pub confidence: Option<Option<f64>>,
    /// Who or what produced it (e.g. `developer`, `researcher`); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub source_role: Option<Option<String>>,
}

/// Reads a field that was sent, `null` included: `Some(None)` is an explicit `null`, while a
/// field left out stays `None` (`#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A memory's content as sent: text (kept as `{"text": …}`) or a JSON object.
#[derive(Debug)]
pub struct MemoryContent(Value);

impl<'de> Deserialize<'de> for MemoryContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self(serde_json::json!({ "text": text }))),
            object @ Value::Object(_) => Ok(Self(object)),
            _ => Err(serde::de::Error::custom(
                "`content` must be a string (the memory's text) or a JSON object such as {\"text\": \"...\"}",
            )),
        }
    }
}

impl JsonSchema for MemoryContent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MemoryContent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                {"type": "string", "minLength": 1, "description": "The memory's text."},
                {"type": "object", "minProperties": 1, "description": "Structured content, e.g. {\"text\": \"...\"}."}
            ]
        })
    }
}

/// The structured result of `update_memory`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateMemoryOutput {
    /// `created`, `updated`, or `unchanged` (the same content was already stored).
    pub outcome: WriteOutcome,
    /// The fields an update changed, e.g. ["title", "content"] (empty when created or unchanged).
    pub changed: Vec<String>,
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
    /// List deleted memories instead (keys that may write); bring one back with
    /// `restore_memory` and its `id`.
    #[serde(default)]
    pub deleted: bool,
    /// How many memories to return, 1 to 100 (default 20), newest first.
    #[schemars(range(min = 1, max = 100))]
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
    /// The call that brings it back: `restore_memory` with these arguments.
    pub undo: UndoCall,
}

/// A tool call that undoes what was just done.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UndoCall {
    pub tool: String,
    pub arguments: RestoreArguments,
}

/// The arguments of the `restore_memory` call that undoes a delete.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RestoreArguments {
    pub project_id: Uuid,
    pub id: Uuid,
}

#[tool_router(router = memory_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Store a memory (a rule, document, API contract, learning or research finding) in a
    /// project, or change one by `id`: only the fields sent change (`null` clears one), the
    /// previous version is kept (memory_history). `content` may be plain text. The same type,
    /// title and content written twice is kept once.
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
            let change = MemoryChange {
                memory_type: params.memory_type.map(|kind| kind.as_str().to_owned()),
                title: params.title,
                content: params.content.map(|content| content.0),
                category: params.category,
                description: params.description,
                confidence: params.confidence,
                tags: params.tags.map(Option::unwrap_or_default),
                source_role: params.source_role,
            };
            let id = params.id.as_deref();
            let written = memories::write(
                &self.app.knowledge,
                &identity,
                "update_memory",
                &project,
                id,
                change,
            )
            .await?;
            Ok(UpdateMemoryOutput {
                outcome: written.outcome,
                changed: written.changed,
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
                memories::fetch(&self.app.knowledge, &identity, &project, input).await?;
            Ok(FetchContextOutput::new(project_id, fetched, explain))
        };
        self.run_tool("fetch_context", arguments, ctx, action, render::fetched)
            .await
    }

    /// Retire a memory: it disappears from every read. The record and its audit trail stay, and
    /// `restore_memory` with its `id` brings it back.
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
            let undo = UndoCall {
                tool: "restore_memory".into(),
                arguments: RestoreArguments {
                    project_id: deleted.project_id,
                    id: deleted.id,
                },
            };
            Ok(DeleteMemoryOutput { deleted, undo })
        };
        self.run_tool("delete_memory", arguments, ctx, action, render::deleted)
            .await
    }
}
