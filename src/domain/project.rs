//! Projects, the unit of tenancy.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A project: the unit of tenancy. Every memory, snapshot and session belongs to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub org: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How much a project holds, counted inside its scope (the console's Projects page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProjectCounts {
    /// Live memories (not deleted).
    pub memories: u64,
    /// Repository snapshots (every version).
    pub snapshots: u64,
    pub plans: u64,
    pub playbook_sessions: u64,
}
