//! The in-process wake-ups after a commit: live event streams and the webhook deliverer wait on
//! [`subscribe`] (and also poll, for changes another server made to the same database). Each
//! deliverer also holds a [`Queued`] set that names the projects in which a transaction of this
//! process queued deliveries, so it visits those at once rather than every project.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::watch;
use uuid::Uuid;

static COMMITS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

type Projects = Mutex<HashSet<Uuid>>;

static QUEUED: Mutex<Vec<Weak<Projects>>> = Mutex::new(Vec::new());

/// Says that a transaction committed (called by the store after every commit).
pub fn committed() {
    COMMITS.send_modify(|count| *count = count.wrapping_add(1));
}

/// A receiver whose `changed()` resolves after the next commit in this process.
pub fn subscribe() -> watch::Receiver<u64> {
    COMMITS.subscribe()
}

/// Says that a transaction queued webhook deliveries in `project` (before it commits, or rolls
/// back: a deliverer then finds nothing there).
pub fn queued(project: Uuid) {
    let mut sets = QUEUED.lock().unwrap_or_else(|e| e.into_inner());
    sets.retain(|set| match set.upgrade() {
        Some(set) => {
            set.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(project);
            true
        }
        None => false,
    });
}

/// The projects with deliveries queued in this process since the last [`take`](Self::take).
pub struct Queued(Arc<Projects>);

impl Queued {
    /// Starts collecting.
    pub fn register() -> Self {
        let set = Arc::<Projects>::default();
        QUEUED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&set));
        Self(set)
    }

    /// The projects named since the last call.
    pub fn take(&self) -> HashSet<Uuid> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_project_reaches_every_registered_set_until_taken() {
        let (first, second) = (Queued::register(), Queued::register());
        let project = Uuid::new_v4();
        queued(project);
        assert!(first.take().contains(&project));
        assert!(second.take().contains(&project));
        assert!(!first.take().contains(&project), "taken once");
    }
}
