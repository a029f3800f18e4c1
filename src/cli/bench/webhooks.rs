//! `codifier bench --webhooks N`: what events and webhooks cost. First the latency of a memory
//! write (each one now also writes its event) on a project with no webhook; then N memories
//! written at `--webhook-rate` per second into a project whose webhook posts every
//! `memory.create` to a receiver on 127.0.0.1, printing deliveries per second and the delay
//! from each write's commit to its receipt (p50/p99). The deliverer is the server's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::{Actor, MemoryDraft, MemoryType, NewWebhook};
use crate::events::deliver::Deliverer;
use crate::store::Store;

/// The options of webhook mode.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookBenchArgs {
    /// Webhook mode: write this many memories, each delivered to a local receiver, and print
    /// deliveries per second and the commit-to-receipt delay (0: off).
    #[arg(long, default_value_t = 0)]
    pub webhooks: u64,
    /// Memories written per second in webhook mode.
    #[arg(long, default_value_t = 600)]
    pub webhook_rate: u64,
    /// Memory writes timed on a project without webhooks (the cost an event adds shows by
    /// comparing with a build before events).
    #[arg(long, default_value_t = 2000)]
    pub write_samples: u64,
}

type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(receipts): State<Receipts>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let title = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["data"]["title"].as_str().map(str::to_owned));
    if let Some(title) = title {
        receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(title, at);
    }
    StatusCode::NO_CONTENT
}

fn draft(title: String) -> MemoryDraft {
    MemoryDraft {
        memory_type: MemoryType::Learning,
        content: serde_json::json!({ "text": format!("{title}: what the benchmark wrote") }),
        title,
        category: None,
        description: None,
        confidence: 1.0,
        tags: Vec::new(),
        source_role: None,
    }
}

/// The value at quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub async fn run(
    config: &Config,
    store: &Arc<dyn Store>,
    args: &WebhookBenchArgs,
) -> anyhow::Result<()> {
    let actor = Actor {
        label: "bench".into(),
        tool: "cli:bench".into(),
    };
    let run = uuid::Uuid::new_v4().simple().to_string();

    // 1. Memory writes, each with its event, on a project without webhooks.
    let quiet = store
        .create_project(&actor, &format!("bench-writes-{run}"), None)
        .await?;
    let mut writes = Vec::new();
    for i in 0..args.write_samples {
        let started = Instant::now();
        store
            .create_memory(quiet.id, &actor, &draft(format!("write {i} {run}")))
            .await?;
        writes.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    writes.sort_by(f64::total_cmp);
    println!(
        "memory write with its event ({} writes, {}): p50 {:.3} ms, p99 {:.3} ms (load {})",
        writes.len(),
        store.backend(),
        quantile(&writes, 0.5),
        quantile(&writes, 0.99),
        super::load_average()
    );

    // 2. Deliveries to a local receiver.
    let receipts: Receipts = Arc::default();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receipts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    let project = store
        .create_project(&actor, &format!("bench-webhooks-{run}"), None)
        .await?;
    let webhook = NewWebhook {
        url,
        event_types: vec!["memory.create".into()],
        secret: crate::events::sign::new_secret(),
    };
    store.create_webhook(project.id, &actor, &webhook).await?;
    let mut events = config.events.clone();
    events.allow_private = true;
    Deliverer::new(store.clone(), events).spawn(shutdown.child_token());

    let interval = Duration::from_secs_f64(1.0 / args.webhook_rate.max(1) as f64);
    let started = Instant::now();
    let mut committed = HashMap::new();
    for i in 0..args.webhooks {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let title = format!("delivery {i} {run}");
        store
            .create_memory(project.id, &actor, &draft(title.clone()))
            .await?;
        committed.insert(title, Instant::now());
    }
    let written = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while receipts.lock().unwrap_or_else(|e| e.into_inner()).len() < committed.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} deliveries arrived within 2 minutes",
            receipts.lock().unwrap_or_else(|e| e.into_inner()).len(),
            committed.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    let receipts = receipts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let last = receipts.values().max().copied().unwrap_or(started);
    let mut delays: Vec<f64> = committed
        .iter()
        .filter_map(|(title, at)| {
            receipts
                .get(title)
                .map(|got| got.saturating_duration_since(*at))
        })
        .map(|delay| delay.as_secs_f64() * 1000.0)
        .collect();
    delays.sort_by(f64::total_cmp);
    let seconds = last.duration_since(started).as_secs_f64();
    let rate = committed.len() as f64 / seconds;
    println!(
        "webhook deliveries: {} written in {:.2} s (asked {} /s), all received after {seconds:.2} s: {rate:.0} deliveries/s",
        committed.len(),
        written.as_secs_f64(),
        args.webhook_rate
    );
    let (p50, p99) = (quantile(&delays, 0.5), quantile(&delays, 0.99));
    println!(
        "commit-to-receipt delay: p50 {p50:.1} ms, p99 {p99:.1} ms (load {})",
        super::load_average()
    );
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("target: >= 500 deliveries/s: {}", verdict(rate >= 500.0));
    println!("target: p99 delay <= 200 ms: {}", verdict(p99 <= 200.0));
    Ok(())
}
