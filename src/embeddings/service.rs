//! The embedding service: fetches the local model's files when they are missing and loads the
//! configured provider, both in the background (so start-up, `/health` and the MCP handshake
//! never wait for a model), says where it stands ([`EmbeddingStatus`]), and runs a worker that gives every live memory a
//! vector of the current model — memories written before the model was ready, and memories of
//! an earlier model after the configuration changed. `codifier reembed` runs the same backfill
//! in the foreground, with progress.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::fetch::{FetchConfig, Progress};
use super::{EmbedError, Embedder};
use crate::domain::{EmbeddingJob, EmbeddingModel, Project};
use crate::store::{Store, StoreResult};

/// How many memories are embedded per batch.
pub const BACKFILL_BATCH: u32 = 32;
/// How often [`backfill`] counts a project's progress while it runs.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long a batch of memories stays claimed by the server embedding it (other servers on the
/// same database skip them meanwhile); a server that dies mid-batch leaves them to another
/// after this long.
pub const EMBEDDING_CLAIM: std::time::Duration = std::time::Duration::from_secs(300);

/// Where the provider stands.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingStatus {
    /// No provider is configured: full-text search only.
    Disabled,
    /// The local model's files are being downloaded.
    Downloading(Progress),
    Loading,
    Ready,
    /// There is no embedder, for this reason; full-text search only.
    Unavailable {
        cause: Cause,
        reason: String,
    },
}

/// Why there is no embedder, in one word for machines (`/health`'s `cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The model files are missing and downloading is off (`CODIFIER_MODEL_FETCH=off`).
    Offline,
    /// A source served a file that is not the pinned one.
    DigestMismatch,
    /// No model source could be reached.
    NoSourceReachable,
    /// The download failed otherwise (disk, a source answering with something unusable).
    DownloadFailed,
    /// The provider could not be loaded or configured.
    LoadFailed,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::DigestMismatch => "digest_mismatch",
            Self::NoSourceReachable => "no_source_reachable",
            Self::DownloadFailed => "download_failed",
            Self::LoadFailed => "load_failed",
        }
    }
}

/// A way to build the configured provider; run once, on a blocking thread.
pub type Loader = Box<dyn FnOnce() -> Result<Arc<dyn Embedder>, EmbedError> + Send>;

/// The local model's files, which may have to be fetched before the [`Loader`] runs.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    /// How to fetch them when missing; `None` when downloading is off.
    pub fetch: Option<FetchConfig>,
}

/// What [`Embeddings::start_with`] starts: the provider's name and model (for `/health` and
/// the logs), the files to fetch first if any, and the loader.
pub struct Startup {
    /// `local` or `openai` (the `CODIFIER_EMBEDDINGS` value).
    pub provider: String,
    /// The model it will serve.
    pub model: String,
    pub files: Option<ModelFiles>,
    pub loader: Loader,
}

/// The current embedder, once loaded, and the backfill worker's wake-up call.
pub struct Embeddings {
    current: RwLock<Option<Arc<dyn Embedder>>>,
    status: Mutex<EmbeddingStatus>,
    wake: Notify,
    /// The provider and model, as configured (`None` when disabled).
    provider: Option<(String, String)>,
}

impl Embeddings {
    fn new(status: EmbeddingStatus, provider: Option<(String, String)>) -> Self {
        Self {
            current: RwLock::new(None),
            status: Mutex::new(status),
            wake: Notify::new(),
            provider,
        }
    }

    /// No provider: full-text search only.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self::new(EmbeddingStatus::Disabled, None))
    }

    /// A provider that is ready now (tests, `codifier reembed`).
    pub fn ready(embedder: Arc<dyn Embedder>) -> Arc<Self> {
        let model = embedder.model().name.clone();
        let service = Self::new(EmbeddingStatus::Ready, Some(("given".into(), model)));
        *service.current.write().unwrap_or_else(|e| e.into_inner()) = Some(embedder);
        Arc::new(service)
    }

    /// Starts loading with `loader` in the background and keeps the store's vectors up to date
    /// until `shutdown`. Returns at once.
    pub fn start(loader: Loader, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let startup = Startup {
            provider: "given".into(),
            model: "unknown until loaded".into(),
            files: None,
            loader,
        };
        Self::start_with(startup, store, shutdown)
    }

    /// Fetches the model's files when they are missing (see [`super::fetch`]), loads the
    /// provider, then keeps the store's vectors up to date until `shutdown` — all in the
    /// background: returns at once. Until the provider is ready, search uses words only and
    /// says why; memories written meanwhile are embedded once it is.
    pub fn start_with(
        startup: Startup,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let Startup {
            provider,
            model,
            files,
            loader,
        } = startup;
        let service = Arc::new(Self::new(EmbeddingStatus::Loading, Some((provider, model))));
        let worker = service.clone();
        tokio::spawn(async move {
            let fetched = match &files {
                Some(files) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    fetched = worker.fetch_files(files) => fetched,
                },
                None => Ok(()),
            };
            if let Err((cause, reason)) = fetched {
                tracing::error!(cause = cause.as_str(), %reason, "the embedding model is unavailable; full-text search only");
                worker.set_status(EmbeddingStatus::Unavailable { cause, reason });
                return;
            }
            worker.set_status(EmbeddingStatus::Loading);
            let loaded = tokio::task::spawn_blocking(loader)
                .await
                .unwrap_or_else(|error| {
                    Err(EmbedError::Config(format!("loader panicked: {error}")))
                });
            let embedder = match loaded {
                Ok(embedder) => embedder,
                Err(error) => {
                    tracing::error!(%error, "the embedding provider could not be loaded; full-text search only");
                    worker.set_status(EmbeddingStatus::Unavailable {
                        cause: Cause::LoadFailed,
                        reason: format!("the embedding provider failed to load: {error}"),
                    });
                    return;
                }
            };
            let model = embedder.model().clone();
            tracing::info!(model = %model.name, dimensions = model.dimensions, "embedding provider ready");
            *worker.current.write().unwrap_or_else(|e| e.into_inner()) = Some(embedder.clone());
            worker.set_status(EmbeddingStatus::Ready);
            worker.run_backfill(store, embedder, shutdown).await;
        });
        service
    }

    /// Downloads the model's files when some are missing, reporting progress in the status
    /// and the log.
    async fn fetch_files(&self, files: &ModelFiles) -> Result<(), (Cause, String)> {
        if super::local::files_present(&files.dir) {
            return Ok(());
        }
        let Some(config) = &files.fetch else {
            return Err((
                Cause::Offline,
                format!(
                    "the model files are missing from {} and downloading is off (CODIFIER_MODEL_FETCH=off): \
                     put them there (`codifier models fetch` on a connected machine, or scripts/install-model.sh) and restart",
                    files.dir.display()
                ),
            ));
        };
        let report = |progress: &Progress| {
            if progress.percent().is_multiple_of(10) || progress.bytes == progress.total {
                tracing::info!(source = %progress.source, file = %progress.file, bytes = progress.bytes, total = progress.total, "downloading the embedding model");
            }
            self.set_status(EmbeddingStatus::Downloading(progress.clone()));
        };
        match super::fetch::fetch(&files.dir, config, &report).await {
            Ok(_) => Ok(()),
            Err(failure) => {
                let cause = if failure.digest_mismatch() {
                    Cause::DigestMismatch
                } else if failure.unreachable() {
                    Cause::NoSourceReachable
                } else {
                    Cause::DownloadFailed
                };
                Err((
                    cause,
                    format!("the embedding model could not be downloaded: {failure}"),
                ))
            }
        }
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
            EmbeddingStatus::Downloading(progress) => format!(
                "the embedding model is downloading ({progress}); meaning search starts when it is ready"
            ),
            EmbeddingStatus::Loading => "the embedding model is still loading".into(),
            EmbeddingStatus::Ready => "the embedding provider is ready".into(),
            EmbeddingStatus::Unavailable { reason, .. } => reason,
        }
    }

    /// The provider's state for `/health`: `state` is `disabled`, `downloading`, `loading`,
    /// `ready` or `unavailable` (with a `cause` and a `reason`).
    pub fn describe(&self) -> serde_json::Value {
        let mut described = match self.status() {
            EmbeddingStatus::Disabled => json!({ "state": "disabled" }),
            EmbeddingStatus::Downloading(progress) => {
                json!({ "state": "downloading", "download": progress })
            }
            EmbeddingStatus::Loading => json!({ "state": "loading" }),
            EmbeddingStatus::Ready => json!({ "state": "ready" }),
            EmbeddingStatus::Unavailable { cause, reason } => {
                json!({ "state": "unavailable", "cause": cause.as_str(), "reason": reason })
            }
        };
        let model = self.current().map(|embedder| embedder.model().name.clone());
        if let Some((provider, configured)) = &self.provider {
            described["provider"] = json!(provider);
            described["model"] = json!(model.unwrap_or_else(|| configured.clone()));
        } else {
            described["provider"] = json!("none");
        }
        described
    }

    /// Tells the worker there is something new to embed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Prepares the store for the model (its index; memories with a vector of another model
    /// made to wait), then embeds what waits whenever woken, and every minute. A preparation
    /// that failed is tried again before a pass, at most once a minute, until it succeeds:
    /// until then memories of an earlier model are not found.
    async fn run_backfill(
        &self,
        store: Arc<dyn Store>,
        embedder: Arc<dyn Embedder>,
        shutdown: CancellationToken,
    ) {
        let mut prepared = false;
        let mut tried: Option<std::time::Instant> = None;
        loop {
            if !prepared && tried.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                tried = Some(std::time::Instant::now());
                match store.prepare_vectors(embedder.model()).await {
                    Ok(()) => prepared = true,
                    Err(error) => {
                        tracing::error!(%error, "could not prepare the store for the model's vectors; trying again in a minute")
                    }
                }
            }
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

/// Gives every live memory of every project that waits for a vector one of `embedder`'s model
/// (after [`prepare_vectors`](crate::store::EmbeddingStore::prepare_vectors) for that model,
/// which makes memories with a vector of another model wait). Resumable: it only ever picks
/// memories that wait, so an interrupted run continues where it stopped.
/// `progress(project name, done, total)` is called after a project's last batch and at most every
/// [`PROGRESS_EVERY`] before it. Returns how many it embedded.
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
    // The skills library is no one's project, but its memories are searched by meaning too.
    let mut projects = store.list_projects().await?;
    if let Some(library) = store
        .find_project(&crate::domain::guardrail::LIBRARY_PROJECT.to_string())
        .await?
    {
        projects.push(library);
    }
    for project in projects {
        embedded +=
            backfill_project(store, embedder, &model, &project, &progress, &backlog).await?;
    }
    Ok(embedded)
}

/// Embeds one project's waiting memories, a batch of [`BACKFILL_BATCH`] at a time. The store's
/// work overlaps the model's: while batch N is embedded, batch N − 1's vectors are stored (one
/// transaction) and batch N + 1 is claimed, so the model, the bound, seldom waits for the
/// database (each claim holds its memories, so no two batches share one). When one of them
/// fails, the pass ends with that error, keeping what it can: a batch embedded before the next
/// claim failed is stored, and every claim still held is given back.
async fn backfill_project(
    store: &Arc<dyn Store>,
    embedder: &dyn Embedder,
    model: &EmbeddingModel,
    project: &Project,
    progress: &impl Fn(&str, u64, u64),
    backlog: &impl Fn(uuid::Uuid, u64),
) -> anyhow::Result<u64> {
    let claim = || store.claim_embeddings(project.id, BACKFILL_BATCH, EMBEDDING_CLAIM);
    let mut embedded = 0;
    let mut counted: Option<std::time::Instant> = None;
    let mut stored: Vec<(EmbeddingJob, Vec<f32>)> = Vec::new();
    let mut jobs = claim().await?;
    while !jobs.is_empty() {
        let texts: Vec<String> = jobs.iter().map(|job| job.text.clone()).collect();
        // The count reads every row of the project (335 ms at 100,000 memories on SQLite, more
        // than embedding a batch): at most every few seconds, beside the model, and at the end.
        let due = !stored.is_empty() && counted.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        let store_previous = async {
            store.store_embeddings(project.id, model, &stored).await?;
            if due {
                count_progress(store, model, project, progress, backlog).await?;
            }
            anyhow::Ok(())
        };
        let (vectors, previous, next) =
            tokio::join!(embedder.embed(&texts), store_previous, claim());
        if due {
            counted = Some(std::time::Instant::now());
        }
        match (vectors, previous, next) {
            (Ok(vectors), Ok(()), Ok(next)) => {
                embedded += jobs.len() as u64;
                stored = jobs.into_iter().zip(vectors).collect();
                jobs = next;
            }
            // Only the next claim failed, and it took nothing: this batch's vectors are made,
            // so they are stored before giving up (and their claims given back if that fails).
            (Ok(vectors), Ok(()), Err(error)) => {
                let done: Vec<(EmbeddingJob, Vec<f32>)> = jobs.into_iter().zip(vectors).collect();
                store_or_give_back(store, model, project, &done).await;
                return Err(error.into());
            }
            // Otherwise every claim this loop holds is given back (see [`held`]).
            (Err(error), previous, next) => {
                let unstored = previous.is_err().then_some(stored.as_slice());
                give_back(store, project, &held(&jobs, &next, unstored)).await;
                return Err(error.into());
            }
            (Ok(_), Err(error), next) => {
                give_back(store, project, &held(&jobs, &next, Some(&stored))).await;
                return Err(error);
            }
        }
    }
    if let Err(error) = store.store_embeddings(project.id, model, &stored).await {
        let held: Vec<uuid::Uuid> = stored.iter().map(|(job, _)| job.id).collect();
        give_back(store, project, &held).await;
        return Err(error.into());
    }
    if embedded == 0 {
        backlog(project.id, 0);
    } else {
        count_progress(store, model, project, progress, backlog).await?;
    }
    Ok(embedded)
}

fn jobs_ids(jobs: &[EmbeddingJob]) -> Vec<uuid::Uuid> {
    jobs.iter().map(|job| job.id).collect()
}

/// The claims a failed pass holds, to give back so the next pass, here or on another server,
/// takes those memories at once: the batch being embedded, the next one if its claim
/// succeeded, and the previous one when storing it failed (its transaction rolled back, so its
/// claims stand). When only the count after that store failed, giving those back changes
/// nothing: storing ended their claims already.
fn held(
    jobs: &[EmbeddingJob],
    next: &StoreResult<Vec<EmbeddingJob>>,
    unstored: Option<&[(EmbeddingJob, Vec<f32>)]>,
) -> Vec<uuid::Uuid> {
    let mut ids = jobs_ids(jobs);
    if let Ok(next) = next {
        ids.extend(jobs_ids(next));
    }
    ids.extend(unstored.unwrap_or_default().iter().map(|(job, _)| job.id));
    ids
}

/// Stores the vectors of a batch on the way out of a failed pass; when that fails too, gives
/// their claims back.
async fn store_or_give_back(
    store: &Arc<dyn Store>,
    model: &EmbeddingModel,
    project: &Project,
    done: &[(EmbeddingJob, Vec<f32>)],
) {
    if let Err(error) = store.store_embeddings(project.id, model, done).await {
        tracing::warn!(%error, "could not store a batch of vectors; giving their memories back");
        let held: Vec<uuid::Uuid> = done.iter().map(|(job, _)| job.id).collect();
        give_back(store, project, &held).await;
    }
}

/// Ends the claims on `ids` so another pass takes those memories at once; a failure is only
/// logged, since the claims run out by themselves.
async fn give_back(store: &Arc<dyn Store>, project: &Project, ids: &[uuid::Uuid]) {
    if let Err(release) = store.release_embeddings(project.id, ids).await {
        tracing::warn!(%release, "could not give back embedding claims; they run out by themselves");
    }
}

/// Counts a project's progress for the backlog gauge and the caller's `progress`.
async fn count_progress(
    store: &Arc<dyn Store>,
    model: &EmbeddingModel,
    project: &Project,
    progress: &impl Fn(&str, u64, u64),
    backlog: &impl Fn(uuid::Uuid, u64),
) -> anyhow::Result<()> {
    let (done, total) = store.embedding_progress(project.id, model).await?;
    backlog(project.id, total.saturating_sub(done));
    progress(&project.name, done, total);
    Ok(())
}
