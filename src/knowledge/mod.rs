//! Projects, memories, search, snapshots and API keys: the limits what callers write must respect, and the
//! services that check the caller's identity before touching the store. The records themselves
//! live in [`crate::domain`].

pub mod keys;
mod limits;
pub mod memories;
pub mod projects;
pub mod search;
pub mod snapshots;

use std::sync::Arc;

pub use limits::*;

use crate::domain::MemoryType;
use crate::embeddings::service::Embeddings;
use crate::store::Store;

/// What the memory services need besides the caller: the store, the embeddings that index it,
/// and when a new memory counts as a near duplicate.
#[derive(Clone)]
pub struct KnowledgeBase {
    pub store: Arc<dyn Store>,
    pub embeddings: Arc<Embeddings>,
    /// Cosine similarity at or above which a new memory is reported as a near duplicate.
    pub duplicate_threshold: f32,
}

/// Errors of the knowledge services, phrased for the caller to act on.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The input is wrong; the message names the field and what to send instead.
    #[error("{0}")]
    Invalid(String),
    /// The caller's key does not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A capability the call needs is not available now (e.g. no embedding provider).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(crate::store::StoreError),
}

impl From<crate::auth::AccessDenied> for KnowledgeError {
    fn from(denied: crate::auth::AccessDenied) -> Self {
        KnowledgeError::Forbidden(denied.0)
    }
}

impl From<crate::store::StoreError> for KnowledgeError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::NotFound(what) => KnowledgeError::NotFound(format!("{what} not found")),
            StoreError::Conflict(message) => KnowledgeError::Conflict(message),
            other => KnowledgeError::Store(other),
        }
    }
}
