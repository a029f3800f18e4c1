//! Putting the parts together: logging, opening and migrating the store, and running the HTTP
//! server (on a bound listener, until a shutdown signal) or the stdio server.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rmcp::ServiceExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EmbeddingsConfig, LogFormat, redact_url};
use crate::embeddings::fetch::FetchConfig;
use crate::embeddings::service::{Embeddings, Loader, ModelFiles, Startup};
use crate::embeddings::{Embedder, http::HttpEmbedder};
use crate::knowledge::memories::Services;
use crate::mcp::CodifierServer;
use crate::store::{self, Store};

/// Starts logging to stderr (stdout is the MCP channel in stdio mode).
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter);
    // Colour codes only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the configured store, timed for `/metrics`, and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(&config.database_url);
    let store = store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database at {shown} (DATABASE_URL)"))?;
    let store: Arc<dyn Store> = Arc::new(crate::metrics::MeteredStore::new(store));
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
        EmbeddingsConfig::Local { model_dir, fetch } => Some(Box::new(move || {
            // The server fetches before loading (reporting progress in /health); commands that
            // load directly (`bench`) fetch here, on this blocking thread.
            if let (false, Some(fetch), Ok(runtime)) = (
                crate::embeddings::local::files_present(&model_dir),
                fetch,
                tokio::runtime::Handle::try_current(),
            ) {
                let report = |progress: &crate::embeddings::fetch::Progress| {
                    if progress.percent().is_multiple_of(10) {
                        tracing::info!("downloading the embedding model: {progress}");
                    }
                };
                runtime
                    .block_on(crate::embeddings::fetch::fetch(&model_dir, &fetch, &report))
                    .map_err(|failure| {
                        crate::embeddings::EmbedError::Config(failure.to_string())
                    })?;
            }
            crate::embeddings::load_local(&model_dir)
        })),
        EmbeddingsConfig::Http(http) => Some(Box::new(move || {
            Ok(Arc::new(HttpEmbedder::new(http)?) as Arc<dyn Embedder>)
        })),
    }
}

/// Starts the configured embedding provider in the background (fetching the local model's
/// files first when they are missing), and says in the log which one it is.
pub fn start_embeddings(
    config: &EmbeddingsConfig,
    store: Arc<dyn Store>,
    shutdown: &CancellationToken,
) -> Arc<Embeddings> {
    let (provider, model) = config.provider_and_model();
    tracing::info!(provider, model = %model, "embeddings: {}", config.describe());
    let Some(loader) = embedding_loader(config) else {
        return Embeddings::disabled();
    };
    let files = match config {
        EmbeddingsConfig::Local { model_dir, fetch } => Some(ModelFiles {
            dir: model_dir.clone(),
            fetch: fetch.clone(),
        }),
        _ => None,
    };
    let startup = Startup {
        provider: provider.to_owned(),
        model,
        files,
        loader,
    };
    Embeddings::start_with(startup, store, shutdown.child_token())
}

/// Fetches the local model's files into `dir` in the foreground (`codifier models fetch`,
/// `codifier reembed`), with progress on stderr.
pub async fn fetch_model(dir: &Path, fetch: Option<&FetchConfig>) -> anyhow::Result<()> {
    let Some(fetch) = fetch else {
        anyhow::ensure!(
            crate::embeddings::local::files_present(dir),
            "the model files are missing from {} and downloading is off (CODIFIER_MODEL_FETCH=off)",
            dir.display()
        );
        return Ok(());
    };
    let report = |progress: &crate::embeddings::fetch::Progress| {
        if progress.percent().is_multiple_of(10) {
            eprintln!("  {progress} ({}%)", progress.percent());
        }
    };
    match crate::embeddings::fetch::fetch(dir, fetch, &report).await {
        Ok(Some(source)) => eprintln!("fetched and verified the model files from {source}"),
        Ok(None) => eprintln!("the model files are already there and verified"),
        Err(failure) => anyhow::bail!("{failure}"),
    }
    Ok(())
}

/// The services tools call: the store, the embedding provider (loading in the background) and
/// the playbook engine. Fails when a configured playbook or template does not load.
pub fn start_services(
    config: &Config,
    store: Arc<dyn Store>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Services> {
    let embeddings = start_embeddings(&config.embeddings, store.clone(), shutdown);
    let athena = config.athena.clone().map(crate::athena::Athena::new);
    let playbooks = playbook_engine(config, store.clone(), embeddings.clone(), athena.clone())?;
    Ok(Services {
        store,
        embeddings,
        duplicate_threshold: config.duplicate_threshold,
        athena,
        playbooks,
        packer: config.packer.clone(),
    })
}

/// The playbook engine: the shipped playbooks plus CODIFIER_PLAYBOOKS_DIR / CODIFIER_TEMPLATES_DIR,
/// with the capabilities its steps call: the native packer for `skill-invoke` steps, and the
/// shared Athena sidecar for `data-query` steps (when one is configured; otherwise those steps
/// say there is none).
pub fn playbook_engine(
    config: &Config,
    store: Arc<dyn Store>,
    embeddings: Arc<Embeddings>,
    athena: Option<Arc<crate::athena::Athena>>,
) -> anyhow::Result<Arc<crate::playbooks::Engine>> {
    use crate::playbooks::{Catalog, Engine, steps};
    let settings = &config.playbooks;
    let catalog = Catalog::load(
        settings.playbooks_dir.as_deref(),
        settings.templates_dir.as_deref(),
    )
    .context("the playbooks do not load (CODIFIER_PLAYBOOKS_DIR / CODIFIER_TEMPLATES_DIR)")?;
    Ok(Arc::new(
        Engine::new(
            Arc::new(catalog),
            store.clone(),
            Arc::new(crate::knowledge::pack_skill::PackerSkills {
                store: store.clone(),
                settings: config.packer.clone(),
            }),
            match athena {
                Some(athena) => Arc::new(crate::athena::playbook::AthenaDataSource(athena)),
                None => Arc::new(steps::NoDataSource),
            },
            embeddings,
        )
        .with_sampling(settings.sampling.then_some(settings.sampling_timeout)),
    ))
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let services = start_services(config, store, &shutdown)?;
    serve_services(config, services, listener, shutdown).await
}

/// Serves HTTP with services already built (their embedder may still be loading).
pub async fn serve_services(
    config: &Config,
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let athena = services.athena.clone();
    let router = crate::http::router(config, services, shutdown.clone());
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace = config.shutdown_grace;
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    // After a shutdown signal the listener closes at once and open requests may finish, but
    // only for `grace`: a stuck request must not keep the process from stopping.
    let served = tokio::select! {
        result = server => result.context("the HTTP server stopped with an error"),
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still open after the grace period were cut off");
            Ok(())
        }
    };
    if let Some(athena) = athena {
        athena.shutdown().await;
    }
    served
}

/// `codifier reembed`: gives every memory a vector of the configured model, with progress.
/// Resumable: an interrupted run picks up where it stopped.
pub async fn reembed(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    if let EmbeddingsConfig::Local { model_dir, fetch } = &config.embeddings
        && !crate::embeddings::local::files_present(model_dir)
    {
        fetch_model(model_dir, fetch.as_ref()).await?;
    }
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
    if let Some(metrics_address) = config.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_address).await.with_context(|| {
            format!("cannot listen on {metrics_address} (CODIFIER_METRICS_LISTEN)")
        })?;
        tracing::info!(address = %metrics_address, "metrics at /metrics (no key: keep this address private)");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, crate::http::metrics_router())
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
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
    let services = start_services(&config, store, &shutdown)?;
    let service = CodifierServer::for_local(services)
        .counted(crate::metrics::Transport::Stdio)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP handshake on stdio failed")?;
    service
        .waiting()
        .await
        .context("the stdio session ended with an error")?;
    Ok(())
}
