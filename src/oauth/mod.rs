//! The OAuth 2.1 authorization server over our API keys (issue 20): a person approves a client
//! on the consent page with an API key (or the operator token), and the client gets tokens that
//! act as that key, narrowed to the role chosen. No user accounts: the key is the account.
//!
//! - [`OAuthConfig`]: lifetimes and switches (`CODIFIER_OAUTH_*`).
//! - [`tokens`]: the opaque codes and tokens (a recognizable prefix, 256 random bits) and their
//!   SHA-256, the only form the store keeps; PKCE S256.
//! - [`scope`]: what the `read`, `write` and `admin` scopes mean (the roles; a key narrows).
//! - [`sweep`]: the periodic deletion of expired codes and tokens, spent grants and
//!   registered clients nobody used.
//! - [`clients`]: who a `client_id` is: a registered client (RFC 7591) or a client ID metadata
//!   document fetched over https through the public-address guard, bounded and cached.
//!
//! The HTTP endpoints are in `http::oauth`; tokens are checked by the key verifier
//! ([`crate::auth::KeyVerifier`]), which re-checks the key behind each token.

pub mod clients;
pub mod scope;
pub mod sweep;
pub mod tokens;

use std::time::Duration;

/// How the authorization server behaves.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `CODIFIER_OAUTH` (`on`, the default, or `off`): serve the authorization server. Off, or
    /// with `CODIFIER_AUTHORIZATION_SERVERS` set, its endpoints answer 404 and clients are sent
    /// elsewhere (or told to use a key).
    pub enabled: bool,
    /// `CODIFIER_OAUTH_ACCESS_TOKEN_SECONDS`: how long an access token lasts (1 hour).
    pub access_token: Duration,
    /// `CODIFIER_OAUTH_REFRESH_TOKEN_DAYS`: how long a refresh token lasts (30 days).
    pub refresh_token: Duration,
    /// How long an authorization code may wait to be redeemed (60 s).
    pub code: Duration,
    /// `CODIFIER_OAUTH_REGISTRATIONS_PER_HOUR`: how many clients one client address may
    /// register (RFC 7591) in an hour (20); more are answered 429 with `Retry-After`.
    pub registrations_per_hour: u32,
    /// `CODIFIER_OAUTH_UNUSED_CLIENT_HOURS`: a registered client with no live authorization this
    /// long after it registered is deleted by the sweep (24 hours).
    pub unused_client: Duration,
    /// `CODIFIER_OAUTH_LOOPBACK_CLIENT_DOCUMENTS`: **for tests only**. Accept `http://127.0.0.1`
    /// (and `localhost`) client ID metadata document URLs and fetch them without the
    /// public-address guard. Off by default: a client id URL must be https and public.
    pub loopback_client_documents: bool,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            access_token: Duration::from_secs(3600),
            refresh_token: Duration::from_secs(30 * 24 * 3600),
            code: Duration::from_secs(60),
            registrations_per_hour: 20,
            unused_client: Duration::from_secs(24 * 3600),
            loopback_client_documents: false,
        }
    }
}

impl OAuthConfig {
    /// Reads the settings from the environment; bad values name the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        use crate::config::{positive_var, switch_var};
        let defaults = Self::default();
        Ok(Self {
            enabled: switch_var("CODIFIER_OAUTH", true)?,
            access_token: Duration::from_secs(positive_var(
                "CODIFIER_OAUTH_ACCESS_TOKEN_SECONDS",
                defaults.access_token.as_secs(),
            )?),
            refresh_token: Duration::from_secs(
                positive_var("CODIFIER_OAUTH_REFRESH_TOKEN_DAYS", 30)? * 24 * 3600,
            ),
            code: defaults.code,
            registrations_per_hour: u32::try_from(positive_var(
                "CODIFIER_OAUTH_REGISTRATIONS_PER_HOUR",
                u64::from(defaults.registrations_per_hour),
            )?)
            .unwrap_or(u32::MAX),
            unused_client: Duration::from_secs(
                positive_var(
                    "CODIFIER_OAUTH_UNUSED_CLIENT_HOURS",
                    defaults.unused_client.as_secs() / 3600,
                )? * 3600,
            ),
            loopback_client_documents: switch_var(
                "CODIFIER_OAUTH_LOOPBACK_CLIENT_DOCUMENTS",
                false,
            )?,
        })
    }
}
