//! Generate steps through MCP sampling: a client whose "model" answers `sampling/createMessage`
//! (rmcp's client with a handler) gets every artifact generated without a round trip, and one
//! whose model fails gets the generate request back instead.
#![expect(
    deprecated,
    reason = "MCP sampling is deprecated by a future protocol revision"
)]

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ErrorData,
    Implementation, ProtocolVersion, SamplingMessage,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

use crate::clients::{call, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// A client with a stand-in model: it records each prompt and answers with an artifact that
/// names its position, or fails when `fail` is set.
#[derive(Clone, Default)]
struct ModelClient {
    prompts: Arc<Mutex<Vec<String>>>,
    fail: bool,
}

impl ClientHandler for ModelClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_sampling().build(),
            Implementation::new("sampling-test", "1.0"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_06_18)
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
        if self.fail {
            return Err(ErrorData::internal_error("this client has no model", None));
        }
        let answer = if prompt.contains("pass_criteria") {
            "evals:\n  - id: EV-001\n    rule: from sampling\n".to_owned()
        } else {
            format!("SAMPLED-ARTIFACT-{position}")
        };
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(answer),
            "stand-in-model".into(),
        ))
    }
}

async fn connect(url: String, model: ModelClient) -> RunningService<RoleClient, ModelClient> {
    let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(OPERATOR_TOKEN);
    model
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("handshake")
}

#[tokio::test]
async fn a_client_that_supports_sampling_gets_every_artifact_generated_without_a_round_trip() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("atlas").await;
        let model = ModelClient::default();
        let client = connect(server.url("/mcp"), model.clone()).await;
        let mut view = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await);
        let mut calls = 1;
        for answer in [json!("A tracker."), json!("Scope."), json!([])] {
            let key = view["current"]["input"]["key"].as_str().unwrap().to_owned();
            view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": view["current"]["id"], "input": {key: answer}})).await);
            calls += 1;
        }
        assert_eq!(view["status"], "completed", "{backend:?}: {view}");
        assert_eq!(calls, 4, "only the user's four answers needed a call");
        let prompts = model.prompts.lock().unwrap().clone();
        assert_eq!(prompts.len(), 4);
        assert!(
            prompts[1].contains("SAMPLED-ARTIFACT-1"),
            "the sampled rules reach the evals prompt"
        );
        assert!(
            prompts[3].contains("SAMPLED-ARTIFACT-3"),
            "the sampled requirements reach the roadmap prompt"
        );
        let notices = view["notices"].to_string();
        assert!(notices.contains("MCP sampling"), "{notices}");
        let fetched = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "atlas", "memory_type": "rule"}),
        )
        .await);
        assert_eq!(
            fetched["memories"][0]["content"]["text"],
            "SAMPLED-ARTIFACT-1"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn when_sampling_fails_the_client_gets_the_generate_request_instead() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    server.project("atlas").await;
    let model = ModelClient {
        fail: true,
        ..ModelClient::default()
    };
    let client = connect(server.url("/mcp"), model.clone()).await;
    let view = ok(&call(
        &client,
        "run_playbook",
        json!({"playbook_id": "brownfield-onboard", "project_id": "atlas"}),
    )
    .await);
    let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "repositories", "input": {"repository_urls": []}})).await);
    let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "extra-context", "input": {"extra_context": "Notes."}})).await);
    assert_eq!(view["current"]["id"], "generate-rules");
    assert!(
        view["current"]["generate"]["prompt"]
            .as_str()
            .unwrap()
            .contains("Notes.")
    );
    assert!(
        view["notices"]
            .to_string()
            .contains("could not generate it through MCP sampling")
    );
    assert_eq!(
        model.prompts.lock().unwrap().len(),
        1,
        "tried once, then handed over"
    );
    server.stop().await;
}
