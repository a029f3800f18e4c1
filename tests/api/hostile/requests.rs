//! Malformed requests at the HTTP edge: oversized and malformed JSON-RPC, deep nesting, invalid
//! UTF-8 and huge headers get a clear 4xx on `/mcp`, `/messages`, `/events` and `/console`,
//! and the server keeps serving afterwards.

use futures::StreamExt;

use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer};

/// Bodies a JSON-RPC endpoint must refuse with a 4xx: name and bytes.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("oversized", vec![b' '; 600 * 1024]),
        (
            "truncated JSON",
            br#"{"jsonrpc":"2.0","id":1,"method":"#.to_vec(),
        ),
        ("not JSON-RPC", br#"{"hello":"world"}"#.to_vec()),
        ("a bare number", b"12345678901234567890123456789".to_vec()),
        ("100k nested arrays", {
            let mut nested = vec![b'['; 100_000];
            nested.extend(vec![b']'; 100_000]);
            nested
        }),
        ("100k nested objects", {
            let mut nested = b"{\"a\":".repeat(50_000);
            nested.extend(b"1");
            nested.extend(vec![b'}'; 50_000]);
            nested
        }),
        ("invalid UTF-8", {
            let mut bytes = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":""#.to_vec();
            bytes.extend([0xff, 0xfe, 0xc3, 0x28]);
            bytes.extend(br#""}}"#);
            bytes
        }),
        ("a huge batch", {
            let call = br#"{"jsonrpc":"2.0","id":1,"method":"ping"},"#;
            let mut batch = b"[".to_vec();
            batch.extend(call.repeat(10_000));
            batch.pop();
            batch.push(b']');
            batch
        }),
    ]
}

/// The response is a 4xx that says something (hyper's own 431 for headers has no body).
async fn assert_clear_4xx(response: reqwest::Response, what: &str) {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_client_error(), "{what}: {status} {body:.300}");
    assert!(
        status == 431 || !body.trim().is_empty(),
        "{what}: {status} with an empty body"
    );
}

async fn assert_still_healthy(server: &TestServer) {
    let health = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn hostile_json_rpc_bodies_on_mcp_get_a_clear_4xx() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    for (what, body) in hostile_bodies() {
        let response = client
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(OPERATOR_TOKEN)
            .body(body)
            .send()
            .await
            .expect("POST /mcp");
        assert_clear_4xx(response, &format!("/mcp {what}")).await;
    }
    assert_still_healthy(&server).await;
}

/// Opens a legacy SSE session; returns its `/messages` URL and the open stream.
pub(super) async fn open_sse(
    server: &TestServer,
) -> (
    String,
    impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + use<>,
) {
    let response = reqwest::Client::new()
        .get(server.url("/sse"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(response.status(), 200);
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    while !seen.contains("sessionId=") || !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("the endpoint event")
            .expect("an open stream")
            .expect("a chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let path = seen
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .expect("the endpoint's data line")
        .trim()
        .to_owned();
    (server.url(&path), stream)
}

#[tokio::test]
async fn hostile_bodies_on_the_legacy_messages_endpoint_get_a_clear_4xx() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (messages, _stream) = open_sse(&server).await;
    let client = reqwest::Client::new();
    for (what, body) in hostile_bodies() {
        let response = client
            .post(&messages)
            .header("content-type", "application/json")
            .bearer_auth(OPERATOR_TOKEN)
            .body(body)
            .send()
            .await
            .expect("POST /messages");
        assert_clear_4xx(response, &format!("/messages {what}")).await;
    }
    let unknown = client
        .post(server.url("/messages?sessionId=%ff%00..%2f"))
        .bearer_auth(OPERATOR_TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_clear_4xx(unknown, "/messages with a made-up session").await;
    assert_still_healthy(&server).await;
}

#[tokio::test]
async fn huge_and_invalid_headers_get_a_clear_4xx_on_every_surface() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    let huge = "x".repeat(1 << 20);
    for path in [
        "/mcp",
        "/messages?sessionId=x",
        "/events",
        "/console",
        "/console/sign-in",
    ] {
        let post = path != "/events" && path != "/console";
        let request = |client: &reqwest::Client| {
            if post {
                client.post(server.url(path)).body("{}")
            } else {
                client.get(server.url(path))
            }
        };
        let response = request(&client)
            .header("x-junk", huge.as_str())
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await;
        match response {
            Ok(response) => {
                assert_clear_4xx(response, &format!("{path} with a 1 MiB header")).await
            }
            // hyper may close the connection on a header this large instead of answering.
            Err(error) => assert!(
                error.is_request() || error.is_connect() || error.is_body(),
                "{path}: {error}"
            ),
        }
        let many = (0..200).fold(request(&client), |request, n| {
            request.header(format!("x-h{n}"), "v")
        });
        assert_clear_4xx(
            many.send().await.unwrap(),
            &format!("{path} with 200 headers"),
        )
        .await;
        let bad_key = request(&client)
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            )
            .send()
            .await
            .unwrap();
        let status = bad_key.status();
        assert!(
            status.is_client_error() || (path.starts_with("/console") && status.is_success()),
            "{path} with a key of invalid UTF-8: {status}"
        );
    }
    let sign_in = client
        .post(server.url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", server.url(""))
        .body(vec![0xff; 600 * 1024])
        .send()
        .await
        .unwrap();
    assert_clear_4xx(sign_in, "/console/sign-in with an oversized form").await;
    let garbled = client
        .post(server.url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", server.url(""))
        .body(vec![b'%', 0xff, b'=', 0xc3, 0x28, b'&', b'&', b'='])
        .send()
        .await
        .unwrap();
    assert_clear_4xx(garbled, "/console/sign-in with a garbled form").await;
    assert_still_healthy(&server).await;
}
