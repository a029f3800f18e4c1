//! The authorization server's housekeeping: every [`INTERVAL`] (and once at start) the server
//! deletes codes and tokens past their end, grants that are revoked or spent, and registered
//! clients that have no grant left `unused_client` after they registered (so open registration
//! cannot fill the store). A second server sweeping at the same time deletes nothing twice:
//! each sweep is a few `DELETE … WHERE` statements.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{OAuthSwept, Store, StoreResult, now};

/// How often the sweep runs.
pub const INTERVAL: Duration = Duration::from_secs(600);

/// Deletes what has ended by now; clients registered more than `unused_client` ago with no grant.
pub async fn sweep(store: &Arc<dyn Store>, unused_client: Duration) -> StoreResult<OAuthSwept> {
    let at = now();
    let unused = chrono::Duration::from_std(unused_client).unwrap_or(chrono::Duration::days(1));
    store.sweep_oauth(at, at - unused).await
}

/// Runs the sweep until `shutdown`.
pub fn start(store: Arc<dyn Store>, unused_client: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            match sweep(&store, unused_client).await {
                Ok(swept) if swept == OAuthSwept::default() => {}
                Ok(swept) => tracing::info!(
                    tokens = swept.tokens,
                    grants = swept.grants,
                    clients = swept.clients,
                    "deleted ended oauth tokens, grants and unused clients"
                ),
                Err(error) => tracing::warn!(%error, "the oauth sweep failed; retrying later"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
    });
}
