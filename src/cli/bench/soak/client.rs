//! The soak's load: `clients` MCP clients over Streamable HTTP, together calling at a fixed
//! rate (each on a ticker of `clients / rate` seconds, staggered, so the windows of a run are
//! comparable whatever the latency), each opening a new session every [`CALLS_PER_SESSION`]
//! calls and closing the old one, and the [`Tally`] of every call: when it started, how long it
//! took, which operation, and whether it failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use super::mix::Mix;

/// Each client closes its session and opens a new one after this many calls.
const CALLS_PER_SESSION: u64 = 25;

/// A call that has not answered after this long counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One call as measured.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Seconds from the start of the load to the call's start.
    pub at: f64,
    pub millis: f64,
    pub label: &'static str,
    pub failed: bool,
}

/// What the clients did, shared while they run.
pub struct Tally {
    pub started: Instant,
    pub records: Mutex<Vec<Record>>,
    pub sessions: AtomicU64,
    /// Ticks a client missed because its previous call had not answered yet.
    pub missed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            records: Mutex::new(Vec::new()),
            sessions: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    fn record(&self, started: Instant, label: &'static str, error: Option<String>) {
        let record = Record {
            at: (started - self.started).as_secs_f64(),
            millis: started.elapsed().as_secs_f64() * 1000.0,
            label,
            failed: error.is_some(),
        };
        if let Some(error) = error {
            let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(format!("{label}: {error}"));
        }
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// The records so far (a copy).
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Where and how the clients call.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub key: String,
    pub project: Uuid,
    pub repo_url: String,
    pub clients: usize,
    /// Calls per second, all clients together.
    pub rate: f64,
}

/// Runs the clients until `deadline` and waits for them.
pub async fn drive(target: &Target, deadline: Instant, tally: &Arc<Tally>) {
    let tasks: Vec<_> = (0..target.clients)
        .map(|index| tokio::spawn(client(target.clone(), index, deadline, tally.clone())))
        .collect();
    for task in tasks {
        if let Err(error) = task.await {
            tally.record(Instant::now(), "client task", Some(error.to_string()));
        }
    }
}

type Session = rmcp::service::RunningService<RoleClient, ()>;

async fn open(url: &str, key: &str) -> anyhow::Result<Session> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    let transport = StreamableHttpClientTransport::from_config(config);
    Ok(tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", CALL_TIMEOUT.as_secs()))??)
}

async fn close(session: Session, tally: &Tally) {
    let started = Instant::now();
    let closed = tokio::time::timeout(CALL_TIMEOUT, session.cancel()).await;
    let error = match closed {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
    };
    tally.record(started, "close session", error);
}

/// One client: one call per tick until `deadline`, in sessions of [`CALLS_PER_SESSION`] calls.
async fn client(target: Target, index: usize, deadline: Instant, tally: Arc<Tally>) {
    let period = Duration::from_secs_f64(target.clients as f64 / target.rate.max(0.001));
    let offset = period.mul_f64(index as f64 / target.clients as f64);
    let mut ticks = tokio::time::interval_at((Instant::now() + offset).into(), period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut mix = Mix::new(
        target.project,
        target.repo_url.clone(),
        index,
        target.clients,
    );
    let mut session: Option<(Session, u64)> = None;
    let mut expected = ticks.tick().await;
    loop {
        let tick = ticks.tick().await;
        let late = tick.duration_since(expected).as_secs_f64() / period.as_secs_f64();
        if late > 1.5 {
            tally
                .missed
                .fetch_add(late.round() as u64 - 1, Ordering::Relaxed);
        }
        expected = tick;
        if Instant::now() >= deadline {
            break;
        }
        if session
            .as_ref()
            .is_some_and(|(_, calls)| *calls >= CALLS_PER_SESSION)
            && let Some((old, _)) = session.take()
        {
            close(old, &tally).await;
        }
        if session.is_none() {
            let started = Instant::now();
            match open(&target.url, &target.key).await {
                Ok(opened) => {
                    tally.record(started, "open session", None);
                    tally.sessions.fetch_add(1, Ordering::Relaxed);
                    session = Some((opened, 0));
                }
                Err(error) => {
                    tally.record(started, "open session", Some(format!("{error:#}")));
                    continue;
                }
            }
        }
        let Some((peer, calls)) = session.as_mut() else {
            continue;
        };
        *calls += 1;
        let call = mix.next();
        let request = CallToolRequestParams::new(call.tool)
            .with_arguments(call.arguments.as_object().cloned().unwrap_or_default());
        let started = Instant::now();
        let answer = tokio::time::timeout(CALL_TIMEOUT, peer.peer().call_tool(request)).await;
        let error = match answer {
            Ok(Ok(result)) if result.is_error != Some(true) => {
                let structured = result.structured_content.unwrap_or_default();
                mix.answered(&call, &structured);
                None
            }
            Ok(Ok(result)) => Some(format!(
                "tool error: {}",
                result
                    .content
                    .first()
                    .and_then(|content| content.as_text())
                    .map_or("", |text| text.text.as_str())
            )),
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
        };
        if let Some(error) = &error {
            mix.failed();
            // The session may be broken (an HTTP or protocol error): the next call opens another.
            if !error.starts_with("tool error") {
                session = None;
            }
        }
        tally.record(started, call.label, error);
    }
    if let Some((old, _)) = session.take() {
        close(old, &tally).await;
    }
}

/// Widens the server's database pools to their maximum before the load is measured: `calls`
/// sessions each search at the same moment, `rounds` times. A pool opens connections only when
/// calls overlap, so under a steady load it reaches its maximum at some chance moment (on
/// SQLite each connection then adds its page cache and statements, a few MB); opened here, the
/// first span of the load already holds them, and later growth is the load's own. Each open
/// connection is then used often enough under the load not to be closed as idle.
pub async fn widen_pool(target: &Target, calls: usize, rounds: usize) -> anyhow::Result<()> {
    let sessions =
        futures::future::try_join_all((0..calls).map(|_| open(&target.url, &target.key))).await?;
    let arguments = serde_json::json!({
        "project_id": target.project, "query": "error handling retry", "mode": "text", "limit": 10
    });
    for _ in 0..rounds {
        let searches = sessions.iter().map(|session| {
            let request = CallToolRequestParams::new("fetch_context")
                .with_arguments(arguments.as_object().cloned().unwrap_or_default());
            tokio::time::timeout(CALL_TIMEOUT, session.peer().call_tool(request))
        });
        for answer in futures::future::join_all(searches).await {
            match answer {
                Ok(Ok(result)) if result.is_error != Some(true) => {}
                Ok(Ok(result)) => anyhow::bail!("a search to widen the pool failed: {result:?}"),
                Ok(Err(error)) => anyhow::bail!("a search to widen the pool failed: {error}"),
                Err(_) => anyhow::bail!("a search to widen the pool did not answer"),
            }
        }
    }
    for session in sessions {
        session.cancel().await?;
    }
    Ok(())
}
