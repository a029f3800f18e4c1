//! The one MCP handler, [`CodifierServer`], served over Streamable HTTP, legacy SSE and stdio.
//! Tools are thin adapters (parse arguments, call a knowledge service, render the result); they
//! never know which transport carried the call. The caller's [`Identity`] comes from the HTTP
//! request parts the transport attaches to each request, or is the local user over stdio.
//! Here: the handler, the caller and its active project, and the one `ServerHandler` impl (rmcp's
//! `tool_handler` macro wants one); each call's arguments, log line and metrics are in
//! `tool_call`, the tools in `tools`, resources, prompts, listening and subscribing in their own
//! modules.

pub mod event_resource;
mod guardrails_render;
mod input_required;
pub mod listen;
mod metadata;
mod playbook_render;
mod prompts;
mod render;
mod resources;
mod results;
mod sampling;
mod session_prompt;
mod subscribe;
mod tool_call;
mod tools;

use std::sync::{Arc, Mutex};

use rmcp::model::{CallToolResult, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool_handler};
use uuid::Uuid;

use crate::app::App;
use crate::auth::Identity;
use crate::knowledge::KnowledgeError;
use crate::store::Store;

pub use input_required::RequestStates;
pub(crate) use results::{tool_error, tool_success};
pub use subscribe::listener_refused;

/// The rmcp handler. One instance per MCP connection or session.
#[derive(Clone)]
pub struct CodifierServer {
    app: App,
    store: Arc<dyn Store>,
    /// The identity for transports without HTTP parts (stdio); `None` over HTTP.
    local_identity: Option<Identity>,
    /// The active project of a connection that has no stored session (stdio, legacy SSE).
    active_project: Arc<Mutex<Option<Uuid>>>,
    tool_router: rmcp::handler::server::router::tool::ToolRouter<Self>,
    /// Keeps this connection counted in the open-sessions gauge while any clone is alive.
    session_gauge: Option<Arc<crate::metrics::SessionGauge>>,
    /// This session's `resources/subscribe` subscriptions (revisions before 2026-07-28).
    subscriptions: subscribe::Subscriptions,
    /// How often a subscription pings its client, when sessions idle out (Streamable HTTP).
    keepalive: Option<std::time::Duration>,
}

impl CodifierServer {
    /// A handler for HTTP transports: every request must carry an [`Identity`] in its parts.
    pub fn for_http(app: App) -> Self {
        Self::new(app, None)
    }

    /// A handler for stdio: every call runs as the local user.
    pub fn for_local(app: App) -> Self {
        Self::new(app, Some(Identity::Local))
    }

    fn new(app: App, local_identity: Option<Identity>) -> Self {
        let mut tool_router = Self::project_tools()
            + Self::memory_tools()
            + Self::revision_tools()
            + Self::query_data_tools()
            + Self::playbook_tools()
            + Self::snapshot_tools()
            + Self::guardrail_library_tools()
            + Self::guardrail_validate_tools()
            + Self::guardrail_agent_tools()
            + Self::plan_tools()
            + Self::event_tools();
        for route in tool_router.map.values_mut() {
            let tool = &mut route.attr;
            tool.icons = Some(metadata::icons());
            // Clients show the top-level `title`; the annotation's is the older place for it.
            if tool.title.is_none() {
                tool.title = tool.annotations.as_ref().and_then(|a| a.title.clone());
            }
            if tool.name == "query_data" && app.athena.is_none() {
                let description = tool.description.as_deref().unwrap_or_default();
                tool.description = Some(
                    format!("{description} No data warehouse is configured on this server, so every call is refused until the operator sets one up.")
                        .into(),
                );
            }
        }
        Self {
            store: app.store().clone(),
            app,
            local_identity,
            active_project: Arc::new(Mutex::new(None)),
            tool_router,
            session_gauge: None,
            subscriptions: Arc::default(),
            keepalive: None,
        }
    }

    /// Pings subscribed clients often enough that a session idling out after `idle` stays.
    pub fn idling_out_after(mut self, idle: std::time::Duration) -> Self {
        self.keepalive = Some((idle / 3).max(std::time::Duration::from_secs(1)));
        self
    }

    /// Counts this handler as an open session of `transport` for as long as it lives.
    pub fn counted(mut self, transport: crate::metrics::Transport) -> Self {
        self.session_gauge = Some(crate::metrics::global().session_opened(transport));
        self
    }

    /// Who is calling: the identity the HTTP layer attached, else the local user.
    fn identity(&self, ctx: &RequestContext<RoleServer>) -> Result<Identity, CallToolResult> {
        let from_http = ctx
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Identity>().cloned());
        from_http
            .or_else(|| self.local_identity.clone())
            .ok_or_else(|| {
                tool_error(
                    "this request carries no verified API key: send `Authorization: Bearer <key>`",
                )
            })
    }

    /// The Streamable HTTP session this request belongs to, if any.
    fn http_session(ctx: &RequestContext<RoleServer>) -> Option<String> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// The project `manage_projects switch` made active for this session or connection.
    async fn active_project(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<Uuid>, KnowledgeError> {
        match Self::http_session(ctx) {
            Some(session) => Ok(self
                .store
                .load_mcp_session(&session)
                .await?
                .and_then(|record| record.active_project_id)),
            None => Ok(*self
                .active_project
                .lock()
                .unwrap_or_else(|e| e.into_inner())),
        }
    }

    async fn set_active_project(
        &self,
        ctx: &RequestContext<RoleServer>,
        project: Uuid,
    ) -> Result<(), KnowledgeError> {
        if metadata::is_stateless(ctx) {
            return Err(KnowledgeError::Invalid(
                "protocol 2026-07-28 has no session to remember an active project in: name `project_id` on each call instead of `switch`".into(),
            ));
        }
        match Self::http_session(ctx) {
            Some(session) => {
                self.store
                    .set_mcp_session_project(&session, project)
                    .await?
            }
            None => {
                *self
                    .active_project
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(project)
            }
        }
        Ok(())
    }

    /// The project a call acts on: the one it names, else the active one, else a key's own.
    async fn project_for(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        named: Option<&str>,
    ) -> Result<String, KnowledgeError> {
        let project = match named.map(str::trim).filter(|name| !name.is_empty()) {
            Some(named) => named.to_owned(),
            None => match self.active_project(ctx).await? {
                Some(active) => active.to_string(),
                None => identity.bound_project().map(|id| id.to_string()).ok_or_else(|| {
                    KnowledgeError::Invalid(
                        "`project_id` is missing and no project is active: send `project_id` (an id or name), or call manage_projects with operation `switch` first".into(),
                    )
                })?,
            },
        };
        // The tool-call log line names the project the call acted on, however it was chosen.
        tool_call::note_project(&project);
        Ok(project)
    }
}

/// The HTTP header carrying a request's id, in both directions: the HTTP layer sets it on every
/// request and response, and each tool call's log line names it.
pub const REQUEST_ID: &str = "x-request-id";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodifierServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .build();
        let mut info = ServerConfig::new(capabilities);
        let mut server = rmcp::model::Implementation::new("codifier", env!("CARGO_PKG_VERSION"));
        server.title = Some("Codifier".into());
        server.icons = Some(metadata::icons());
        info.server_info = server;
        info.instructions = Some(
            "Codifier keeps a team's institutional memory per project. Use manage_projects to list \
             projects and `switch` to one; fetch_context to read memories (filter by memory_type, \
             tags, time, or a `query` ranked by meaning and words); update_memory to store one, or \
             to change some fields of one by `id` (the others are kept; earlier versions too: \
             memory_history, restore_memory); delete_memory to retire one (restore_memory brings \
             it back); query_data to read the Athena data warehouse (read-only SELECT); pack_repo \
             to pack a repository into a snapshot, list_snapshots to find the project's snapshots \
             (also listed as resources) and read_snapshot to read one back. \
             Guided playbooks (also offered as prompts): run_playbook starts or resumes one, \
             advance_step answers its current step, playbook_sessions lists a project's sessions. \
             Working sessions for coding agents (the start-session prompt walks through one): \
             load_context to start, watch_out before changing code, unstick when attempts \
             repeat, remember at the end."
                .into(),
        );
        info
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, rmcp::ErrorData> {
        Ok(prompts::list(&self.app.playbooks.catalog))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, rmcp::ErrorData> {
        let identity = self.identity(&ctx).map_err(|_| {
            rmcp::ErrorData::invalid_request("this request carries no verified API key", None)
        })?;
        let arguments = request.arguments.unwrap_or_default();
        let catalog = &self.app.playbooks.catalog;
        prompts::get(catalog, &self.store, &identity, &request.name, arguments)
            .await
            .map(Into::into)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        Some(listen::accepted(requested))
    }

    async fn listen(
        &self,
        subscription: rmcp::service::SubscriptionContext,
    ) -> Result<(), rmcp::ErrorData> {
        listen::run(self, subscription).await
    }

    /// Revisions before 2026-07-28 follow a resource this way (rmcp marks it legacy).
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), rmcp::ErrorData> {
        subscribe::subscribe(self, request, ctx).await
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), rmcp::ErrorData> {
        subscribe::unsubscribe(self, &request);
        Ok(())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, rmcp::ErrorData> {
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            vec![event_resource::template()],
        ))
    }

    async fn list_resources(
        &self,
        request: Option<rmcp::model::PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, rmcp::ErrorData> {
        let identity = self.identity(&ctx).map_err(|_| {
            rmcp::ErrorData::invalid_request("this request carries no verified API key", None)
        })?;
        resources::list(&self.store, &identity, request.and_then(|r| r.cursor)).await
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, rmcp::ErrorData> {
        let identity = self.identity(&ctx).map_err(|_| {
            rmcp::ErrorData::invalid_request("this request carries no verified API key", None)
        })?;
        match event_resource::parse(&request.uri) {
            Some(named) => event_resource::read(&self.store, &identity, &request.uri, named).await,
            None => resources::read(&self.store, &identity, &request.uri).await,
        }
        .map(Into::into)
    }
}
