//! The OAuth authorization server's records: clients registered dynamically (RFC 7591), grants
//! (one per authorization code; the family every token issued from that code belongs to) and
//! the tokens themselves, each kept only as the SHA-256 of its text.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConsoleSubject, Role};

/// A client registered through the registration endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// What the person who approved a client granted it: a key (or the operator token, known by
/// its fingerprint), the role they chose (never more than the key's), for one resource.
/// Who granted is a [`ConsoleSubject`]: the same two kinds the web console signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    pub id: Uuid,
    pub client_id: String,
    pub subject: ConsoleSubject,
    pub role: Role,
    /// The key's project; `None` for the operator (every project).
    pub project_id: Option<Uuid>,
    /// The RFC 8707 resource the tokens are for (`{base}/mcp`).
    pub resource: String,
    pub redirect_uri: String,
    /// SHA-256 (hex) of the authorization code.
    pub code_hash: String,
    /// The PKCE S256 challenge the code was bound to.
    pub code_challenge: String,
    pub code_expires_at: DateTime<Utc>,
    pub code_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A token pair to store: SHA-256 of each text and when each ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenPair {
    pub access_hash: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_hash: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// What redeeming a code or a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The new pair is stored, for this grant.
    Issued(Box<OAuthGrant>),
    /// The code or refresh token was used before: its whole family is now revoked.
    Reused,
    /// No such code or refresh token, or its family was revoked, or it expired.
    Invalid,
}

/// What one sweep of the authorization server's tables deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OAuthSwept {
    /// Access and refresh tokens past their end.
    pub tokens: u64,
    /// Grants revoked, or whose code expired unused or whose tokens all ended.
    pub grants: u64,
    /// Registered clients with no grant left, registered before the cutoff.
    pub clients: u64,
}
