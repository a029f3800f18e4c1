//! MCP clients for the tests: rmcp's own over Streamable HTTP and stdio, and a small legacy
//! HTTP+SSE client (rmcp no longer ships one) that feeds rmcp a (sink, stream) pair.

use futures::{SinkExt, StreamExt};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientJsonRpcMessage, ServerJsonRpcMessage,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

/// Connects over Streamable HTTP with `key`.
pub async fn streamable(url: &str, key: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    streamable_with(config).await
}

/// Connects over Streamable HTTP with a prepared configuration.
pub async fn streamable_with(config: StreamableHttpClientTransportConfig) -> Client {
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport)
        .await
        .expect("Streamable HTTP handshake")
}

/// Spawns `codifier stdio` on `database_url` and connects to it.
pub async fn stdio(database_url: &str) -> Client {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .arg("stdio")
        .env("DATABASE_URL", database_url)
        .env("CODIFIER_LOG", "warn")
        .env_remove("API_AUTH_TOKEN");
    let transport = TokioChildProcess::new(command).expect("spawn codifier stdio");
    ().serve(transport).await.expect("stdio handshake")
}

/// Opens `GET {base}/sse` with `key`, reads the `endpoint` event and speaks MCP over the pair.
pub async fn sse(base: &str, key: &str) -> Client {
    sse_with(base, key, ()).await
}

/// [`sse`] with a client `handler` of the test's own (to hear notifications). The client's
/// service ends when the server ends the stream.
pub async fn sse_with<H: ClientHandler>(
    base: &str,
    key: &str,
    handler: H,
) -> RunningService<RoleClient, H> {
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{base}/sse"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(
        response.status(),
        200,
        "GET /sse answered {}",
        response.status()
    );
    let mut bytes = response.bytes_stream();
    let (events_tx, mut events) = tokio::sync::mpsc::channel::<(String, String)>(64);
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = bytes.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let (mut event, mut data) = ("message".to_owned(), Vec::new());
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(text) = line.strip_prefix("data:") {
                        data.push(text.strip_prefix(' ').unwrap_or(text).to_owned());
                    }
                }
                if !data.is_empty() && events_tx.send((event, data.join("\n"))).await.is_err() {
                    return;
                }
            }
        }
    });
    let (event, endpoint) = events.recv().await.expect("an endpoint event");
    assert_eq!(event, "endpoint");
    assert!(
        endpoint.starts_with("/messages?sessionId="),
        "endpoint {endpoint}"
    );

    let (to_server, mut outgoing) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(64);
    let (post_url, post_key) = (format!("{base}{endpoint}"), key.to_owned());
    tokio::spawn(async move {
        while let Some(message) = outgoing.next().await {
            let answer = http
                .post(&post_url)
                .bearer_auth(&post_key)
                .json(&message)
                .send()
                .await;
            assert!(
                answer.is_ok_and(|a| a.status() == 202),
                "POST /messages was not accepted"
            );
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(events).filter_map(
        |(event, data)| async move {
            (event == "message")
                .then(|| serde_json::from_str::<ServerJsonRpcMessage>(&data).ok())
                .flatten()
        },
    );
    let sink = to_server.sink_map_err(|error| std::io::Error::other(error.to_string()));
    handler
        .serve((Box::pin(sink), Box::pin(incoming)))
        .await
        .expect("SSE handshake")
}

/// Calls a tool with JSON arguments (through any client: `&Client` derefs to its peer).
pub async fn call(
    client: &rmcp::service::Peer<RoleClient>,
    tool: &'static str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
}

/// The text of a result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|content| content.as_text())
        .map(|text| text.text.clone())
        .unwrap_or_default()
}

/// The structured content of a successful result; panics with the text of a failed one.
pub fn ok(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool error: {}", text(result));
    result
        .structured_content
        .clone()
        .expect("structured content")
}

/// The titles of the memories a `fetch_context` result lists, in its order.
pub fn memory_titles(found: &Value) -> Vec<String> {
    found["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The message of a failed result; panics on success.
pub fn refused(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error, got {:?}",
        result.structured_content
    );
    text(result)
}
