//! Generate steps for clients at protocol 2026-07-28, which the server sends no requests of its
//! own: the call answers with an input-required result (the sampling request and a sealed
//! `requestState`), and the client's retry with its model's answer goes on. rmcp's client at
//! 2026-07-28 drives the rounds itself; raw HTTP shows that any server on the same database
//! takes the retry, and that a changed, foreign or expired state is refused.
#![expect(
    deprecated,
    reason = "an input request for a generate step is a sampling request"
)]

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, ErrorData, Implementation, ProtocolVersion, SamplingMessage,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::clients::ok;
use crate::helpers::{TestServer, backends};
use crate::protocol_2026::{call, modern_with};
use codifier::domain::Role;

/// A 2026-07-28 client with a stand-in model that answers with an artifact naming its position.
#[derive(Clone, Default)]
struct ModernModelClient {
    prompts: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for ModernModelClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_sampling().build(),
            Implementation::new("input-required-test", "1.0"),
        )
        .with_protocol_version(ProtocolVersion::V_2026_07_28)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let prompt = params.messages[0]
            .content
            .first()
            .and_then(|block| block.as_text())
            .map(|text| text.text.clone())
            .unwrap_or_default();
        let position = {
            let mut prompts = self.prompts.lock().unwrap();
            prompts.push(prompt.clone());
            prompts.len()
        };
        let answer = if prompt.contains("pass_criteria") {
            "evals:\n  - id: EV-001\n    rule: from an input request\n".to_owned()
        } else {
            format!("INPUT-ARTIFACT-{position}")
        };
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(answer),
            "stand-in-model".into(),
        ))
    }
}

async fn connect(
    url: String,
    key: &str,
    model: ModernModelClient,
) -> RunningService<RoleClient, ModernModelClient> {
    let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(key);
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    model
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            lifecycle,
        )
        .await
        .expect("server/discover")
}

/// Calls a tool through the client's own rounds: each input request is answered by its model.
async fn call_tool(
    client: &RunningService<RoleClient, ModernModelClient>,
    tool: &'static str,
    arguments: Value,
) -> Value {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let params = CallToolRequestParams::new(tool).with_arguments(arguments);
    let result = client
        .call_tool(params)
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"));
    ok(&result)
}

#[tokio::test]
async fn a_client_at_2026_07_28_has_every_artifact_generated_through_input_required_results() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("atlas").await;
        let key = server.key(project.id, Role::Write).await;
        let model = ModernModelClient::default();
        let client = connect(server.url("/mcp"), &key, model.clone()).await;

        let mut view = call_tool(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await;
        let mut calls = 1;
        for answer in [json!("A tracker."), json!("Scope."), json!([])] {
            let key = view["current"]["input"]["key"].as_str().unwrap().to_owned();
            view = call_tool(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": view["current"]["id"], "input": {key: answer}})).await;
            calls += 1;
        }
        assert_eq!(view["status"], "completed", "{backend:?}: {view}");
        assert_eq!(calls, 4, "only the user's four answers needed a tool call");
        let prompts = model.prompts.lock().unwrap().clone();
        assert_eq!(prompts.len(), 4, "one input request per generate step");
        assert!(
            prompts[1].contains("INPUT-ARTIFACT-1"),
            "the generated rules reach the evals prompt"
        );
        let notices = view["notices"].to_string();
        assert!(notices.contains("an input request"), "{notices}");
        let fetched = call_tool(
            &client,
            "fetch_context",
            json!({"project_id": "atlas", "memory_type": "rule"}),
        )
        .await;
        assert_eq!(
            fetched["memories"][0]["content"]["text"],
            "INPUT-ARTIFACT-1"
        );
        client.cancel().await.unwrap();
        server.stop().await;
    }
}

/// The sampling capability a raw 2026-07-28 client declares in each request's `_meta`.
fn sampling() -> Value {
    json!({ "sampling": {} })
}

/// A `tools/call` request at 2026-07-28 from a client that can sample.
fn tool_call(id: u64, tool: &str, arguments: &Value, retry: Option<(&str, Value)>) -> Value {
    let mut params = json!({ "name": tool, "arguments": arguments });
    if let Some((state, responses)) = retry {
        params["requestState"] = json!(state);
        params["inputResponses"] = responses;
    }
    modern_with(id, "tools/call", params, sampling())
}

/// What a client sends back for the `generate` input request: its model's answer.
fn model_answer(text: &str) -> Value {
    json!({ "generate": {
        "role": "assistant",
        "content": { "type": "text", "text": text },
        "model": "stand-in-model",
    } })
}

/// Brings a brownfield onboarding in `atlas` to its first generate step over raw HTTP; returns
/// the arguments of the call that stopped there and its answer.
async fn to_generate_rules(server: &TestServer, key: &str) -> (Value, Value) {
    let start = json!({ "playbook_id": "brownfield-onboard", "project_id": "atlas" });
    let (_, _, started) = call(server, key, &tool_call(1, "run_playbook", &start, None)).await;
    let view = &started["result"]["structuredContent"];
    let session = view["session_id"].as_str().expect("a session").to_owned();
    let repositories = json!({ "session_id": session, "step_id": "repositories",
        "input": { "repository_urls": [] } });
    let (_, _, answered) = call(
        server,
        key,
        &tool_call(2, "advance_step", &repositories, None),
    )
    .await;
    assert_eq!(
        answered["result"]["structuredContent"]["current"]["id"],
        "extra-context"
    );
    let context = json!({ "session_id": session, "step_id": "extra-context",
        "input": { "extra_context": "Notes about the monolith." } });
    let (status, _, asked) = call(server, key, &tool_call(3, "advance_step", &context, None)).await;
    assert_eq!(status, 200, "{asked}");
    (context, asked)
}

#[tokio::test]
async fn a_request_state_from_one_server_is_taken_by_another_and_a_changed_or_foreign_one_is_refused()
 {
    for backend in backends() {
        let first = TestServer::start(backend).await;
        let second = TestServer::start_on(
            first.database.clone(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await;
        let project = first.project("atlas").await;
        let key = first.key(project.id, Role::Write).await;
        let other_key = first.key(project.id, Role::Write).await;

        let (arguments, asked) = to_generate_rules(&first, &key).await;
        let result = &asked["result"];
        assert_eq!(result["resultType"], "input_required", "{asked}");
        let request = &result["inputRequests"]["generate"];
        assert_eq!(request["method"], "sampling/createMessage", "{asked}");
        let prompt = request["params"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap();
        assert!(prompt.contains("Notes about the monolith."), "{prompt}");
        let state = result["requestState"].as_str().expect("a requestState");

        // A state changed in one character, the same state from another key, and the same
        // state with other arguments are all refused, and leave the session where it was.
        let mut changed = state.to_owned().into_bytes();
        let middle = changed.len() / 2;
        changed[middle] = if changed[middle] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        let mut other_arguments = arguments.clone();
        other_arguments["input"]["extra_context"] = json!("Other notes.");
        let refusals = [
            (key.as_str(), &arguments, changed.as_str()),
            (other_key.as_str(), &arguments, state),
            (key.as_str(), &other_arguments, state),
        ];
        for (caller, arguments, sent) in refusals {
            let retry = tool_call(
                4,
                "advance_step",
                arguments,
                Some((sent, model_answer("FORGED"))),
            );
            let (status, _, refused) = call(&second, caller, &retry).await;
            assert_eq!(status, 200, "{refused}");
            assert_eq!(refused["result"]["isError"], true, "{refused}");
            let text = refused["result"]["content"][0]["text"].as_str().unwrap();
            assert!(
                text.contains("`requestState` was not issued by this server for this call"),
                "{text}"
            );
        }

        // The genuine state, sent to the other server, keeps the model's answer and goes on
        // to the next generate step.
        let retry = tool_call(
            5,
            "advance_step",
            &arguments,
            Some((state, model_answer("RULES-FROM-THE-MODEL"))),
        );
        let (status, _, next) = call(&second, &key, &retry).await;
        assert_eq!(status, 200, "{next}");
        assert_eq!(next["result"]["resultType"], "input_required", "{next}");
        assert_ne!(next["result"]["requestState"], state);
        let read = modern_with(
            6,
            "tools/call",
            json!({ "name": "fetch_context", "arguments": { "memory_type": "rule" } }),
            sampling(),
        );
        let (_, _, fetched) = call(&first, &key, &read).await;
        let memories = fetched["result"]["structuredContent"]["memories"].to_string();
        assert!(memories.contains("RULES-FROM-THE-MODEL"), "{memories}");
        assert!(!memories.contains("FORGED"), "{memories}");
        second.stop().await;
    }
}

#[tokio::test]
async fn an_expired_request_state_is_refused_with_how_to_be_asked_again() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |config| {
            config.playbooks.request_state.ttl = std::time::Duration::from_secs(1);
        })
        .await;
        let project = server.project("atlas").await;
        let key = server.key(project.id, Role::Write).await;
        let (arguments, asked) = to_generate_rules(&server, &key).await;
        let state = asked["result"]["requestState"].as_str().unwrap();

        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let retry = tool_call(
            4,
            "advance_step",
            &arguments,
            Some((state, model_answer("TOO-LATE"))),
        );
        let (_, _, refused) = call(&server, &key, &retry).await;
        assert_eq!(refused["result"]["isError"], true, "{refused}");
        let text = refused["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("`requestState` has expired"), "{text}");

        // Calling again without the state asks again, with a fresh one.
        let (_, _, again) = call(
            &server,
            &key,
            &tool_call(5, "advance_step", &arguments, None),
        )
        .await;
        assert_eq!(again["result"]["resultType"], "input_required", "{again}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_client_at_2026_07_28_without_sampling_gets_the_generate_request_in_the_result() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let project = server.project("atlas").await;
    let key = server.key(project.id, Role::Write).await;
    let start = json!({ "playbook_id": "brownfield-onboard", "project_id": "atlas" });
    let body = modern_with(
        1,
        "tools/call",
        json!({ "name": "run_playbook", "arguments": start }),
        json!({}),
    );
    let (_, _, started) = call(&server, &key, &body).await;
    let session = started["result"]["structuredContent"]["session_id"].clone();
    for (id, step, input) in [
        (2, "repositories", json!({ "repository_urls": [] })),
        (3, "extra-context", json!({ "extra_context": "Notes." })),
    ] {
        let arguments = json!({ "session_id": session, "step_id": step, "input": input });
        let body = modern_with(
            id,
            "tools/call",
            json!({ "name": "advance_step", "arguments": arguments }),
            json!({}),
        );
        let (_, _, answered) = call(&server, &key, &body).await;
        if step == "extra-context" {
            let result = &answered["result"];
            assert!(
                result
                    .get("resultType")
                    .is_none_or(|kind| kind == "complete"),
                "{answered}"
            );
            assert_eq!(
                result["structuredContent"]["current"]["id"],
                "generate-rules"
            );
            assert!(result["structuredContent"]["current"]["generate"]["prompt"].is_string());
        }
    }
    server.stop().await;
}
