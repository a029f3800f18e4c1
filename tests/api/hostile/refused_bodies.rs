//! A request refused before it is served (no key, a wrong key) leaves its connection in a state
//! the client can tell: kept open and answering, or closed with `Connection: close` said first.
//! Clients that keep connections (httpx, reqwest) send their next request on the same one; a
//! connection closed without warning is their "Server disconnected".

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestServer};

/// One HTTP/1.1 response read off a raw connection: its head (lower-cased) and body.
struct RawResponse {
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn status(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    fn says_close(&self) -> bool {
        self.head.contains("\r\nconnection: close")
    }
}

/// Reads one response with a `Content-Length` body; an error when the server closed the
/// connection (or reset it) before a whole response came.
async fn read_response(stream: &mut TcpStream) -> Result<RawResponse, String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
            .map_err(|error| format!("connection failed: {error}"))?;
        if read == 0 {
            return Err("the server closed the connection without an answer".into());
        }
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().expect("a content length"));
    while bytes.len() < head_end + length {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|error| format!("connection failed in a body: {error}"))?;
        if read == 0 {
            return Err("the server closed the connection in a body".into());
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    let body = bytes[head_end..head_end + length].to_vec();
    Ok(RawResponse { head, body })
}

fn post_head(server: &TestServer, key: &str, length: usize) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {length}\r\n\r\n",
        server.address
    )
}

#[tokio::test]
async fn a_refused_post_whose_body_comes_after_its_headers_leaves_the_connection_usable() {
    let server = TestServer::start(Backend::Sqlite).await;
    let body = super::INITIALIZE;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    // The headers first, the body a moment later: the server can refuse the key before the
    // body is there (httpx writes them apart too).
    let head = post_head(&server, "not-a-key", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let refused = read_response(&mut stream).await.expect("the refusal");
    assert_eq!(refused.status(), "401", "{}", refused.head);
    let answer: serde_json::Value = serde_json::from_slice(&refused.body).expect("a JSON body");
    assert!(answer["error"].is_string(), "{answer}");
    assert!(
        !refused.says_close(),
        "a small body that came is read, so the connection stays open: {}",
        refused.head
    );

    // The next request on the same connection, as a pooling client sends it.
    let health = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", server.address);
    let next = match stream.write_all(health.as_bytes()).await {
        Ok(()) => read_response(&mut stream).await,
        Err(error) => Err(format!("the connection was closed: {error}")),
    };
    let next = next.unwrap_or_else(|error| {
        panic!("the 401 left the connection open without saying it would close, then {error}")
    });
    assert_eq!(next.status(), "200", "{}", next.head);
}

#[tokio::test]
async fn a_refused_post_with_a_body_over_the_limit_is_answered_with_connection_close() {
    let limit = 16 * 1024;
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_body_bytes = limit;
    })
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = post_head(&server, "not-a-key", 200 * 1024);
    stream.write_all(head.as_bytes()).await.unwrap();
    // One byte past the limit, then nothing more: the server has read all that was sent once
    // it knows the body is too large, so its close is clean and the answer can be read.
    stream.write_all(&vec![b' '; limit + 1]).await.unwrap();
    let refused = read_response(&mut stream).await.expect("the refusal");
    assert_eq!(refused.status(), "401", "{}", refused.head);
    assert!(
        refused.says_close(),
        "a body past the limit is not read to its end, so the answer says the connection \
         closes: {}",
        refused.head
    );
}

#[tokio::test]
async fn a_refused_post_that_expects_100_continue_is_answered_at_once_without_inviting_the_body() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = post_head(&server, "not-a-key", 64 * 1024)
        .replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let refused = read_response(&mut stream).await.expect("the refusal");
    assert_eq!(
        refused.status(),
        "401",
        "the final answer, not an invitation to send the body: {}",
        refused.head
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at once, not after waiting for a body: {:?}",
        started.elapsed()
    );
    assert!(
        refused.says_close(),
        "the body was never sent, so the connection closes: {}",
        refused.head
    );
}
