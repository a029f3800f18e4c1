//! Embeddings as records: which model made a vector, the memories still waiting for one, and how
//! two unit vectors of one model compare.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Which model produced a vector: its name and dimension. Two vectors are comparable only when
/// their models are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmbeddingModel {
    /// A stable name, e.g. `all-MiniLM-L6-v2` or `openai:text-embedding-3-small`.
    pub name: String,
    pub dimensions: usize,
}

/// A memory whose vector is missing: its id, the text to embed, and the version it was read at
/// (a vector is only stored if the memory has not changed since).
#[derive(Debug, Clone)]
pub struct EmbeddingJob {
    pub id: Uuid,
    pub text: String,
    pub updated_at: DateTime<Utc>,
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
