//! `codifier bench --webhooks N`: what events and webhooks cost. First the latency of memory
//! writes (each writes its event) in a project without webhooks and in one whose webhook queues
//! a delivery for each; then N memories written at `--webhook-rate` per second, spread over
//! `--webhook-projects` projects whose webhooks post every `memory.create` to a receiver on
//! 127.0.0.1, printing deliveries per second and the delay from each write's commit to its
//! receipt (p50/p99). The deliverer is the server's own.

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
    /// Projects written to at once in webhook mode, each with a webhook (the rate is shared).
    #[arg(long, default_value_t = 4)]
    pub webhook_projects: usize,
    /// Memory writes (creates, then as many updates) timed in a project without webhooks and
    /// in one whose webhook queues a delivery for each.
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

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Prints the p50 and p99 of `samples` (in ms) and returns the p50.
fn print_writes(what: &str, samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let p50 = quantile(samples, 0.5);
    println!(
        "{what} ({} writes): p50 {p50:.3} ms, p99 {:.3} ms",
        samples.len(),
        quantile(samples, 0.99)
    );
    p50
}

/// Times memory writes (create, then update) in a project without webhooks and in one whose
/// webhook wants every event (so each write also queues a delivery; nothing sends it here),
/// taking turns so that both see the same machine; prints each p50/p99 and what the webhook
/// adds at p50. Every write, in both, writes its event.
async fn write_cost(
    store: &Arc<dyn Store>,
    actor: &Actor,
    run: &str,
    url: &str,
    samples: u64,
) -> anyhow::Result<()> {
    let quiet = store
        .create_project(actor, &format!("bench-writes-{run}"), None)
        .await?;
    let hooked = store
        .create_project(actor, &format!("bench-hooked-{run}"), None)
        .await?;
    let webhook = NewWebhook {
        url: url.to_owned(),
        event_types: vec!["*".into()],
        secret: crate::events::sign::new_secret(),
    };
    let webhook = store.create_webhook(hooked.id, actor, &webhook).await?;
    let projects = [quiet.id, hooked.id];
    let mut created: [Vec<f64>; 2] = Default::default();
    let mut updated: [Vec<f64>; 2] = Default::default();
    let mut ids = [uuid::Uuid::nil(); 2];
    for i in 0..samples {
        for (n, project) in projects.iter().enumerate() {
            let began = Instant::now();
            let (memory, _) = store
                .create_memory(*project, actor, &draft(format!("write {i} {run}")))
                .await?;
            created[n].push(millis(began.elapsed()));
            ids[n] = memory.id;
        }
    }
    for i in 0..samples {
        for (n, project) in projects.iter().enumerate() {
            let began = Instant::now();
            store
                .update_memory(*project, actor, ids[n], &draft(format!("update {i} {run}")))
                .await?;
            updated[n].push(millis(began.elapsed()));
        }
    }
    // Its queued deliveries go with it: nothing here is sent.
    store.delete_webhook(hooked.id, actor, webhook.id).await?;
    println!(
        "memory writes, each with its event ({}, load {}):",
        store.backend(),
        super::load_average()
    );
    for (what, samples) in [
        ("memory.create", &mut created),
        ("memory.update", &mut updated),
    ] {
        let without = print_writes(&format!("  {what}, no webhook"), &mut samples[0]);
        let with = print_writes(
            &format!("  {what}, a webhook queues a delivery"),
            &mut samples[1],
        );
        println!(
            "  {what}: the queued delivery adds {:.3} ms at p50",
            with - without
        );
    }
    Ok(())
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

    // A receiver on 127.0.0.1.
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

    // 1. What an event and its outbox rows add to the write that causes them.
    write_cost(store, &actor, &run, &url, args.write_samples).await?;

    // 2. Deliveries to the receiver, from writers in several projects at once (writes to
    // one project take turns on its event counter, so one project alone could not write
    // faster than one commit at a time).
    let mut projects = Vec::new();
    for n in 0..args.webhook_projects.max(1) {
        let project = store
            .create_project(&actor, &format!("bench-webhooks-{run}-{n}"), None)
            .await?;
        let webhook = NewWebhook {
            url: url.clone(),
            event_types: vec!["memory.create".into()],
            secret: crate::events::sign::new_secret(),
        };
        store.create_webhook(project.id, &actor, &webhook).await?;
        projects.push(project.id);
    }
    let mut events = config.events.clone();
    events.allow_private = true;
    Deliverer::new(store.clone(), events).spawn(shutdown.child_token());

    let interval = Duration::from_secs_f64(1.0 / args.webhook_rate.max(1) as f64);
    let started = Instant::now();
    let writers: Vec<_> = projects
        .iter()
        .enumerate()
        .map(|(n, project)| {
            let (store, actor, run) = (store.clone(), actor.clone(), run.clone());
            let (project, total, step) = (*project, args.webhooks, projects.len());
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in (n as u64..total).step_by(step) {
                    let due = started + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let title = format!("delivery {i} {run}");
                    let began = Instant::now();
                    store
                        .create_memory(project, &actor, &draft(title.clone()))
                        .await?;
                    let at = Instant::now();
                    written.push((title, at, millis(at - began)));
                }
                anyhow::Ok(written)
            })
        })
        .collect();
    let mut committed = HashMap::new();
    let mut writes = Vec::new();
    for writer in writers {
        for (title, at, took) in writer.await?? {
            committed.insert(title, at);
            writes.push(took);
        }
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
        .map(millis)
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
    print_writes("memory.create while delivering", &mut writes);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("target: >= 500 deliveries/s: {}", verdict(rate >= 500.0));
    println!("target: p99 delay <= 200 ms: {}", verdict(p99 <= 200.0));
    Ok(())
}
