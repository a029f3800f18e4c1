//! Turning text into vectors: the [`Embedder`] trait and its providers — a local sentence model
//! run in pure Rust (no key; its files fetched once, see [`fetch`]), an OpenAI-compatible HTTP
//! API, or none (full-text search only). Every vector is tagged with the [`EmbeddingModel`] that
//! made it, so vectors of different models are never compared.

mod attention;
mod bert;
mod bf16;
pub mod fetch;
pub mod http;
mod int8;
pub mod local;
pub mod service;

use async_trait::async_trait;

/// The model record and the comparison live in [`crate::domain`]; named here for the providers
/// and the store's backends.
pub use crate::domain::{EmbeddingModel, cosine};

/// Why embedding failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// The provider is misconfigured or its files are missing; retrying will not help.
    #[error("embedding provider misconfigured: {0}")]
    Config(String),
    /// A transient failure (network, rate limit, server error) that survived the retries.
    #[error("embedding provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered with something we cannot use.
    #[error("embedding provider answered badly: {0}")]
    BadResponse(String),
}

/// Something that turns texts into unit-length vectors of one model.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The model every vector from this embedder belongs to.
    fn model(&self) -> &EmbeddingModel;

    /// Embeds a batch of texts, one vector per text, in order, each of `model().dimensions`
    /// values and L2-normalised (so cosine similarity is a dot product). CPU-heavy providers
    /// do their work off the async workers.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Loads the local sentence model from `dir` (CPU-heavy: call it off the async workers).
pub fn load_local(dir: &std::path::Path) -> Result<std::sync::Arc<dyn Embedder>, EmbedError> {
    Ok(std::sync::Arc::new(local::LocalEmbedder::load(dir)?))
}
