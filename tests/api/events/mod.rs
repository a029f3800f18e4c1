//! Events and webhooks through a real MCP client and real HTTP, on every backend: the event log
//! and `list_events` (`log.rs`), the log over MCP resources, listen and subscribe (`over_mcp.rs`) and their limits (`mcp_limits.rs`), the live stream at `/events` (`stream.rs`), webhooks and their
//! deliveries to a receiver written here (`webhooks.rs`), and the public-address guard
//! (`targets.rs`). Shared here: a server with a project and a reading key, a receiver that
//! records what it gets, and an SSE reader.

mod log;
mod mcp_limits;
mod over_mcp;
mod stream;
mod targets;
mod webhooks;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use codifier::config::Config;
use codifier::domain::Role;
use codifier::store::Project;

use crate::helpers::{Backend, TestServer};

/// Short waits and private targets, so tests deliver to a receiver on 127.0.0.1 and retry fast.
pub fn fast(config: &mut Config) {
    config.events.allow_private = true;
    config.events.backoff = Duration::from_millis(50);
    config.events.poll = Duration::from_millis(50);
    config.events.lease = Duration::from_secs(1);
}

/// A server with [`fast`] settings over a fresh database on `backend`, a project named
/// `project` and a key that may read it (its secret).
pub async fn server_with_reader(backend: Backend, project: &str) -> (TestServer, Project, String) {
    let server = TestServer::start_with(backend, fast).await;
    let project = server.project(project).await;
    let key = server.key(project.id, Role::Read).await;
    (server, project, key)
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
}

/// An HTTP receiver on 127.0.0.1 that records every POST and answers from a script.
pub struct Receiver {
    pub address: SocketAddr,
    state: ReceiverState,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Self {
        let state = ReceiverState::default();
        state.script.lock().unwrap().extend(script);
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            address,
            state,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (panics after 15 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} requests, not {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.got.lock().unwrap().push(Received { headers, body });
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: serde_json::Value,
}

/// Reads server-sent events off a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with an id (keep-alive comments skipped); panics after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if id.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("JSON data");
                return Some(SseEvent { id, event, data });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(_) | Err(_) => return None,
            }
        }
    }
}

/// Opens `/events` for `project` with `key`, resuming after `last` when given.
pub async fn open_stream(
    base: &str,
    key: &str,
    project: &str,
    last: Option<&str>,
    after: Option<i64>,
) -> reqwest::Response {
    let mut url = format!("{base}/events?project={project}");
    if let Some(after) = after {
        url.push_str(&format!("&after={after}"));
    }
    let mut request = reqwest::Client::new().get(url).bearer_auth(key);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last);
    }
    request.send().await.expect("the stream answers")
}
