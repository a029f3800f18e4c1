//! Putting the parts together: logging, opening and migrating the store, and running the HTTP
//! server (on a bound listener, until a shutdown signal) or the stdio server.

use std::sync::Arc;

use anyhow::Context;
use rmcp::ServiceExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EmbeddingsConfig, LogFormat, redact_url};
use crate::embeddings::service::{Embeddings, Loader};
use crate::embeddings::{Embedder, http::HttpEmbedder};
use crate::knowledge::memories::Services;
use crate::mcp::CodifierServer;
use crate::store::{self, Store};

/// Starts logging to stderr (stdout is the MCP channel in stdio mode).
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the configured store and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(&config.database_url);
    let store = store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database at {shown} (DATABASE_URL)"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("migrating the database at {shown} failed"))?;
    tracing::info!(store = store.backend(), database = %shown, "store ready");
    Ok(store)
}

/// A loader for the configured embedding provider, or `None` when there is none.
pub fn embedding_loader(config: &EmbeddingsConfig) -> Option<Loader> {
    match config.clone() {
        EmbeddingsConfig::None => None,
        EmbeddingsConfig::Local { model_dir } => {
            Some(Box::new(move || crate::embeddings::load_local(&model_dir)))
        }
        EmbeddingsConfig::Http(http) => Some(Box::new(move || {
            Ok(Arc::new(HttpEmbedder::new(http)?) as Arc<dyn Embedder>)
        })),
    }
}

/// The services tools call: the store and the embedding provider, loading in the background.
pub fn start_services(
    config: &Config,
    store: Arc<dyn Store>,
    shutdown: &CancellationToken,
) -> Services {
    let embeddings = match embedding_loader(&config.embeddings) {
        Some(loader) => Embeddings::start(loader, store.clone(), shutdown.child_token()),
        None => Embeddings::disabled(),
    };
    Services {
        store,
        embeddings,
        duplicate_threshold: config.duplicate_threshold,
        packer: config.packer.clone(),
    }
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let services = start_services(config, store, &shutdown);
    serve_services(config, services, listener, shutdown).await
}

/// Serves HTTP with services already built (their embedder may still be loading).
pub async fn serve_services(
    config: &Config,
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = crate::http::router(config, services, shutdown.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("the HTTP server stopped with an error")
}

/// `codifier reembed`: gives every memory a vector of the configured model, with progress.
/// Resumable: an interrupted run picks up where it stopped.
pub async fn reembed(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let loader = embedding_loader(&config.embeddings).context(
        "no embedding provider is configured: set CODIFIER_EMBEDDINGS (local or openai)",
    )?;
    let embedder = tokio::task::spawn_blocking(loader).await??;
    let model = embedder.model().clone();
    eprintln!(
        "embedding with {} ({} dimensions)",
        model.name, model.dimensions
    );
    store.prepare_vectors(&model).await?;
    let started = std::time::Instant::now();
    let count =
        crate::embeddings::service::backfill(&store, embedder.as_ref(), |project, done, total| {
            eprintln!("  {project}: {done}/{total}");
        })
        .await?;
    eprintln!(
        "embedded {count} memories in {:.1} s; every memory now has a {} vector",
        started.elapsed().as_secs_f64(),
        model.name
    );
    Ok(())
}

/// `codifier serve`: bind, announce the address, serve until SIGINT or SIGTERM.
pub async fn run_http(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (CODIFIER_LISTEN / PORT)",
            config.listen
        )
    })?;
    let address = listener.local_addr()?;
    if let Some(file) = &config.addr_file {
        std::fs::write(file, address.to_string())
            .with_context(|| format!("cannot write CODIFIER_ADDR_FILE {}", file.display()))?;
    }
    if config.operator_token.is_none() {
        tracing::warn!(
            "API_AUTH_TOKEN is not set: only API keys made with `codifier keys create` can connect"
        );
    }
    tracing::info!(%address, allowed_hosts = ?config.allowed_hosts, "codifier listening: MCP at /mcp (Streamable HTTP) and /sse (legacy SSE)");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    serve(&config, store, listener, shutdown).await?;
    tracing::info!("codifier stopped");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
}

/// `codifier stdio`: MCP over stdin/stdout as the local user.
pub async fn run_stdio(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let shutdown = CancellationToken::new();
    let services = start_services(&config, store, &shutdown);
    let service = CodifierServer::for_local(services)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP handshake on stdio failed")?;
    service
        .waiting()
        .await
        .context("the stdio session ended with an error")?;
    Ok(())
}
