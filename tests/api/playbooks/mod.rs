//! Playbooks end to end through rmcp's client over Streamable HTTP, on every backend: full runs
//! with the round trips counted, what reaches each generator, what is stored, resuming after a
//! restart, retries, bad input, prompts, and generating through MCP sampling. One file a topic;
//! the helpers they share are here.

mod artifacts;
mod prompts;
mod repositories;
mod revising;
mod runs;
mod sessions;

use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::git_server::{GitServer, versioned_repo};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

/// A client that counts the tool calls it makes.
struct Counted<'a> {
    client: &'a Client,
    calls: usize,
}

impl Counted<'_> {
    async fn call(&mut self, tool: &'static str, arguments: Value) -> Value {
        self.calls += 1;
        ok(&call(self.client, tool, arguments).await)
    }

    /// Answers the current step of `view` with `value` under the key it asks for.
    async fn answer(&mut self, view: &Value, value: Value) -> Value {
        let current = &view["current"];
        let key = current["input"]["key"].as_str().expect("an input key");
        self.call(
            "advance_step",
            json!({
                "session_id": view["session_id"],
                "step_id": current["id"],
                "input": { key: value },
            }),
        )
        .await
    }
}

fn current(view: &Value) -> &str {
    view["current"]["id"].as_str().unwrap_or("<none>")
}

fn generate_prompt(view: &Value) -> &str {
    view["current"]["generate"]["prompt"]
        .as_str()
        .expect("a generate request")
}

async fn memories(client: &Client, project: &str) -> Vec<Value> {
    let fetched = ok(&call(
        client,
        "fetch_context",
        json!({"project_id": project, "limit": 100}),
    )
    .await);
    fetched["memories"].as_array().cloned().unwrap_or_default()
}

const EVALS: &str = "evals:\n  - id: EV-001\n    rule: Errors carry context\n    check: grep\n";

/// A server that may clone from 127.0.0.1 (the test git server), with a project `legacy`.
async fn packing_server(backend: Backend) -> (TestServer, Client) {
    let server =
        TestServer::start_with(backend, |config| config.packer.allow_private_network = true).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("legacy").await;
    (server, client)
}
