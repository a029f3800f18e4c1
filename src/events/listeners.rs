//! The bound on held-open event listeners of one server: `subscriptions/listen` requests,
//! `resources/subscribe` subscriptions and `GET /events` streams all take a [`ListenerPermit`]
//! for as long as they follow events, at most `CODIFIER_MAX_LISTENERS` at once, so no client
//! can hold open an unbounded number of requests. Over the cap a listener is refused with a
//! message saying what to change ([`Full`]), and told when to retry ([`RETRY_AFTER_SECONDS`]).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The `Retry-After` given to a listener refused because the server is full.
pub const RETRY_AFTER_SECONDS: u64 = 30;

/// The open listeners of this server, at most `max`.
#[derive(Debug, Clone)]
pub struct Listeners {
    open: Arc<Semaphore>,
    max: usize,
}

/// One open listener; dropping it frees its place.
#[derive(Debug)]
pub struct ListenerPermit {
    _held: OwnedSemaphorePermit,
}

/// A listener refused: this server already holds its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this server already follows events for {max} open listeners (its CODIFIER_MAX_LISTENERS): \
     close a listener or event stream you no longer need, retry in {RETRY_AFTER_SECONDS} seconds, \
     or ask the operator to raise CODIFIER_MAX_LISTENERS"
)]
pub struct Full {
    pub max: usize,
}

impl Listeners {
    /// Room for `max` listeners at once.
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            max: max.min(Semaphore::MAX_PERMITS),
        }
    }

    /// A place for one more listener, or [`Full`].
    pub fn admit(&self) -> Result<ListenerPermit, Full> {
        match Arc::clone(&self.open).try_acquire_owned() {
            Ok(permit) => Ok(ListenerPermit { _held: permit }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                Err(Full { max: self.max })
            }
        }
    }

    /// How many listeners are open now.
    pub fn open(&self) -> usize {
        self.max - self.open.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_past_the_cap_is_refused_until_one_closes() {
        let listeners = Listeners::new(2);
        let first = listeners.admit().unwrap();
        let _second = listeners.admit().unwrap();
        let refused = listeners.admit().unwrap_err();
        assert_eq!(refused, Full { max: 2 });
        assert!(refused.to_string().contains("CODIFIER_MAX_LISTENERS"));
        assert_eq!(listeners.open(), 2);
        drop(first);
        assert_eq!(listeners.open(), 1);
        listeners.admit().expect("a place was freed");
    }
}
