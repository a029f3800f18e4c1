//! `run_playbook`, `advance_step` and `playbook_sessions`: thin adapters over the playbook runner.

use std::sync::Arc;

use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{CallToolResponse, CallToolResult, InputRequiredResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::auth::Identity;
use crate::domain::{Project, Role};
use crate::knowledge::{KnowledgeError, projects};
use crate::mcp::input_required::{self, Call};
use crate::mcp::{CodifierServer, playbook_render, sampling, tool_success};
use crate::playbooks::runner::Caller;
use crate::playbooks::view::{SessionSummary, SessionView};
use crate::playbooks::{Advance, Start};

/// Arguments of `run_playbook`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunPlaybookParams {
    /// The playbook: `initialize-project`, `brownfield-onboard`, `research-and-analyze`, or one
    /// the server adds.
    pub playbook_id: String,
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Resume this session (e.g. after a restart) instead of starting a new one.
    pub session_id: Option<String>,
    /// The answer to the first step, to start and answer in one call (a new session only).
    pub input: Option<Map<String, Value>>,
}

/// Arguments of `advance_step`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceStepParams {
    /// The session, as `run_playbook` returned it.
    pub session_id: String,
    /// The input for the current step: `{<key>: value}` with the key the step names.
    #[serde(default)]
    pub input: Map<String, Value>,
    /// The id of the step this input answers (as `current.id` showed it). Send it: a retry of the
    /// same call then changes nothing, and input meant for another step is refused.
    pub step_id: Option<String>,
    /// Skip the current step (an optional one, or one the server failed to run).
    #[serde(default)]
    pub skip: bool,
    /// Abandon the session.
    #[serde(default)]
    pub abandon: bool,
    /// Answer an earlier step again: send its `step_id` and its new `input`. The steps after it
    /// that read what it changed (e.g. packing, after the repositories) run again; a completed
    /// session reopens when some do.
    #[serde(default)]
    pub revise: bool,
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
}

/// Arguments of `playbook_sessions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSessionsParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// How many sessions to list, 1 to 100 (default 20), most recently changed first.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// The structured result of `playbook_sessions`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlaybookSessionsOutput {
    pub project_id: Uuid,
    pub sessions: Vec<SessionSummary>,
}

fn session_id(text: &str) -> Result<Uuid, KnowledgeError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`session_id` is `{text}`: send the UUID run_playbook returned (list them with playbook_sessions)"
        ))
    })
}

impl CodifierServer {
    /// Resolves the project a playbook call acts on, with the role it needs.
    async fn playbook_project(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        named: Option<&str>,
        role: Role,
    ) -> Result<Project, KnowledgeError> {
        let wanted = self.project_for(ctx, identity, named).await?;
        projects::resolve(&self.store, identity, &wanted, role).await
    }

    /// The project of a session: the one the call names or makes active, else (for the operator,
    /// who reaches every project) the project that holds the session, so `advance_step` needs
    /// only the `session_id`, as in Codifier v2.
    async fn session_project(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        named: Option<&str>,
        session: Uuid,
    ) -> Result<Project, KnowledgeError> {
        let explicit = named.is_some_and(|name| !name.trim().is_empty());
        if explicit
            || identity.bound_project().is_some()
            || self.active_project(ctx).await?.is_some()
        {
            return self
                .playbook_project(ctx, identity, named, Role::Write)
                .await;
        }
        for project in projects::list(&self.store, identity).await? {
            if self
                .store
                .get_playbook_session(project.id, session)
                .await?
                .is_some()
            {
                return projects::resolve(
                    &self.store,
                    identity,
                    &project.id.to_string(),
                    Role::Write,
                )
                .await;
            }
        }
        Err(KnowledgeError::NotFound(format!(
            "no playbook session `{session}` in any project: list them with playbook_sessions"
        )))
    }
}

#[tool_router(router = playbook_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Start a guided playbook in a project (or resume one with `session_id`). Returns the whole
    /// outline and the current step: what to ask the user, or a prompt for your model to generate
    /// from. Answer each step with advance_step; steps the server can do alone run by themselves.
    #[tool(
        name = "run_playbook",
        input_schema = input_schema::<RunPlaybookParams>(),
        output_schema = output_schema::<SessionView>(),
        annotations(
            title = "Run a playbook",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_playbook(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = &ctx;
        let bound = arguments.clone();
        let action = |params: RunPlaybookParams, identity: Identity| async move {
            let call = Call {
                identity: &identity,
                tool: "run_playbook",
                arguments: &bound,
            };
            if let Some(state) = state {
                return self.generated(ctx, &call, &state, responses).await;
            }
            let resumed = params.session_id.as_deref().map(session_id).transpose()?;
            let named = params.project_id.as_deref();
            let project = match resumed {
                Some(id) => self.session_project(ctx, &identity, named, id).await?,
                None => {
                    self.playbook_project(ctx, &identity, named, Role::Write)
                        .await?
                }
            };
            let start = Start {
                playbook_id: params.playbook_id,
                session_id: resumed,
                input: params.input,
            };
            let caller = Caller {
                project: &project,
                identity: &identity,
                tool: "run_playbook",
                sampler: self.sampler(ctx),
            };
            let view = self.app.playbooks.start(caller, start).await?;
            self.answered(ctx, &call, view).await
        };
        self.answer_tool("run_playbook", arguments, ctx, action, Answered::response)
            .await
    }

    /// Answer the current step of a playbook session: `input` is `{<key>: value}` with the key
    /// the step names (a generate step's artifact goes under its `send_back_under` key). The
    /// server then runs every step it can do alone and returns the next one that needs you.
    /// Send `step_id` too: repeating the same call then changes nothing. To change an earlier
    /// answer, send that step's `step_id` with `revise: true`: what depends on it runs again.
    #[tool(
        name = "advance_step",
        input_schema = input_schema::<AdvanceStepParams>(),
        output_schema = output_schema::<SessionView>(),
        annotations(
            title = "Advance a playbook step",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn advance_step(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = &ctx;
        let bound = arguments.clone();
        let action = |params: AdvanceStepParams, identity: Identity| async move {
            let call = Call {
                identity: &identity,
                tool: "advance_step",
                arguments: &bound,
            };
            if let Some(state) = state {
                return self.generated(ctx, &call, &state, responses).await;
            }
            let session_id = session_id(&params.session_id)?;
            let named = params.project_id.as_deref();
            let project = self
                .session_project(ctx, &identity, named, session_id)
                .await?;
            let advance = Advance {
                session_id,
                step_id: params.step_id.map(|id| id.trim().to_owned()),
                input: params.input,
                skip: params.skip,
                abandon: params.abandon,
                revise: params.revise,
            };
            let caller = Caller {
                project: &project,
                identity: &identity,
                tool: "advance_step",
                sampler: self.sampler(ctx),
            };
            let view = self.app.playbooks.advance(caller, advance).await?;
            self.answered(ctx, &call, view).await
        };
        self.answer_tool("advance_step", arguments, ctx, action, Answered::response)
            .await
    }

    /// List a project's playbook sessions (active, completed, abandoned), most recent first, to
    /// resume one with run_playbook and its `session_id`.
    #[tool(
        name = "playbook_sessions",
        input_schema = input_schema::<PlaybookSessionsParams>(),
        output_schema = output_schema::<PlaybookSessionsOutput>(),
        annotations(
            title = "List playbook sessions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn playbook_sessions(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: PlaybookSessionsParams, identity: Identity| async move {
            let limit = params.limit.unwrap_or(20);
            if !(1..=100).contains(&limit) {
                return Err(KnowledgeError::Invalid(format!(
                    "`limit` is {limit}: send a number from 1 to 100"
                )));
            }
            let project = self
                .playbook_project(ctx, &identity, params.project_id.as_deref(), Role::Read)
                .await?;
            let sessions = self.app.playbooks.sessions(&project, limit).await?;
            Ok(PlaybookSessionsOutput {
                project_id: project.id,
                sessions,
            })
        };
        self.run_tool(
            "playbook_sessions",
            arguments,
            ctx,
            action,
            playbook_render::sessions,
        )
        .await
    }
}

/// What `run_playbook` and `advance_step` answer: the session, or (for a client at 2026-07-28
/// that can sample) a request for its model's artifact, the session kept in the store.
struct Answered {
    view: SessionView,
    ask: Option<InputRequiredResult>,
}

impl Answered {
    fn response(self) -> CallToolResponse {
        match self.ask {
            Some(ask) => ask.into(),
            None => tool_success(playbook_render::session(&self.view), &self.view).into(),
        }
    }
}

impl CodifierServer {
    /// The client's model over MCP sampling, when the client said it supports sampling and
    /// sampling is on; never at 2026-07-28, whose clients are asked by input-required results.
    fn sampler(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Option<Arc<dyn crate::playbooks::steps::Sampler>> {
        if input_required::at_2026(ctx) {
            return None;
        }
        sampling::for_peer(&ctx.peer, self.app.playbooks.sampling_timeout)
    }

    /// `view`, or the input-required result for the generate step it stops at when the client
    /// is asked that way.
    async fn answered(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: &Call<'_>,
        view: SessionView,
    ) -> Result<Answered, KnowledgeError> {
        let sampling_on = self.app.playbooks.sampling_timeout.is_some();
        let ask = if input_required::wanted(ctx, sampling_on) {
            self.app.request_states.ask(&view, call).await?
        } else {
            None
        };
        Ok(Answered { view, ask })
    }

    /// The retry of an input-required call: opens its `requestState`, keeps the model's answer
    /// as the waiting step's artifact, and runs on (possibly to the next generate step).
    async fn generated(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: &Call<'_>,
        state: &str,
        responses: Option<rmcp::model::InputResponses>,
    ) -> Result<Answered, KnowledgeError> {
        let pending = self.app.request_states.open(state, call).await?;
        let artifact = input_required::artifact(responses.as_ref())?;
        let project = self
            .playbook_project(
                ctx,
                call.identity,
                Some(&pending.project_id.to_string()),
                Role::Write,
            )
            .await?;
        let advance = Advance {
            session_id: pending.session_id,
            step_id: Some(pending.step_id.clone()),
            input: Map::from_iter([(pending.send_back_under, Value::String(artifact))]),
            skip: false,
            abandon: false,
            revise: false,
        };
        let caller = Caller {
            project: &project,
            identity: call.identity,
            tool: call.tool,
            sampler: None,
        };
        let mut view = self.app.playbooks.advance(caller, advance).await?;
        view.notices.insert(
            0,
            format!(
                "step `{}`: generated by your client's model (an input request)",
                pending.step_id
            ),
        );
        self.answered(ctx, call, view).await
    }
}
