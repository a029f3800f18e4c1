//! Who may do what, and who did what: key roles, API keys as stored (never their secrets) and
//! the audit log.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What a project-scoped API key may do. Ordered: each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as listed: never the secret, never the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub project_id: Uuid,
    pub prefix: String,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API key with its argon2id hash, for verification only.
#[derive(Debug, Clone)]
pub struct ApiKeySecret {
    pub key: ApiKey,
    pub hash: String,
}

/// A new API key to store; the secret itself is never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub project_id: Uuid,
    pub prefix: String,
    pub hash: String,
    pub role: Role,
    pub label: Option<String>,
}

/// One entry of the audit log: who changed what, when, through which tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub project_id: Option<Uuid>,
    pub actor: String,
    pub tool: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

/// Who is making a change and through which tool, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A label that identifies the caller without revealing a secret (key prefix, `operator`, `local`).
    pub label: String,
    /// The MCP tool or CLI command that made the change.
    pub tool: String,
}

/// Who a web console session signed in as: an API key (re-checked on every request) or the
/// operator token (known by a fingerprint, so a changed token ends its sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleSubject {
    Key { id: Uuid, prefix: String },
    Operator { fingerprint: String },
}

/// A web console sign-in as stored: the SHA-256 of its token (never the token), who signed in,
/// the role and project they had then, the CSRF token its forms carry, and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub token_hash: String,
    pub subject: ConsoleSubject,
    pub role: Role,
    /// The key's project; `None` for the operator (every project).
    pub project_id: Option<Uuid>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
