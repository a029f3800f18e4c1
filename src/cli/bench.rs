//! `codifier bench`: the load and recall benchmark, on the configured store and embedder. It owns
//! a whole run: seeding one project with a synthetic corpus ([`corpus`]) straight through the
//! [`Store`] (then embedding it with the configured model and building the vector index), serving
//! the real HTTP router on 127.0.0.1 with a throwaway operator token, driving `fetch_context`
//! with concurrent MCP clients over Streamable HTTP ([`load`]), measuring the vector half's
//! recall@10 against an exact scan, and printing what it measured. With `--soak-secs`, it runs
//! the memory soak of [`soak`] instead of the latency scenarios; with `--webhooks`, the event
//! and webhook delivery figures of [`webhooks`]; with `--console`, the web console's page times
//! of [`console`].

mod console;
pub(crate) mod corpus;
pub mod git_http;
mod load;
mod recall;
mod seed;
mod soak;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::JsonObject;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app;
use crate::app::App;
use crate::config::{Config, redact_url};
use crate::domain::{Actor, EmbeddingModel, MemoryType};
use crate::embeddings::Embedder;
use crate::embeddings::service::Embeddings;
use crate::knowledge::KnowledgeBase;
use crate::store::Store;
use load::Row;

/// The options of `codifier bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How many memories to seed into the project.
    #[arg(long, default_value_t = 10_000)]
    pub memories: u64,
    /// How many MCP clients call at once (default: one per core; with more, calls queue for
    /// the cores the server, the database and the load share).
    #[arg(long, default_value_t = cores())]
    pub clients: usize,
    /// How long each scenario runs (after a warm-up of a quarter of it, 1 to 5 s).
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Seed, embed and index, then stop.
    #[arg(long, conflicts_with = "skip_seed")]
    pub seed_only: bool,
    /// Reuse the project as an earlier run seeded it.
    #[arg(long)]
    pub skip_seed: bool,
    /// Give the seeded memories stand-in vectors (words hashed onto the model's dimensions)
    /// instead of embedding them: for latency and recall figures at sizes the model would take
    /// hours to embed. Queries are still embedded by the model.
    #[arg(long)]
    pub synthetic_vectors: bool,
    /// The project to seed and read.
    #[arg(long, default_value = "bench")]
    pub project: String,
    /// Time the web console's memory pages (list, filtered list, words search, hybrid search)
    /// with a signed-in session instead of the MCP scenarios.
    #[arg(long)]
    pub console: bool,
    #[command(flatten)]
    pub soak: soak::SoakArgs,
    #[command(flatten)]
    pub webhooks: webhooks::WebhookBenchArgs,
}

/// The 1, 5 and 15 minute load averages (Linux), to judge how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints its report on stdout (progress goes to stderr).
pub async fn run(config: Config, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients >= 1, "--clients must be at least 1");
    let store = app::open_store(&config).await?;
    if args.webhooks.webhooks > 0 {
        return webhooks::run(&config, &store, &args.webhooks).await;
    }
    let embedder = match app::embedding_loader(&config.embeddings) {
        Some(loader) => Some(tokio::task::spawn_blocking(loader).await??),
        None => None,
    };
    let model = embedder.as_ref().map(|e| e.model().clone());
    print_facts(&config, store.as_ref(), model.as_ref(), &args);
    let actor = Actor {
        label: "bench".into(),
        tool: "cli:bench".into(),
    };
    let project = match store.find_project(&args.project).await? {
        Some(project) => project,
        None if args.skip_seed => anyhow::bail!(
            "--skip-seed: there is no project `{}` to reuse",
            args.project
        ),
        None => store.create_project(&actor, &args.project, None).await?,
    };
    if !args.skip_seed {
        let started = Instant::now();
        match &embedder {
            Some(embedder) if !args.synthetic_vectors => {
                seed::seed_and_embed(&store, project.id, &actor, args.memories, embedder.as_ref())
                    .await?;
                // Issue 14's end-to-end figure: 100,000 written and embedded in 10 minutes.
                println!(
                    "written and embedded: {} memories in {:.1} s end to end (the model alone \
                     on one batch, then the writes with the backfill beside them, and the index)",
                    args.memories,
                    started.elapsed().as_secs_f64()
                );
            }
            Some(embedder) => {
                seed::seed(&store, project.id, &actor, args.memories).await?;
                seed::synthetic_vectors(&store, project.id, embedder.model()).await?;
            }
            None => seed::seed(&store, project.id, &actor, args.memories).await?,
        }
    }
    let counted = model.clone().unwrap_or(EmbeddingModel {
        name: "none".into(),
        dimensions: 0,
    });
    let (embedded, total) = store.embedding_progress(project.id, &counted).await?;
    println!(
        "project `{}`: {total} memories, {embedded} with a vector",
        project.name
    );
    if args.seed_only {
        return Ok(());
    }
    if args.soak.soak_secs > 0 {
        let loaded = embedder.is_some();
        drop(embedder);
        return soak::run(
            &config,
            &store,
            project.id,
            args.clients,
            loaded,
            &args.soak,
        )
        .await;
    }
    if args.console {
        return console::run(&config, &store, embedder, project.id, &args).await;
    }
    let mut rows = drive_server(&config, &store, embedder.clone(), project.id, &args).await?;
    let recall = match &embedder {
        Some(embedder) => Some(recall::recall(&store, project.id, embedder.as_ref()).await?),
        None => None,
    };
    println!(
        "\n== Summary ({} memories, {} clients, {} s per scenario, {}) ==",
        total,
        args.clients,
        args.duration_secs,
        store.backend()
    );
    print!("{}", load::table(&rows));
    if let Some(recall) = recall {
        println!("vector recall@10: {recall:.3} (target >= 0.95)");
    }
    // Issue 14 set the SQLite targets: text p99 too, and more room for hybrid (an exact scan).
    let sqlite = store.backend() == "sqlite";
    rows.retain(|row| {
        row.name == "filter-only"
            || row.name == "hybrid excl. query embedding"
            || (sqlite && row.name == "text")
    });
    for row in rows {
        let target = match row.name.as_str() {
            "filter-only" => 10.0,
            "text" => 15.0,
            _ if sqlite => 40.0,
            _ => 30.0,
        };
        let verdict = if row.p99 <= target { "met" } else { "MISSED" };
        println!(
            "target: {} p99 {:.2} ms <= {target} ms: {verdict}",
            row.name, row.p99
        );
    }
    Ok(())
}

fn print_facts(
    config: &Config,
    store: &dyn Store,
    model: Option<&EmbeddingModel>,
    args: &BenchArgs,
) {
    let read = |path: &str, key: &str| {
        std::fs::read_to_string(path).ok().and_then(|text| {
            text.lines()
                .find(|line| line.starts_with(key))
                .and_then(|line| line.split(':').nth(1))
                .map(|value| value.trim().to_owned())
        })
    };
    println!("== Machine ==");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "cores: {cores} ({})",
        read("/proc/cpuinfo", "model name").unwrap_or_else(|| "cpu unknown".into())
    );
    println!("load average: {}", load_average());
    println!(
        "memory: {}",
        read("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into())
    );
    println!(
        "store: {} at {}",
        store.backend(),
        redact_url(&config.database_url)
    );
    match model {
        Some(model) => println!("model: {} ({} dimensions)", model.name, model.dimensions),
        None => println!(
            "model: none (full-text search only; the hybrid scenario and recall are skipped)"
        ),
    }
    println!(
        "memories: {}, clients: {}, duration: {} s per scenario, build: {}",
        args.memories,
        args.clients,
        args.duration_secs,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}

/// The real router, served on 127.0.0.1 for a run, with a throwaway operator token.
pub(crate) struct Served {
    /// `http://127.0.0.1:port`.
    pub base: String,
    pub token: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

/// Serves the real router on 127.0.0.1 over `store` with `embedder` (or none).
pub(crate) async fn serve(
    config: &Config,
    store: &Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
) -> anyhow::Result<Served> {
    let token = hex::encode(rand::random::<[u8; 24]>());
    let mut config = config.clone();
    config.operator_token = Some(token.clone());
    if !config.allowed_hosts.iter().any(|host| host == "127.0.0.1") {
        config.allowed_hosts.push("127.0.0.1".into());
    }
    let embeddings = embedder.map_or_else(Embeddings::disabled, Embeddings::ready);
    let app = App {
        request_states: Arc::new(crate::mcp::RequestStates::new(
            &config.playbooks.request_state,
            store.clone(),
        )),
        playbooks: crate::playbooks::Engine::unwired(store.clone(), embeddings.clone())?,
        knowledge: KnowledgeBase {
            store: store.clone(),
            embeddings,
            duplicate_threshold: config.duplicate_threshold,
        },
        athena: None,
        packer: config.packer.clone(),
        validator: Default::default(),
        library: Default::default(),
        task_deadlines: Default::default(),
        events: config.events.clone(),
        listeners: crate::events::listeners::Listeners::new(config.events.max_listeners),
    };
    let shutdown = CancellationToken::new();
    let router = crate::http::router(&config, app, shutdown.clone());
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    Ok(Served {
        base,
        token,
        shutdown,
        server,
    })
}

/// Serves the real router on 127.0.0.1 and runs the three scenarios against it.
async fn drive_server(
    config: &Config,
    store: &Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
    project: Uuid,
    args: &BenchArgs,
) -> anyhow::Result<Vec<Row>> {
    let hybrid = embedder.is_some();
    let served = serve(config, store, embedder).await?;
    let url = format!("{}/mcp", served.base);
    let clients = load::connect(&url, &served.token, args.clients).await?;

    let object = |value: Value| -> JsonObject { value.as_object().cloned().unwrap_or_default() };
    let filters: Vec<JsonObject> = corpus::TOPIC_TAGS
        .iter()
        .flat_map(|tag| {
            MemoryType::KNOWLEDGE.map(|kind| {
                object(
                    json!({"project_id": project, "memory_type": kind, "tags": [tag], "limit": 20}),
                )
            })
        })
        .collect();
    let queries = corpus::queries(64, 42);
    let searches = |mode: &str| -> Vec<JsonObject> {
        queries
            .iter()
            .map(|q| object(json!({"project_id": project, "query": q, "mode": mode, "limit": 20})))
            .collect()
    };
    let mut scenarios = vec![
        ("filter-only", None, filters),
        ("text", Some("text"), searches("text")),
    ];
    if hybrid {
        scenarios.push(("hybrid", Some("hybrid"), searches("hybrid")));
        // Not a target: the vector half alone, to tell the halves' costs apart.
        scenarios.push(("semantic", Some("semantic"), searches("semantic")));
    }
    let (duration, warmup) = (
        Duration::from_secs(args.duration_secs.max(1)),
        Duration::from_secs((args.duration_secs / 4).clamp(1, 5)),
    );
    let mut rows = Vec::new();
    for (name, mode, calls) in scenarios {
        let calls = Arc::new(calls);
        let load_before = load_average();
        load::drive(&clients, &calls, warmup, mode).await;
        let measured = load::drive(&clients, &calls, duration, mode).await;
        let (elapsed, errors) = (measured.elapsed, measured.errors);
        let scenario = if measured.embedding.is_empty() {
            vec![Row::new(name, &measured.total, elapsed, errors)]
        } else {
            vec![
                Row::new(
                    &format!("{name} (whole call)"),
                    &measured.total,
                    elapsed,
                    errors,
                ),
                Row::new(
                    &format!("{name} excl. query embedding"),
                    &measured.without_embedding,
                    elapsed,
                    errors,
                ),
                Row::new(
                    &format!("{name}: query embedding"),
                    &measured.embedding,
                    elapsed,
                    errors,
                ),
            ]
        };
        print!(
            "\n== Scenario: {name} == (load average before: {load_before})\n{}",
            load::table(&scenario)
        );
        if let Some(cpu) = measured.cpu_per_call {
            println!("CPU per call (this process: server, store and clients): {cpu:.2} ms");
        }
        if let Some(error) = &measured.first_error {
            println!("first error: {error}");
        }
        rows.extend(scenario);
    }
    for client in clients {
        let _ = client.cancel().await;
    }
    served.stop().await?;
    Ok(rows)
}
