//! Putting the parts together: logging, opening and migrating the store, the application's
//! state ([`App`]: the knowledge base, the Athena sidecar, the playbook engine and the packer's
//! settings), and running the HTTP server (on a bound listener, until a shutdown signal) or the
//! stdio server.

pub mod pack_skill;

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EmbeddingsConfig, LogFormat, redact_url};
use crate::embeddings::service::{Embeddings, Loader, ModelFiles, Startup};
use crate::embeddings::{Embedder, http::HttpEmbedder};
use crate::knowledge::KnowledgeBase;
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

/// The application's state, shared by every connection: what tools and commands call.
#[derive(Clone)]
pub struct App {
    /// The store and the embeddings that index it: what memory services need.
    pub knowledge: KnowledgeBase,
    /// The Athena sidecar client, when one is configured (`query_data`, playbook data queries).
    pub athena: Option<Arc<crate::athena::Athena>>,
    /// The playbook engine (catalog, runner and the capabilities its steps call).
    pub playbooks: Arc<crate::playbooks::Engine>,
    /// What the operator allows `pack_repo` (private networks, limits, forge tokens).
    pub packer: crate::packer::PackerSettings,
    /// The compiled validations of each project, for `validate_code`.
    pub validator: Arc<crate::guardrails::validate::Validator>,
    /// The skills library as the guardrail tools read it, rebuilt when an import changes it.
    pub library: Arc<crate::guardrails::index::LibraryCache>,
    /// The nearest task deadline, for the sweeper that fails tasks past their timeout.
    pub task_deadlines: Arc<crate::plans::sweep::Deadlines>,
    /// How event streams and webhook deliveries run.
    pub events: crate::events::EventsConfig,
    /// The open event listeners of this server, at most `events.max_listeners`.
    pub listeners: crate::events::listeners::Listeners,
    /// Seals the `requestState` of input-required results (protocol 2026-07-28).
    pub request_states: Arc<crate::mcp::RequestStates>,
}

impl App {
    /// The store, the embedding provider (loading in the background), the playbook engine and
    /// the webhook deliverer (in the background, until `shutdown`). Fails when a configured
    /// playbook or template does not load.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let embeddings = start_embeddings(&config.embeddings, store.clone(), shutdown);
        let athena = config.athena.clone().map(crate::athena::Athena::new);
        let playbooks = playbook_engine(config, store.clone(), embeddings.clone(), athena.clone())?;
        let task_deadlines = Arc::new(crate::plans::sweep::Deadlines::default());
        crate::plans::sweep::start(
            store.clone(),
            task_deadlines.clone(),
            shutdown.child_token(),
        );
        crate::events::deliver::Deliverer::new(store.clone(), config.events.clone())
            .spawn(shutdown.child_token());
        let request_states = Arc::new(crate::mcp::RequestStates::new(
            &config.playbooks.request_state,
            store.clone(),
        ));
        Ok(App {
            request_states,
            knowledge: KnowledgeBase {
                store,
                embeddings,
                duplicate_threshold: config.duplicate_threshold,
            },
            athena,
            playbooks,
            packer: config.packer.clone(),
            validator: Default::default(),
            library: Arc::default(),
            task_deadlines,
            events: config.events.clone(),
            listeners: crate::events::listeners::Listeners::new(config.events.max_listeners),
        })
    }

    /// The store every service reads and writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.knowledge.store
    }
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
            Arc::new(pack_skill::PackerSkills {
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
