//! Running one tool call: reading its arguments, establishing the caller, running the
//! knowledge service and rendering its answer, then counting it in the metrics and writing its
//! log line (tool, outcome, caller, the project it acted on, request id, trace, duration).

use rmcp::RoleServer;
use rmcp::model::{CallToolResponse, CallToolResult};
use rmcp::service::RequestContext;
use serde::Serialize;

use super::results::{error_text, knowledge_error, parse_args, tool_success};
use super::{CodifierServer, REQUEST_ID, metadata};
use crate::auth::Identity;
use crate::knowledge::KnowledgeError;

impl CodifierServer {
    /// Runs one tool call: reads the arguments into `P` (a tool error naming the field when they
    /// do not fit), establishes the caller, runs `action`, and renders its output as Markdown
    /// plus structured content, or its error as a tool error.
    pub(crate) async fn run_tool<P, O, Fut>(
        &self,
        tool: &'static str,
        arguments: rmcp::model::JsonObject,
        ctx: &RequestContext<RoleServer>,
        action: impl FnOnce(P, Identity) -> Fut,
        render: fn(&O) -> String,
    ) -> Result<CallToolResult, rmcp::ErrorData>
    where
        P: serde::de::DeserializeOwned,
        O: Serialize,
        Fut: Future<Output = Result<O, KnowledgeError>>,
    {
        self.answer_tool(tool, arguments, ctx, action, |output: O| {
            tool_success(render(&output), &output)
        })
        .await
    }

    /// [`run_tool`](Self::run_tool) for a tool whose output may become another kind of answer
    /// (an input-required result): `finish` turns the output into the answer.
    pub(crate) async fn answer_tool<P, O, A, Fut>(
        &self,
        tool: &'static str,
        arguments: rmcp::model::JsonObject,
        ctx: &RequestContext<RoleServer>,
        action: impl FnOnce(P, Identity) -> Fut,
        finish: impl FnOnce(O) -> A,
    ) -> Result<A, rmcp::ErrorData>
    where
        P: serde::de::DeserializeOwned,
        A: ToolAnswer,
        Fut: Future<Output = Result<O, KnowledgeError>>,
    {
        let started = std::time::Instant::now();
        let mut project = arguments
            .get("project_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let identity = self.identity(ctx);
        let caller = identity
            .as_ref()
            .map_or_else(|_| "none".to_owned(), Identity::label);
        let answer = match (parse_args::<P>(tool, arguments), identity) {
            (Err(result), _) | (_, Err(result)) => A::from(result),
            (Ok(params), Ok(identity)) => {
                let (outcome, used) = PROJECT_USED
                    .scope(std::cell::RefCell::new(None), async {
                        let outcome = action(params, identity).await;
                        (outcome, PROJECT_USED.with(std::cell::RefCell::take))
                    })
                    .await;
                project = used.or(project);
                match outcome {
                    Ok(output) => finish(output),
                    Err(error) => A::from(knowledge_error(error)),
                }
            }
        };
        let took = started.elapsed();
        let outcome = answer.outcome();
        crate::metrics::global().tool_call(tool, outcome, took);
        let error = answer.failure().map(error_text);
        tracing::info!(
            tool,
            outcome,
            caller,
            project = project.as_deref().unwrap_or("-"),
            request_id = Self::request_id(ctx).as_deref().unwrap_or("-"),
            traceparent = metadata::traceparent(ctx).as_deref(),
            duration_ms = took.as_secs_f64() * 1000.0,
            error = error.as_deref(),
            "tool call"
        );
        Ok(answer)
    }

    /// The id the HTTP layer gave the request carrying this call (`x-request-id`).
    fn request_id(ctx: &RequestContext<RoleServer>) -> Option<String> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get(REQUEST_ID))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }
}

/// What a tool call answers, as its log line and metrics name it.
pub(crate) trait ToolAnswer: From<CallToolResult> {
    /// `ok`, `tool_error`, or `input_required`.
    fn outcome(&self) -> &'static str;
    /// The failed result, when the call failed.
    fn failure(&self) -> Option<&CallToolResult>;
}

impl ToolAnswer for CallToolResult {
    fn outcome(&self) -> &'static str {
        if self.is_error == Some(true) {
            "tool_error"
        } else {
            "ok"
        }
    }

    fn failure(&self) -> Option<&CallToolResult> {
        (self.is_error == Some(true)).then_some(self)
    }
}

impl ToolAnswer for CallToolResponse {
    fn outcome(&self) -> &'static str {
        match self {
            CallToolResponse::Complete(result) => result.outcome(),
            CallToolResponse::InputRequired(_) => "input_required",
            _ => "ok",
        }
    }

    fn failure(&self) -> Option<&CallToolResult> {
        match self {
            CallToolResponse::Complete(result) => result.failure(),
            _ => None,
        }
    }
}

tokio::task_local! {
    /// The project a tool call resolved, for its log line ([`CodifierServer::project_for`]).
    static PROJECT_USED: std::cell::RefCell<Option<String>>;
}

/// Names `project` as the one the running tool call acts on, for its log line (outside a tool
/// call, nothing).
pub(super) fn note_project(project: &str) {
    let _ = PROJECT_USED.try_with(|used| used.replace(Some(project.to_owned())));
}
