//! Following a project's events live: every event after a sequence number, in order, then each
//! new one as it commits. Woken by commits in this process ([`super::signal`]) and polling the
//! store every [`EventsConfig::poll`] for commits of other servers. Sequence numbers commit in
//! order with no gaps, so resuming after N misses nothing and repeats nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::EventsConfig;
use crate::domain::{Event, EventFilter};
use crate::store::Store;

/// Events read from the store at once.
const READ_AHEAD: u32 = 100;

struct Follow {
    store: Arc<dyn Store>,
    project: Uuid,
    after: i64,
    buffer: VecDeque<Event>,
    wake: tokio::sync::watch::Receiver<u64>,
    poll: std::time::Duration,
    shutdown: CancellationToken,
}

/// The events of `project` after sequence `after`, forever (until `shutdown`).
pub fn follow(
    store: Arc<dyn Store>,
    config: &EventsConfig,
    project: Uuid,
    after: i64,
    shutdown: CancellationToken,
) -> impl Stream<Item = Event> + Send + 'static {
    let state = Follow {
        store,
        project,
        after,
        buffer: VecDeque::new(),
        wake: super::signal::subscribe(),
        poll: config.poll,
        shutdown,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            // Stopped: no event reaches the consumer after that, not even one already read (an
            // unsubscribe answered before an event was committed must not hear of it).
            if state.shutdown.is_cancelled() {
                return None;
            }
            if let Some(event) = state.buffer.pop_front() {
                state.after = event.sequence;
                return Some((event, state));
            }
            // Marked seen before reading, so a commit during the read wakes the next wait.
            let _seen = *state.wake.borrow_and_update();
            let filter = EventFilter {
                after: state.after,
                limit: READ_AHEAD,
                ..EventFilter::default()
            };
            match state.store.list_events(state.project, &filter).await {
                Ok(events) if !events.is_empty() => {
                    state.buffer.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading events for a live stream failed; retrying")
                }
            }
            tokio::select! {
                biased;
                _ = state.shutdown.cancelled() => return None,
                _ = state.wake.changed() => {}
                _ = tokio::time::sleep(state.poll) => {}
            }
        }
    })
}

/// The latest sequence number of `project` (0 when it has no event yet).
pub async fn latest(store: &Arc<dyn Store>, project: Uuid) -> crate::store::StoreResult<i64> {
    store.latest_event_sequence(project).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use tokio_util::sync::CancellationToken;

    use crate::domain::{MemoryDraft, MemoryType};
    use crate::events::EventsConfig;
    use crate::store::scratch::ScratchStore;

    #[tokio::test]
    async fn a_stopped_stream_yields_no_event_committed_after_the_stop_whether_idle_or_never_polled()
     {
        let ScratchStore {
            store,
            actor,
            project,
            dir: _dir,
        } = ScratchStore::new().await;
        let created = store.latest_event_sequence(project).await.unwrap();
        let config = EventsConfig::default();
        let follow = |stop: &CancellationToken| {
            Box::pin(super::follow(
                store.clone(),
                &config,
                project,
                created,
                stop.clone(),
            ))
        };
        let (idle_stop, unpolled_stop) = (CancellationToken::new(), CancellationToken::new());
        let (mut idle, mut unpolled) = (follow(&idle_stop), follow(&unpolled_stop));
        // Waiting for a commit: nothing yet.
        let waited = tokio::time::timeout(Duration::from_millis(200), idle.next()).await;
        assert!(waited.is_err(), "an event before any write: {waited:?}");

        idle_stop.cancel();
        unpolled_stop.cancel();
        let draft = MemoryDraft {
            memory_type: MemoryType::Rule,
            title: "Written after the stop".into(),
            content: serde_json::json!({"text": "after"}),
            category: None,
            description: None,
            confidence: 1.0,
            tags: Vec::new(),
            source_role: None,
        };
        store.create_memory(project, &actor, &draft).await.unwrap();
        assert_eq!(
            store.latest_event_sequence(project).await.unwrap(),
            created + 1
        );
        for (name, stream) in [("idle", &mut idle), ("never polled", &mut unpolled)] {
            let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
            assert!(
                matches!(next, Ok(None)),
                "the {name} stream after its stop: {next:?}"
            );
        }
    }
}
