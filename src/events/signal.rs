//! The in-process wake-up after a commit: live event streams and the webhook deliverer wait on
//! it (and also poll, for changes another server made to the same database).

use std::sync::LazyLock;

use tokio::sync::watch;

static COMMITS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Says that a transaction committed (called by the store after every commit).
pub fn committed() {
    COMMITS.send_modify(|count| *count = count.wrapping_add(1));
}

/// A receiver whose `changed()` resolves after the next commit in this process.
pub fn subscribe() -> watch::Receiver<u64> {
    COMMITS.subscribe()
}
