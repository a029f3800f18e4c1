//! `codifier bench --soak-secs N`: the soak test of issues 14 and 21. It starts `codifier serve`
//! as a child process over the seeded store (so the figures are the server's alone, not the
//! load generator's), makes a project API key (memory followed keys, not the operator token),
//! serves a small git repository on loopback for `pack_repo`, and drives a fixed-rate mixed load
//! over real MCP sessions on Streamable HTTP ([`client`], [`mix`]): text and hybrid searches,
//! filter reads, creates, updates, deletes, playbook steps, plans and their tasks, packs and
//! snapshot reads, the guardrail tools, sessions opened and closed. Every window it prints the
//! calls, p50 and p99 latency, the child's resident memory, its open descriptors and sockets and
//! its database connections ([`server`]); after a rest it prints the calls per operation and the
//! verdicts ([`report`]), and fails when one is missed.

mod client;
mod mix;
mod repo;
mod report;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::{Actor, NewApiKey, Role};
use crate::store::Store;
use client::{Tally, Target};
use report::{Limits, Window};
use server::{Handles, Resident};

/// The options of the soak mode.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Soak mode: instead of the latency scenarios, serve from a child `codifier serve` and drive
    /// a fixed-rate mixed load with a project API key for this many seconds, printing the
    /// server's latency, memory, descriptors and connections per window (0: no soak).
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
    /// Calls per second, all clients together (`--clients` share them evenly).
    #[arg(long, default_value_t = 20.0)]
    pub soak_rate: f64,
    /// One window (a row of figures) every this many seconds.
    #[arg(long, default_value_t = 60)]
    pub soak_every_secs: u64,
    /// Keep sampling for this long after the load stops (and rest this long after the warm-up).
    #[arg(long, default_value_t = 60)]
    pub soak_cooldown_secs: u64,
    /// Before the load, the same load runs for this long and the server then rests as long as
    /// the cool-down; the pre-load figures are taken after that rest, so they hold what any use
    /// leaves (code pages, connections, lazily built tables) and the comparison shows what the
    /// load itself left behind (0: no warm-up, the pre-load figures are the cold start's).
    #[arg(long, default_value_t = 30)]
    pub soak_warmup_secs: u64,
    /// Fail when the server's peak resident memory (VmHWM) passes this many MB (default: 150
    /// without an embedding model, 300 with one).
    #[arg(long)]
    pub soak_max_mb: Option<f64>,
    /// Fail when resident memory grows more than this many percent after the first 5 minutes
    /// of the load (the first fifth of shorter runs).
    #[arg(long, default_value_t = 10.0)]
    pub soak_max_growth_pct: f64,
    /// Fail when the p99 latency of the last 5 minutes (fifth) passes this many times the
    /// first's.
    #[arg(long, default_value_t = 1.5)]
    pub soak_max_p99_ratio: f64,
    /// Fail when resident memory after the rest is more than this many percent above the
    /// pre-load figure.
    #[arg(long, default_value_t = 20.0)]
    pub soak_max_recovery_pct: f64,
    /// The `codifier` executable to serve with (default: this one), e.g. an older build to compare.
    #[arg(long)]
    pub soak_server: Option<PathBuf>,
}

/// Both snapshots the rest comparisons need.
async fn at_rest(server: &server::Server) -> anyhow::Result<(Resident, Handles)> {
    let resident = server::resident(server.pid).context("the server exited")?;
    Ok((resident, server.handles().await?))
}

/// Runs the soak against the seeded `project` and prints what it measured. Fails when a
/// verdict is missed.
pub async fn run(
    config: &Config,
    store: &Arc<dyn Store>,
    project: Uuid,
    clients: usize,
    model_loaded: bool,
    args: &SoakArgs,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.soak_rate > 0.0,
        "--soak-rate must be above 0 calls per second"
    );
    let limits = Limits {
        max_mb: args
            .soak_max_mb
            .unwrap_or(if model_loaded { 300.0 } else { 150.0 }),
        growth_pct: args.soak_max_growth_pct,
        p99_ratio: args.soak_max_p99_ratio,
        recovery_pct: args.soak_max_recovery_pct,
        database_capacity: server::database_capacity(&config.database_url),
    };
    let load_secs = args.soak_secs as f64;
    let span = (load_secs / 5.0).min(300.0);
    let every = Duration::from_secs(args.soak_every_secs.max(1))
        .min(Duration::from_secs_f64(span.max(1.0)));
    let rest = Duration::from_secs(args.soak_cooldown_secs);
    let key = project_key(store, project).await?;
    let binary = match &args.soak_server {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?,
    };
    let repo = repo::serve().await?;
    let mut server = server::start(config, &binary).await?;
    let pid = server.pid;
    let cold = server::settled(pid).await?;
    let target = Target {
        url: server.url.clone(),
        key,
        project,
        repo_url: repo.url.clone(),
        clients,
        rate: args.soak_rate,
    };
    println!(
        "\n== Soak: {clients} clients, {} calls/s in all, for {} s, then {} s of rest; server pid {pid} ({}) ==",
        args.soak_rate,
        args.soak_secs,
        args.soak_cooldown_secs,
        binary.display()
    );
    println!(
        "cold start: VmRSS {:.1} MB (RssAnon {:.1}, RssFile {:.1})",
        cold.rss, cold.anon, cold.file
    );
    if args.soak_warmup_secs > 0 {
        let warm = Arc::new(Tally::new());
        let until = Instant::now() + Duration::from_secs(args.soak_warmup_secs);
        client::drive(&target, until, &warm).await;
        if let Some(error) = warm.first_error() {
            anyhow::bail!("the warm-up failed: {error}");
        }
        tokio::time::sleep(rest).await;
        println!(
            "warm-up: {} calls in {} s, then {} s of rest",
            warm.records().len(),
            args.soak_warmup_secs,
            args.soak_cooldown_secs,
        );
    }
    let before = at_rest(&server).await?;
    println!(
        "pre-load: VmRSS {:.1} MB (RssAnon {:.1}, RssFile {:.1}), VmHWM {:.1} MB; {} descriptors, {} sockets, {} database",
        before.0.rss,
        before.0.anon,
        before.0.file,
        before.0.hwm,
        before.1.fds,
        before.1.sockets,
        before.1.database
    );
    println!("{}", report::heap(server.heap().await));
    // The pools are widened to their maximum first, so the first span's memory holds every
    // connection the load may open and growth after it is the load's own.
    let connections = if config.database_url.starts_with("postgres") {
        crate::store::postgres::MAX_CONNECTIONS as usize
    } else {
        crate::store::sqlite::MAX_READERS as usize + 1
    };
    client::widen_pool(&target, 2 * connections, 3).await?;
    let widened = server.handles().await?;
    println!(
        "pools widened: {} database handles (at most {}), VmRSS {:.1} MB",
        widened.database,
        limits.database_capacity,
        server::resident(pid).map_or(0.0, |resident| resident.rss)
    );
    println!("{}", report::header());

    let tally = Arc::new(Tally::new());
    let deadline = tally.started + Duration::from_secs(args.soak_secs);
    let load = {
        let (target, tally) = (target.clone(), tally.clone());
        tokio::spawn(async move { client::drive(&target, deadline, &tally).await })
    };
    let end = deadline + rest;
    let mut windows: Vec<Window> = Vec::new();
    let (mut peak_hwm, mut seen, mut sampled) = (before.0.hwm, 0, tally.started);
    loop {
        let next = (sampled + every).min(if sampled < deadline { deadline } else { end });
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let resident = server::resident(pid).context("the server exited during the soak")?;
        let handles = server.handles().await?;
        peak_hwm = peak_hwm.max(resident.hwm);
        let records = tally.records();
        let fresh = &records[seen.min(records.len())..];
        let mut millis: Vec<f64> = fresh.iter().map(|r| r.millis).collect();
        let window = Window {
            at: (now - tally.started).as_secs_f64(),
            loaded: next <= deadline,
            resident,
            heap: server.heap().await,
            handles,
            calls: fresh.len(),
            errors: fresh.iter().filter(|r| r.failed).count(),
            p50: report::quantile(&mut millis, 0.5),
            p99: report::quantile(&mut millis, 0.99),
            rate: fresh.len() as f64 / (now - sampled).as_secs_f64(),
        };
        println!("{}", report::row(&window));
        windows.push(window);
        (seen, sampled) = (records.len(), now);
        if now >= end {
            break;
        }
    }
    load.await.context("the load task failed")?;
    let after = at_rest(&server).await?;
    let after_heap = server.heap().await;
    server.stop().await?;
    drop(repo);

    let records = tally.records();
    println!("\n== Soak summary ==");
    println!(
        "calls: {} ({:.1}/s against {} offered), sessions: {}, ticks missed because a call was still running: {}",
        records.len(),
        records.len() as f64 / load_secs.max(1.0),
        args.soak_rate,
        tally.sessions.load(std::sync::atomic::Ordering::Relaxed),
        tally.missed.load(std::sync::atomic::Ordering::Relaxed)
    );
    print!("{}", report::operations(&records));
    if let Some(error) = tally.first_error() {
        println!("first error: {error}");
    }
    println!(
        "after the rest: VmRSS {:.1} MB (RssAnon {:.1}, RssFile {:.1}); against the cold start ({:.1} MB): {:+.1}%",
        after.0.rss,
        after.0.anon,
        after.0.file,
        cold.rss,
        (after.0.rss / cold.rss - 1.0) * 100.0
    );
    println!("{}", report::heap(after_heap));
    let run = report::Run {
        records: &records,
        windows: &windows,
        load_secs,
        span,
        before,
        after,
        peak_hwm,
    };
    let verdicts = report::verdicts(&run, &limits);
    let missed: Vec<&str> = verdicts
        .iter()
        .filter(|(_, met)| !met)
        .map(|(line, _)| line.as_str())
        .collect();
    for (line, met) in &verdicts {
        println!("target: {line}: {}", if *met { "met" } else { "MISSED" });
    }
    anyhow::ensure!(missed.is_empty(), "the soak missed: {}", missed.join("; "));
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
