//! The embedding service: loads the configured provider in the background (so start-up and the
//! MCP handshake never wait for a model), and runs a worker that gives every live memory a
//! vector of the current model — memories written before the model was ready, and memories of
//! an earlier model after the configuration changed. `codifier reembed` runs the same backfill
//! in the foreground, with progress.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{EmbedError, Embedder};
use crate::store::Store;

/// How many memories are embedded per batch.
pub const BACKFILL_BATCH: u32 = 32;

/// Where the provider stands.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingStatus {
    /// No provider is configured: full-text search only.
    Disabled,
    Loading,
    Ready,
    Failed(String),
}

/// A way to build the configured provider; run once, on a blocking thread.
pub type Loader = Box<dyn FnOnce() -> Result<Arc<dyn Embedder>, EmbedError> + Send>;

/// The current embedder, once loaded, and the backfill worker's wake-up call.
pub struct Embeddings {
    current: RwLock<Option<Arc<dyn Embedder>>>,
    status: Mutex<EmbeddingStatus>,
    wake: Notify,
}

impl Embeddings {
    /// No provider: full-text search only.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(None),
            status: Mutex::new(EmbeddingStatus::Disabled),
            wake: Notify::new(),
        })
    }

    /// A provider that is ready now (tests, `codifier reembed`).
    pub fn ready(embedder: Arc<dyn Embedder>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Some(embedder)),
            status: Mutex::new(EmbeddingStatus::Ready),
            wake: Notify::new(),
        })
    }

    /// Starts loading with `loader` in the background and keeps the store's vectors up to date
    /// until `shutdown`. Returns at once.
    pub fn start(loader: Loader, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let service = Arc::new(Self {
            current: RwLock::new(None),
            status: Mutex::new(EmbeddingStatus::Loading),
            wake: Notify::new(),
        });
        let worker = service.clone();
        tokio::spawn(async move {
            let loaded = tokio::task::spawn_blocking(loader)
                .await
                .unwrap_or_else(|error| {
                    Err(EmbedError::Config(format!("loader panicked: {error}")))
                });
            let embedder = match loaded {
                Ok(embedder) => embedder,
                Err(error) => {
                    tracing::error!(%error, "the embedding provider could not be loaded; full-text search only");
                    worker.set_status(EmbeddingStatus::Failed(error.to_string()));
                    return;
                }
            };
            let model = embedder.model().clone();
            tracing::info!(model = %model.name, dimensions = model.dimensions, "embedding provider ready");
            *worker.current.write().unwrap_or_else(|e| e.into_inner()) = Some(embedder.clone());
            worker.set_status(EmbeddingStatus::Ready);
            if let Err(error) = store.prepare_vectors(&model).await {
                tracing::error!(%error, "could not prepare the vector index");
            }
            worker.run_backfill(store, embedder, shutdown).await;
        });
        service
    }

    fn set_status(&self, status: EmbeddingStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    pub fn status(&self) -> EmbeddingStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The embedder, when one is ready.
    pub fn current(&self) -> Option<Arc<dyn Embedder>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why there is no embedder, in words for a tool result.
    pub fn unavailable_reason(&self) -> String {
        match self.status() {
            EmbeddingStatus::Disabled => {
                "no embedding provider is configured (CODIFIER_EMBEDDINGS)".into()
            }
            EmbeddingStatus::Loading => "the embedding model is still loading".into(),
            EmbeddingStatus::Ready => "the embedding provider is ready".into(),
            EmbeddingStatus::Failed(error) => {
                format!("the embedding provider failed to load: {error}")
            }
        }
    }

    /// Tells the worker there is something new to embed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn run_backfill(
        &self,
        store: Arc<dyn Store>,
        embedder: Arc<dyn Embedder>,
        shutdown: CancellationToken,
    ) {
        loop {
            match backfill(&store, embedder.as_ref(), |_, _, _| {}).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "embedded memories in the background"),
                Err(error) => {
                    tracing::warn!(%error, "background embedding paused; retrying shortly")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }
}

/// Gives every live memory of every project a vector of `embedder`'s model. Resumable: it only
/// ever picks memories that lack one, so an interrupted run continues where it stopped.
/// `progress(project name, done, total)` is called after each batch. Returns how many it embedded.
pub async fn backfill(
    store: &Arc<dyn Store>,
    embedder: &dyn Embedder,
    progress: impl Fn(&str, u64, u64),
) -> anyhow::Result<u64> {
    let model = embedder.model().clone();
    let mut embedded = 0;
    // The backlog gauge is fed from what this loop reads anyway: a project with no pending
    // job has none waiting, and each batch's progress gives the rest.
    let backlog = |project: uuid::Uuid, waiting: u64| {
        crate::metrics::global().set_embedding_backlog(project, waiting)
    };
    for project in store.list_projects().await? {
        loop {
            let jobs = store
                .pending_embeddings(project.id, &model, BACKFILL_BATCH)
                .await?;
            if jobs.is_empty() {
                backlog(project.id, 0);
                break;
            }
            let texts: Vec<String> = jobs.iter().map(|job| job.text.clone()).collect();
            let vectors = embedder.embed(&texts).await?;
            for (job, vector) in jobs.iter().zip(&vectors) {
                store
                    .store_embedding(project.id, job, &model, vector)
                    .await?;
            }
            embedded += jobs.len() as u64;
            let (done, total) = store.embedding_progress(project.id, &model).await?;
            backlog(project.id, total.saturating_sub(done));
            progress(&project.name, done, total);
            if (jobs.len() as u32) < BACKFILL_BATCH {
                break;
            }
        }
    }
    Ok(embedded)
}
