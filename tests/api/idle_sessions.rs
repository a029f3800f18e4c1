//! Streamable HTTP sessions nobody closes: one idle for `CODIFIER_SESSION_IDLE_SECONDS` leaves
//! the server's memory, and its next request brings it back from the database.

use std::time::Duration;

use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer};

const IDLE: Duration = Duration::from_secs(3);
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;

async fn post_mcp(server: &TestServer, session: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request.send().await.expect("POST /mcp")
}

async fn open(server: &TestServer) -> String {
    let opened = post_mcp(server, None, INITIALIZE).await;
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Read the answer whole, so the handshake is done before the session is used.
    opened.text().await.unwrap();
    session
}

#[tokio::test]
async fn an_idle_session_leaves_memory_and_comes_back_from_the_database_on_its_next_request() {
    let server = TestServer::start_with(Backend::Sqlite, |config| config.session_idle = IDLE).await;

    let forgotten = open(&server).await;
    assert_eq!(
        post_mcp(&server, Some(&forgotten), LIST).await.status(),
        200
    );
    server.store.delete_mcp_session(&forgotten).await.unwrap();
    assert_eq!(
        post_mcp(&server, Some(&forgotten), LIST).await.status(),
        200,
        "a session in memory answers without its database record"
    );

    let kept = open(&server).await;
    assert_eq!(post_mcp(&server, Some(&kept), LIST).await.status(), 200);

    tokio::time::sleep(IDLE * 2 + Duration::from_secs(1)).await;
    assert_eq!(
        post_mcp(&server, Some(&forgotten), LIST).await.status(),
        404,
        "idle past the limit, the session left memory: without its record it is gone"
    );
    let restored = post_mcp(&server, Some(&kept), LIST).await;
    assert_eq!(
        restored.status(),
        200,
        "a session that left memory is restored from its record"
    );
    assert!(restored.text().await.unwrap().contains("fetch_context"));
    server.stop().await;
}
