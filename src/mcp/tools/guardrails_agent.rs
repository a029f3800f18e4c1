//! The agent's working-session tools: `load_context`, `remember`, `watch_out` and `unstick`.
//! Each resolves the project (named, active, or the key's own; `watch_out` and `unstick` work on
//! the library alone when there is none), calls its service in [`crate::guardrails`], records
//! its telemetry event, and renders the result.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::auth::Identity;
use crate::domain::guardrail::{IssueStatus, SharpEdge};
use crate::domain::{GuardrailEventKind, NewGuardrailEvent, Role};
use crate::guardrails::context::{self, ContextRequest, LoadedContext};
use crate::guardrails::remember::{self, DecisionInput, IssueInput, RememberRequest, Remembered};
use crate::guardrails::telemetry;

use crate::guardrails::unstick::{self, UnstickRequest, Unstuck};
use crate::guardrails::watch_out::{self, WatchOut, WatchOutRequest};
use crate::knowledge::{KnowledgeError, projects};
use crate::mcp::{CodifierServer, guardrails_render as render};

/// Arguments of `load_context`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadContextParams {
    /// The project's id or name; may be left out after `manage_projects switch`, with a key
    /// bound to one project, or with `project_description`.
    pub project_id: Option<String>,
    /// What the project is or what this session is about: ranks skills and sharp edges, and
    /// finds the project when none is named.
    pub project_description: Option<String>,
    /// The stack's names, e.g. ["rust", "axum", "postgres"]: with a write key they become the
    /// project's stack; with a read key they count for this call only.
    #[serde(default)]
    pub stack_hints: Vec<String>,
}

/// A decision to record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionParam {
    /// What was decided (at most 500 characters).
    pub what: String,
    /// Why.
    pub why: String,
}

/// An issue to open, resolve or reopen.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueParam {
    /// A new issue: what is wrong. Resolving: how it was resolved (and, without `id`, the words
    /// that find the open issue it resolves).
    pub description: String,
    /// `open` (a new issue, or reopen one by `id`) or `resolved`.
    pub status: IssueStatus,
    /// The issue's id (load_context lists open issues with theirs); without it, `resolved`
    /// resolves the open issue that best matches `description`.
    pub id: Option<String>,
}

/// Arguments of `remember`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RememberParams {
    /// The project's id or name; may be left out after `manage_projects switch` or with a key
    /// bound to one project.
    pub project_id: Option<String>,
    /// A decision to record: what was decided and why.
    pub decision: Option<DecisionParam>,
    /// An issue to open, or to resolve (by `id`, or the open issue that matches best).
    pub issue: Option<IssueParam>,
    /// A gotcha this session ran into, for this project only: `watch_out`, `load_context` and
    /// `unstick` show it next to the library's (`id` and `summary` required; a
    /// `detection_pattern` must compile; severity critical, error, warning or info, or high,
    /// medium, low).
    #[schemars(with = "Option<SharpEdge>")]
    pub sharp_edge: Option<serde_json::Value>,
    /// What this session did, for the next one.
    pub session_summary: Option<String>,
    /// The checks this session passed (e.g. "validate_code on src/auth.rs"); goes with
    /// `session_summary`.
    #[serde(default)]
    pub validated: Vec<String>,
}

/// Arguments of `watch_out`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchOutParams {
    /// The project's id or name (its own sharp edges join the library's); may be left out
    /// after `manage_projects switch` or with a key bound to one project.
    pub project_id: Option<String>,
    /// The stack you work in: one name or several separated by commas (e.g. `nextjs, supabase`).
    pub stack: String,
    /// What you are about to do, in words: ranks the edges by meaning and words.
    pub situation: Option<String>,
    /// The code you are changing: edges whose detection pattern matches it come first.
    pub code_context: Option<String>,
}

/// Arguments of `unstick`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnstickParams {
    /// The project's id or name (its sharp edges and learnings join the library's); may be
    /// left out after `manage_projects switch` or with a key bound to one project.
    pub project_id: Option<String>,
    /// What you are trying to get done.
    pub task_description: String,
    /// What you tried, one item per attempt, oldest first.
    pub attempts: Vec<String>,
    /// The errors or symptoms you got, one item each.
    pub errors: Vec<String>,
    /// The code as it is now.
    pub current_code: Option<String>,
}

impl CodifierServer {
    /// The project a guardrail read acts on when there is one (named, active, or the key's
    /// own), resolved with the read role; `None` when the caller named none and has none.
    async fn reading_project(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        named: Option<&str>,
    ) -> Result<Option<Uuid>, KnowledgeError> {
        let named = named.map(str::trim).filter(|n| !n.is_empty());
        if named.is_none()
            && identity.bound_project().is_none()
            && self.active_project(ctx).await?.is_none()
        {
            return Ok(None);
        }
        let project = self.project_for(ctx, identity, named).await?;
        let project = projects::resolve(&self.store, identity, &project, Role::Read).await?;
        Ok(Some(project.id))
    }

    /// Records telemetry events; a failure is logged and never fails the call.
    async fn record_events(&self, project: Uuid, events: Vec<NewGuardrailEvent>) {
        if events.is_empty() {
            return;
        }
        if let Err(error) = telemetry::record(self.store.as_ref(), project, &events).await {
            tracing::warn!(%error, "recording guardrail telemetry failed");
        }
    }
}

#[tool_router(router = guardrail_agent_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Start a working session: the project (with its stack), the last session's summary, open
    /// issues, recent decisions, the library skills that fit, and the ten sharp edges that
    /// matter most for the stack, with what to call next. Send `stack_hints` (write key) to set
    /// the project's stack; with only `project_description` it finds the project it describes.
    #[tool(
        name = "load_context",
        input_schema = input_schema::<LoadContextParams>(),
        output_schema = output_schema::<LoadedContext>(),
        annotations(
            title = "Load a session's context",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn load_context(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: LoadContextParams, identity: Identity| async move {
            let named = params
                .project_id
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty());
            let project = match self.project_for(ctx, &identity, named).await {
                Ok(project) => Some(project),
                Err(_) if named.is_none() && params.project_description.is_some() => None,
                Err(error) => return Err(error),
            };
            let request = ContextRequest {
                project,
                project_description: params.project_description,
                stack_hints: params.stack_hints,
            };
            let app = &self.app;
            let loaded =
                context::load_context(&app.knowledge, &app.library, &identity, request).await?;
            if let Some(project) = &loaded.project {
                let detail = json!({ "stack": loaded.stack, "found_by": project.found_by });
                let event = telemetry::event(
                    GuardrailEventKind::SessionStart,
                    "load_context",
                    &identity,
                    &project.name,
                    None,
                    detail,
                );
                self.record_events(project.id, vec![event]).await;
            }
            Ok(loaded)
        };
        self.run_tool("load_context", arguments, ctx, action, render::context)
            .await
    }

    /// Save what this session leaves for the next, all in one transaction: a `decision`
    /// (what, why), an `issue` (open a new one, or resolve one by `id` or by the open issue
    /// that best matches the description), a `sharp_edge` it ran into, a `session_summary`
    /// and the checks it passed.
    /// Needs a write key.
    #[tool(
        name = "remember",
        input_schema = input_schema::<RememberParams>(),
        output_schema = output_schema::<Remembered>(),
        annotations(
            title = "Remember decisions, issues and the session",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn remember(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: RememberParams, identity: Identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let ends_session = params.session_summary.is_some();
            let request = RememberRequest {
                decision: params.decision.map(|d| DecisionInput {
                    what: d.what,
                    why: d.why,
                }),
                issue: params.issue.map(|i| IssueInput {
                    description: i.description,
                    status: i.status,
                    id: i.id,
                }),
                sharp_edge: params.sharp_edge,
                session_summary: params.session_summary,
                validated: params.validated,
            };
            let saved =
                remember::remember(&self.app.knowledge, &identity, &project, request).await?;
            if ends_session {
                let ids: Vec<Uuid> = saved.saved.iter().map(|s| s.id).collect();
                let event = telemetry::event(
                    GuardrailEventKind::SessionEnd,
                    "remember",
                    &identity,
                    "session_summary",
                    None,
                    json!({ "saved": ids }),
                );
                self.record_events(saved.project_id, vec![event]).await;
            }
            Ok(saved)
        };
        self.run_tool("remember", arguments, ctx, action, render::remembered)
            .await
    }

    /// The sharp edges (gotchas) to mind before changing code in a stack: at most five, from
    /// the project's own and the shared library, ranked by meaning and words against
    /// `situation`; those whose detection pattern matches `code_context` come first.
    #[tool(
        name = "watch_out",
        input_schema = input_schema::<WatchOutParams>(),
        output_schema = output_schema::<WatchOut>(),
        annotations(
            title = "Watch out for sharp edges",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn watch_out(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: WatchOutParams, identity: Identity| async move {
            let project = self
                .reading_project(ctx, &identity, params.project_id.as_deref())
                .await?;
            let request = WatchOutRequest {
                stack: params.stack,
                situation: params.situation,
                code_context: params.code_context,
            };
            let app = &self.app;
            let found =
                watch_out::watch_out(&app.knowledge, &app.library, project, request).await?;
            if let Some(project) = project {
                let events = found
                    .edges
                    .iter()
                    .map(|view| {
                        let edge = &view.edge;
                        let subject = match &edge.skill {
                            Some(skill) => format!("{skill}/{}", edge.id),
                            None => edge.id.clone(),
                        };
                        let detail = json!({
                            "memory_id": view.memory_id,
                            "matches_current_code": view.matches_current_code,
                            "stack": found.stack,
                        });
                        telemetry::event(
                            GuardrailEventKind::SharpEdgeSurfaced,
                            "watch_out",
                            &identity,
                            &subject,
                            edge.severity,
                            detail,
                        )
                    })
                    .collect();
                self.record_events(project, events).await;
            }
            Ok(found)
        };
        self.run_tool("watch_out", arguments, ctx, action, render::watch_out)
            .await
    }

    /// For when attempts keep failing: how alike your attempts are (circular above 0.7), the
    /// known sharp edges and learnings your errors match, a diagnosis, alternatives from the
    /// matching skills, and whether to start again (three or more circular attempts).
    #[tool(
        name = "unstick",
        input_schema = input_schema::<UnstickParams>(),
        output_schema = output_schema::<Unstuck>(),
        annotations(
            title = "Get unstuck",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn unstick(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: UnstickParams, identity: Identity| async move {
            let project = self
                .reading_project(ctx, &identity, params.project_id.as_deref())
                .await?;
            let request = UnstickRequest {
                task_description: params.task_description,
                attempts: params.attempts,
                errors: params.errors,
                current_code: params.current_code,
            };
            let app = &self.app;
            let unstuck = unstick::unstick(&app.knowledge, &app.library, project, request).await?;
            if let Some(project) = project
                && unstuck.attempts_analyzed.circular
            {
                let pattern = unstuck
                    .known_patterns
                    .first()
                    .map_or_else(|| "circular".to_owned(), |known| known.title.clone());
                let detail = json!({
                    "attempts": unstuck.attempts_analyzed.count,
                    "similarity": unstuck.attempts_analyzed.similarity,
                    "method": unstuck.attempts_analyzed.method,
                    "should_reset": unstuck.should_reset,
                });
                let event = telemetry::event(
                    GuardrailEventKind::EscapeHatchTrigger,
                    "unstick",
                    &identity,
                    &pattern,
                    None,
                    detail,
                );
                self.record_events(project, vec![event]).await;
            }
            Ok(unstuck)
        };
        self.run_tool("unstick", arguments, ctx, action, render::unstuck)
            .await
    }
}
