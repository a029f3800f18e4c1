//! The server's background failing of tasks past their `timeout_seconds`. Like the embedding
//! backlog worker it reads across projects by listing them and acting in each through the
//! store's tenant operations (so row-level security still confines each statement to one
//! project). It sleeps until the nearest deadline a task started in this process has (a task
//! started elsewhere, or before a restart, is caught by a sweep at start and every
//! [`FALLBACK`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{Actor, PlanTask, Store, StoreResult, now};

/// The longest the sweeper sleeps.
pub const FALLBACK: Duration = Duration::from_secs(60);

/// The nearest task deadline this process knows of, and a bell for a nearer one.
#[derive(Default)]
pub struct Deadlines {
    next: Mutex<Option<DateTime<Utc>>>,
    wake: Notify,
}

impl Deadlines {
    /// Tells the sweeper a task must end by `at`.
    pub fn note(&self, at: DateTime<Utc>) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if next.is_none_or(|known| at < known) {
            *next = Some(at);
            self.wake.notify_one();
        }
    }

    /// How long to sleep before the next sweep; forgets a deadline that has passed.
    fn wait(&self) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        match *next {
            Some(at) => match (at - now()).to_std() {
                Ok(left) => left.min(FALLBACK),
                Err(_) => {
                    *next = None;
                    Duration::ZERO
                }
            },
            None => FALLBACK,
        }
    }
}

/// Fails every overdue in-progress task of every project; returns them.
pub async fn sweep(store: &Arc<dyn Store>) -> StoreResult<Vec<PlanTask>> {
    let actor = Actor {
        label: "server".into(),
        tool: "task_timeout".into(),
    };
    let at = now();
    let mut failed = Vec::new();
    for project in store.list_projects().await? {
        failed.extend(store.fail_overdue_tasks(project.id, &actor, at).await?);
    }
    Ok(failed)
}

/// Runs the sweeper until `shutdown`.
pub fn start(store: Arc<dyn Store>, deadlines: Arc<Deadlines>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            match sweep(&store).await {
                Ok(failed) if failed.is_empty() => {}
                Ok(failed) => {
                    tracing::info!(count = failed.len(), "failed tasks past their timeout")
                }
                Err(error) => {
                    tracing::warn!(%error, "the task timeout sweep failed; retrying later")
                }
            }
            // A nearer deadline noted while waiting only shortens the wait.
            loop {
                let wait = deadlines.wait();
                if wait.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = deadlines.wake.notified() => continue,
                    _ = tokio::time::sleep(wait) => break,
                }
            }
            // Past the deadline by a hair, so the task's own row is due when read.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
