//! The stateless MCP revision 2026-07-28 over raw HTTP: `server/discover` without `initialize`,
//! tool calls without a session that any server process on the same database answers, the
//! `Mcp-Method` / `Mcp-Name` headers checked against the body, and the 2025 revisions unchanged.

use serde_json::{Value, json};

use crate::helpers::{TestServer, backends};
use codifier::domain::Role;

pub(crate) const MODERN: &str = "2026-07-28";
const ICON_PREFIX: &str = "data:image/svg+xml,";

/// The `_meta` every 2026-07-28 request carries, for a client with `capabilities`.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": { "name": "raw-http", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    })
}

/// A JSON-RPC request at 2026-07-28 with `params` (its `_meta` added).
fn modern(id: u64, method: &str, params: Value) -> Value {
    modern_with(id, method, params, json!({}))
}

/// A JSON-RPC request at 2026-07-28 from a client with `capabilities`.
pub(crate) fn modern_with(id: u64, method: &str, mut params: Value, capabilities: Value) -> Value {
    params["_meta"] = meta(capabilities);
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// Posts `body` to `/mcp` with `headers`; returns the status, the session header and the
/// JSON-RPC message (the answer comes as JSON or as one SSE event).
async fn post(
    server: &TestServer,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let message = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.starts_with('{'))
        .unwrap_or(&text);
    let message = serde_json::from_str(message).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, session, message)
}

/// Posts a 2026-07-28 request with the headers that match it.
pub(crate) async fn call(
    server: &TestServer,
    key: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let method = body["method"].as_str().unwrap().to_owned();
    let name = body["params"]["name"].as_str().map(str::to_owned);
    let mut headers = vec![
        ("mcp-protocol-version", MODERN),
        ("mcp-method", method.as_str()),
    ];
    if let Some(name) = name.as_deref() {
        headers.push(("mcp-name", name));
    }
    post(server, key, &headers, body).await
}

#[tokio::test]
async fn discover_answers_at_2026_07_28_without_initialize_or_a_session() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("alpha").await;
        let key = server.key(project.id, Role::Read).await;

        let (status, session, answer) =
            call(&server, &key, &modern(1, "server/discover", json!({}))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(session, None, "2026-07-28 has no sessions");
        let result = &answer["result"];
        let versions: Vec<&str> = result["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for version in [MODERN, "2025-11-25", "2025-06-18"] {
            assert!(versions.contains(&version), "{versions:?}");
        }
        assert!(result["capabilities"]["tools"].is_object(), "{result}");
        let server_info = &result["_meta"]["io.modelcontextprotocol/serverInfo"];
        assert_eq!(server_info["name"], "codifier", "{result}");
        assert_eq!(server_info["title"], "Codifier");
        assert!(
            server_info["icons"][0]["src"]
                .as_str()
                .unwrap()
                .starts_with(ICON_PREFIX)
        );
    }
}

#[tokio::test]
async fn a_tool_call_needs_no_session_and_a_second_server_process_answers_the_next_request() {
    for backend in backends() {
        let first = TestServer::start(backend).await;
        let second = TestServer::start_on(
            first.database.clone(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await;
        let project = first.project("alpha").await;
        let key = first.key(project.id, Role::Write).await;
        let marker = format!("stateless{}", uuid::Uuid::new_v4().simple());

        let (status, session, listed) =
            call(&first, &key, &modern(1, "tools/list", json!({}))).await;
        assert_eq!((status, session), (200, None), "{listed}");
        let tools = listed["result"]["tools"].as_array().unwrap();
        let update = tools.iter().find(|t| t["name"] == "update_memory").unwrap();
        assert!(update["title"].is_string(), "{update}");
        assert!(
            update["icons"][0]["src"]
                .as_str()
                .unwrap()
                .starts_with(ICON_PREFIX)
        );

        let write = modern(
            2,
            "tools/call",
            json!({ "name": "update_memory", "arguments": {
                "memory_type": "rule", "title": marker, "content": { "text": marker } } }),
        );
        let (status, session, written) = call(&first, &key, &write).await;
        assert_eq!((status, session), (200, None), "{written}");
        assert_eq!(written["result"]["isError"], false, "{written}");

        // The next request goes to another process: nothing ties the client to the first.
        let read = modern(
            3,
            "tools/call",
            json!({ "name": "fetch_context", "arguments": { "tags": [], "limit": 50 } }),
        );
        let (status, session, fetched) = call(&second, &key, &read).await;
        assert_eq!((status, session), (200, None), "{fetched}");
        assert_eq!(fetched["result"]["isError"], false, "{fetched}");
        assert!(fetched.to_string().contains(&marker), "{fetched}");

        let switch = modern(
            6,
            "tools/call",
            json!({ "name": "manage_projects", "arguments": {
                "operation": "switch", "project_id": "alpha" } }),
        );
        let (status, _, refused) = call(&second, &key, &switch).await;
        assert_eq!(status, 200, "{refused}");
        assert_eq!(
            refused["result"]["isError"], true,
            "no session to switch in: {refused}"
        );
        assert!(
            refused
                .to_string()
                .contains("name `project_id` on each call"),
            "{refused}"
        );

        let (status, _, prompts) = call(&second, &key, &modern(4, "prompts/list", json!({}))).await;
        assert_eq!(status, 200, "{prompts}");
        let prompt = &prompts["result"]["prompts"][0];
        assert!(
            prompt["title"].is_string() && prompt["icons"].is_array(),
            "{prompt}"
        );
        let (status, _, resources) =
            call(&second, &key, &modern(5, "resources/list", json!({}))).await;
        assert_eq!(status, 200, "{resources}");
        assert!(resources["result"]["resources"].is_array(), "{resources}");
        second.stop().await;
    }
}

#[tokio::test]
async fn a_method_or_name_header_that_does_not_match_the_body_is_refused_with_a_clear_error() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("alpha").await;
        let key = server.key(project.id, Role::Read).await;
        let body = modern(
            1,
            "tools/call",
            json!({ "name": "manage_projects", "arguments": { "operation": "list" } }),
        );

        let wrong_method = [
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/list"),
        ];
        let (status, _, refused) = post(&server, &key, &wrong_method, &body).await;
        assert_eq!(status, 400, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("tools/list") && message.contains("tools/call"),
            "the error names both methods: {message}"
        );

        let wrong_name = [
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "delete_memory"),
        ];
        let (status, _, refused) = post(&server, &key, &wrong_name, &body).await;
        assert_eq!(status, 400, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains("delete_memory"), "{message}");

        let wrong_version = [
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/call"),
        ];
        let (status, _, refused) = post(&server, &key, &wrong_version, &body).await;
        assert_eq!(
            status, 400,
            "a header that disagrees with _meta is refused: {refused}"
        );
    }
}

#[tokio::test]
async fn clients_on_the_2025_revisions_still_initialize_and_get_a_session() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("alpha").await;
        let key = server.key(project.id, Role::Read).await;
        for version in ["2025-11-25", "2025-06-18"] {
            let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": { "name": "raw-http", "version": "1" } } });
            let (status, session, answer) = post(&server, &key, &[], &initialize).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["result"]["protocolVersion"], version);
            let session = session.expect("the 2025 revisions keep sessions");
            let headers = [
                ("mcp-session-id", session.as_str()),
                ("mcp-protocol-version", version),
            ];
            let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
            let accepted = reqwest::Client::new()
                .post(server.url("/mcp"))
                .bearer_auth(&key)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", version)
                .json(&initialized)
                .send()
                .await
                .unwrap();
            assert_eq!(accepted.status(), 202);
            let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} });
            let (status, _, tools) = post(&server, &key, &headers, &list).await;
            assert_eq!(status, 200, "{tools}");
            assert!(tools["result"]["tools"].as_array().unwrap().len() > 4);
        }
    }
}

/// Stores a one-file snapshot in `project` straight through the store (a `snapshot.store` event).
async fn store_snapshot(server: &TestServer, project: uuid::Uuid) {
    use codifier::domain::{NewSnapshotFile, SnapshotChunk, SnapshotDraft};
    let draft = SnapshotDraft {
        url: "https://git.example/team/app".into(),
        commit_sha: Some("0123456789abcdef".into()),
        branch: Some("main".into()),
        version_label: None,
        file_count: 1,
        token_count: 3,
        total_bytes: 20,
        file_tree: "README.md".into(),
        encoding: "o200k_base".into(),
        style: "markdown".into(),
        report: json!({}),
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
    let file = NewSnapshotFile {
        path: "README.md".into(),
        blob_id: "blob-readme".into(),
        tokens: 3,
        content: "The app, in words.".into(),
    };
    sender.send(SnapshotChunk::Files(vec![file])).await.unwrap();
    sender.send(SnapshotChunk::Done).await.unwrap();
    let actor = codifier::store::Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    server
        .store
        .save_snapshot(project, &actor, &draft, &mut receiver)
        .await
        .unwrap();
}

/// Reads SSE `data:` messages from `response` until one satisfies `wanted` (10 s at most).
async fn next_message(
    response: &mut reqwest::Response,
    buffer: &mut String,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for data in event.lines().filter_map(|line| line.strip_prefix("data:")) {
                    if let Ok(message) = serde_json::from_str::<Value>(data.trim())
                        && wanted(&message)
                    {
                        return message;
                    }
                }
            }
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("no such message within 10 s")
}

#[tokio::test]
async fn a_listener_hears_that_the_resource_list_changed_when_another_server_stores_a_snapshot() {
    for backend in backends() {
        let first = TestServer::start(backend).await;
        let second = TestServer::start_on(
            first.database.clone(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await;
        let project = first.project("alpha").await;
        let key = first.key(project.id, Role::Read).await;
        let listen = modern(
            1,
            "subscriptions/listen",
            json!({ "notifications": { "resourcesListChanged": true, "toolsListChanged": true } }),
        );
        let mut response = reqwest::Client::new()
            .post(first.url("/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "subscriptions/listen")
            .json(&listen)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut buffer = String::new();
        let acknowledged = next_message(&mut response, &mut buffer, |m| {
            m["method"] == "notifications/subscriptions/acknowledged"
        })
        .await;
        let accepted = acknowledged.to_string();
        assert!(accepted.contains("resourcesListChanged"), "{accepted}");
        assert!(
            !accepted.contains("toolsListChanged"),
            "tools never change: {accepted}"
        );

        // The snapshot lands through the other server's store, as if packed there.
        store_snapshot(&second, project.id).await;
        next_message(&mut response, &mut buffer, |m| {
            m["method"] == "notifications/resources/list_changed"
        })
        .await;
        second.stop().await;
    }
}
