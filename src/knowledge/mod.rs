//! Projects and memories: the domain types callers write, the limits they must respect, and the
//! services that check the caller's identity before touching the store.

mod limits;
pub mod memories;
pub mod pack_skill;
pub mod projects;
pub mod search;
pub mod snapshots;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use limits::*;

/// What kind of knowledge a memory holds (the names of Codifier v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryType {
    Rule,
    Document,
    ApiContract,
    Learning,
    ResearchFinding,
}

impl MemoryType {
    pub const ALL: [MemoryType; 5] = [
        MemoryType::Rule,
        MemoryType::Document,
        MemoryType::ApiContract,
        MemoryType::Learning,
        MemoryType::ResearchFinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::Rule => "rule",
            MemoryType::Document => "document",
            MemoryType::ApiContract => "api_contract",
            MemoryType::Learning => "learning",
            MemoryType::ResearchFinding => "research_finding",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for MemoryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_type_parses_from_its_own_name() {
        for kind in MemoryType::ALL {
            assert_eq!(MemoryType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MemoryType::parse("Rule"), None);
    }
}
