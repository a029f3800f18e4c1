//! `codifier bench --soak-secs N`: the soak test of the server's memory. It starts `codifier serve`
//! as a child process over the seeded store (so the figures are the server's alone, not the
//! load generator's), makes a project API key (memory followed keys, not the operator token),
//! and drives a mixed load over real MCP sessions on Streamable HTTP: searches with a query,
//! filter-only reads, creates, updates and deletes, each client opening a new session every
//! [`CALLS_PER_SESSION`] calls and closing the old one. Every few seconds it prints the child's
//! resident memory (`VmRSS`, `VmHWM` from `/proc/<pid>/status`, and `VmRSS` split into its
//! anonymous pages, `RssAnon`: the heap, and its file pages, `RssFile`: the executable and mapped
//! files), and goes on for a cool-down after the load stops, to see the memory come back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use uuid::Uuid;

use super::corpus;
use crate::config::Config;
use crate::domain::{Actor, MemoryType, NewApiKey, Role};
use crate::store::Store;

/// Each client closes its session and opens a new one after this many calls.
const CALLS_PER_SESSION: u64 = 25;

/// The options of the soak mode.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Soak mode: instead of the latency scenarios, serve from a child `codifier serve` and drive
    /// a mixed load with a project API key for this many seconds, printing the server's resident
    /// memory (0: no soak).
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
    /// Print the server's memory every this many seconds.
    #[arg(long, default_value_t = 10)]
    pub soak_every_secs: u64,
    /// Keep sampling for this long after the load stops.
    #[arg(long, default_value_t = 60)]
    pub soak_cooldown_secs: u64,
    /// Before the load, one client runs the same mix for this long and the server then rests
    /// as long as the cool-down; the pre-load figure is taken after that rest, so it holds what
    /// any use leaves (code pages read from the executable, connections' schemas, lazily built
    /// tables) and the comparison shows what the load itself left behind (0: no warm-up, the
    /// pre-load figure is the cold start's).
    #[arg(long, default_value_t = 5)]
    pub soak_warmup_secs: u64,
    /// Fail when the server's peak resident memory (VmHWM) passes this many MB (default: 150
    /// without an embedding model, 300 with one).
    #[arg(long)]
    pub soak_max_mb: Option<f64>,
    /// The `codifier` executable to serve with (default: this one), e.g. an older build to compare.
    #[arg(long)]
    pub soak_server: Option<PathBuf>,
}

/// Resident memory of a process, in MB (10^6 bytes), read from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
struct Resident {
    rss: f64,
    hwm: f64,
    /// Anonymous pages: the heap, thread stacks, anonymous maps.
    anon: f64,
    /// File-backed pages: the executable's and libraries' code, mapped files.
    file: f64,
}

fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024.0 / 1e6)
    };
    Some(Resident {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// What the clients did, shared while they run.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    sessions: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn failed(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(what);
    }
}

/// The server under test: a child process, killed when dropped.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    url: String,
    _dir: tempfile::TempDir,
}

async fn start_server(config: &Config, binary: &PathBuf) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let addr_file = dir.path().join("address");
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &config.database_url)
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_ALLOWED_HOSTS", "127.0.0.1")
        .env_remove("CODIFIER_METRICS_LISTEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if std::env::var_os("CODIFIER_LOG").is_none() {
        command.env("CODIFIER_LOG", "warn");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {} serve", binary.display()))?;
    let pid = child.id().context("the server exited at once")?;
    let started = Instant::now();
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&addr_file)
            && !address.trim().is_empty()
        {
            break address.trim().to_owned();
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server stopped before listening ({status}); its log is above");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not listen within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let health = format!("http://{address}/health");
    while !reqwest::get(&health)
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server's /health did not answer 200 within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Server {
        child,
        pid,
        url: format!("http://{address}/mcp"),
        _dir: dir,
    })
}

/// Stops the server as an operator would (SIGTERM, so it exits cleanly and profilers wrapped
/// around it finish their output), killing it after 10 s.
async fn stop(server: &mut Server) -> anyhow::Result<()> {
    let asked = tokio::process::Command::new("kill")
        .args(["-TERM", &server.pid.to_string()])
        .status()
        .await
        .is_ok_and(|status| status.success());
    if asked
        && tokio::time::timeout(Duration::from_secs(10), server.child.wait())
            .await
            .is_ok()
    {
        return Ok(());
    }
    server.child.start_kill()?;
    server.child.wait().await?;
    Ok(())
}

/// Waits until the server's memory holds still (a model loads in the background after start):
/// five one-second samples within 1 MB of each other, or two minutes.
async fn settled(pid: u32) -> anyhow::Result<Resident> {
    let read = || resident(pid).context("the server's /proc status is unreadable");
    let (started, mut last, mut still) = (Instant::now(), read()?, 0);
    while still < 5 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read()?;
        still = if (now.rss - last.rss).abs() < 1.0 {
            still + 1
        } else {
            0
        };
        last = now;
    }
    Ok(last)
}

/// Runs the soak against the seeded `project` and prints what it measured. Fails when a call
/// failed or the peak passed the bound.
pub async fn run(
    config: &Config,
    store: &Arc<dyn Store>,
    project: Uuid,
    clients: usize,
    model_loaded: bool,
    args: &SoakArgs,
) -> anyhow::Result<()> {
    let bound = args
        .soak_max_mb
        .unwrap_or(if model_loaded { 300.0 } else { 150.0 });
    let key = project_key(store, project).await?;
    let binary = match &args.soak_server {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?,
    };
    let mut server = start_server(config, &binary).await?;
    let pid = server.pid;
    let cold = settled(pid).await?;
    println!(
        "\n== Soak: {clients} clients for {} s, then {} s of rest; server pid {pid} ({}) ==",
        args.soak_secs,
        args.soak_cooldown_secs,
        binary.display()
    );
    println!(
        "cold start: VmRSS {:.1} MB (RssAnon {:.1}, RssFile {:.1})",
        cold.rss, cold.anon, cold.file
    );
    let before = if args.soak_warmup_secs > 0 {
        let warm = Arc::new(Tally::default());
        let until = Instant::now() + Duration::from_secs(args.soak_warmup_secs);
        client(
            server.url.clone(),
            key.clone(),
            project,
            clients,
            until,
            warm.clone(),
        )
        .await;
        if let Some(error) = warm
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            anyhow::bail!("the warm-up failed: {error}");
        }
        tokio::time::sleep(Duration::from_secs(args.soak_cooldown_secs)).await;
        let warmed = resident(pid).context("the server exited after the warm-up")?;
        println!(
            "after a warm-up ({} calls by 1 client in {} s) and {} s of rest: VmRSS {:.1} MB \
             (RssAnon {:.1}, RssFile {:.1})",
            warm.calls.load(Ordering::Relaxed),
            args.soak_warmup_secs,
            args.soak_cooldown_secs,
            warmed.rss,
            warmed.anon,
            warmed.file
        );
        warmed
    } else {
        cold
    };
    println!(
        "pre-load: VmRSS {:.1} MB (RssAnon {:.1}, RssFile {:.1}), VmHWM {:.1} MB",
        before.rss, before.anon, before.file, before.hwm
    );
    println!(
        "| {:>6} | {:<7} | {:>9} | {:>7} | {:>7} | {:>9} | {:>8} | {:>7} | {:>8} | {:>6} |",
        "s",
        "phase",
        "VmRSS MB",
        "anon MB",
        "file MB",
        "VmHWM MB",
        "calls",
        "calls/s",
        "sessions",
        "errors"
    );

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.soak_secs);
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let (url, key, tally) = (server.url.clone(), key.clone(), tally.clone());
            tokio::spawn(client(url, key, project, index, deadline, tally))
        })
        .collect();
    let every = Duration::from_secs(args.soak_every_secs.max(1));
    let end = deadline + Duration::from_secs(args.soak_cooldown_secs);
    let mut peak = before;
    let mut last;
    let (mut calls_before, mut sampled) = (0, started);
    loop {
        let next = (sampled + every).min(end);
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        last = resident(pid).context("the server exited during the soak")?;
        peak.rss = peak.rss.max(last.rss);
        peak.hwm = peak.hwm.max(last.hwm);
        let calls = tally.calls.load(Ordering::Relaxed);
        let rate = (calls - calls_before) as f64 / (now - sampled).as_secs_f64();
        println!(
            "| {:>6.0} | {:<7} | {:>9.1} | {:>7.1} | {:>7.1} | {:>9.1} | {:>8} | {:>7.1} | {:>8} | {:>6} |",
            (now - started).as_secs_f64(),
            if now <= deadline { "load" } else { "rest" },
            last.rss,
            last.anon,
            last.file,
            last.hwm,
            calls,
            rate,
            tally.sessions.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed)
        );
        (calls_before, sampled) = (calls, now);
        if now >= end {
            break;
        }
    }
    for task in tasks {
        if let Err(error) = task.await {
            tally.failed(format!("a client task failed: {error}"));
        }
    }
    stop(&mut server).await?;

    let (calls, errors) = (
        tally.calls.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    let change = (last.rss / before.rss - 1.0) * 100.0;
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("\n== Soak summary ==");
    println!(
        "calls: {calls} ({:.1}/s), sessions: {}, errors: {errors}",
        calls as f64 / args.soak_secs.max(1) as f64,
        tally.sessions.load(Ordering::Relaxed)
    );
    if let Some(error) = tally
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        println!("first error: {error}");
    }
    println!(
        "target: peak resident (VmHWM) {:.1} MB <= {bound} MB: {}",
        peak.hwm,
        verdict(peak.hwm <= bound)
    );
    println!(
        "target: {} s after the load, VmRSS {:.1} MB within 20% of pre-load {:.1} MB ({change:+.1}%): {}",
        args.soak_cooldown_secs,
        last.rss,
        before.rss,
        verdict(change <= 20.0)
    );
    println!(
        "  of which anonymous (heap) {:.1} MB (pre-load {:.1}), file pages {:.1} MB (pre-load {:.1}); \
         against the cold start ({:.1} MB): {:+.1}%",
        last.anon,
        before.anon,
        last.file,
        before.file,
        cold.rss,
        (last.rss / cold.rss - 1.0) * 100.0
    );
    anyhow::ensure!(errors == 0, "{errors} calls failed during the soak");
    anyhow::ensure!(
        peak.hwm <= bound,
        "the server's peak resident memory {:.1} MB passed {bound} MB",
        peak.hwm
    );
    Ok(())
}

/// Makes a write key for `project`, as `codifier keys create` would; returns its text.
async fn project_key(store: &Arc<dyn Store>, project: Uuid) -> anyhow::Result<String> {
    let generated = tokio::task::spawn_blocking(crate::auth::keys::generate).await??;
    let actor = Actor {
        label: "bench".into(),
        tool: "cli:bench".into(),
    };
    let new = NewApiKey {
        project_id: project,
        prefix: generated.prefix,
        hash: generated.hash,
        role: Role::Write,
        label: Some("bench soak".into()),
    };
    store.create_api_key(&actor, &new).await?;
    Ok(generated.key)
}

type Session = rmcp::service::RunningService<RoleClient, ()>;

async fn open(url: &str, key: &str) -> anyhow::Result<Session> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    Ok(
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await?,
    )
}

/// One client: sessions of [`CALLS_PER_SESSION`] calls until `deadline`. Of its calls, half search
/// with a query, 5% read by type and tag, 15% create, 15% update one of its own memories and 15%
/// delete one, so the project keeps its size.
async fn client(
    url: String,
    key: String,
    project: Uuid,
    index: usize,
    deadline: Instant,
    tally: Arc<Tally>,
) {
    let mut rng = corpus::Rng::new(0x50AC + index as u64);
    let queries = corpus::queries(64, 0x50AC + index as u64);
    let mut mine: Vec<String> = Vec::new();
    let mut written = 0u64;
    while Instant::now() < deadline {
        let session = match open(&url, &key).await {
            Ok(session) => session,
            Err(error) => {
                tally.failed(format!("opening a session failed: {error:#}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tally.sessions.fetch_add(1, Ordering::Relaxed);
        for _ in 0..CALLS_PER_SESSION {
            if Instant::now() >= deadline {
                break;
            }
            let roll = rng.below(100);
            let (tool, arguments) = match roll {
                0..50 => (
                    "fetch_context",
                    json!({"project_id": project, "query": queries[rng.below(queries.len())], "limit": 10}),
                ),
                50..55 => (
                    "fetch_context",
                    json!({
                        "project_id": project,
                        "memory_type": MemoryType::KNOWLEDGE[rng.below(5)],
                        "tags": [corpus::TOPIC_TAGS[rng.below(corpus::TOPIC_TAGS.len())]],
                        "limit": 20,
                    }),
                ),
                70..85 if !mine.is_empty() => {
                    let id = mine[rng.below(mine.len())].clone();
                    written += 1;
                    ("update_memory", memory(project, Some(id), index, written))
                }
                85..100 if !mine.is_empty() => {
                    let id = mine.swap_remove(rng.below(mine.len()));
                    ("delete_memory", json!({"project_id": project, "id": id}))
                }
                _ => {
                    written += 1;
                    ("update_memory", memory(project, None, index, written))
                }
            };
            let call = CallToolRequestParams::new(tool)
                .with_arguments(arguments.as_object().cloned().unwrap_or_default());
            match session.peer().call_tool(call).await {
                Ok(result) if result.is_error != Some(true) => {
                    tally.calls.fetch_add(1, Ordering::Relaxed);
                    if let Some(id) = created_id(&result) {
                        mine.push(id);
                    }
                }
                Ok(result) => tally.failed(format!("{tool}: tool error: {}", text(&result))),
                Err(error) => tally.failed(format!("{tool}: {error}")),
            }
        }
        if let Err(error) = session.cancel().await {
            tally.failed(format!("closing a session failed: {error}"));
        }
    }
}

/// A memory to write: a corpus text numbered past the seeded ones, new or over memory `id`.
fn memory(project: Uuid, id: Option<String>, client: usize, written: u64) -> Value {
    let draft = corpus::memory(1_000_000_000 + client as u64 * 10_000_000 + written);
    let mut memory = json!({
        "project_id": project,
        "memory_type": draft.memory_type,
        "title": draft.title,
        "content": draft.content,
        "tags": draft.tags,
    });
    if let (Some(id), Some(object)) = (id, memory.as_object_mut()) {
        object.insert("id".into(), Value::String(id));
    }
    memory
}

/// The id of a memory `update_memory` created.
fn created_id(result: &CallToolResult) -> Option<String> {
    let structured = result.structured_content.as_ref()?;
    if structured.get("outcome")? != "created" {
        return None;
    }
    Some(structured.get("memory")?.get("id")?.as_str()?.to_owned())
}

fn text(result: &CallToolResult) -> &str {
    result
        .content
        .first()
        .and_then(|content| content.as_text())
        .map_or("", |text| text.text.as_str())
}
