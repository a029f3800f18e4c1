//! OAuth access tokens in the key verifier: a token is found by its SHA-256 (no argon2: it is
//! 256 random bits), and then the key behind it is re-checked exactly as a console session's
//! is ([`KeyVerifier::recheck`]), so a revoked key refuses its tokens within
//! `CODIFIER_KEY_CACHE_SECONDS`, and the token acts as the key with the narrower of the role
//! granted and the key's role now. What the store said about a token is trusted for the same
//! window, so a revoked token family is refused within it too.

use std::time::Instant;

use super::{AuthFailure, KeyVerifier};
use crate::auth::Identity;
use crate::domain::{ConsoleSubject, OAuthGrant};

/// A token's grant and expiry as the store gave them, and when it was asked.
pub(super) type CheckedToken = (OAuthGrant, chrono::DateTime<chrono::Utc>, Instant);

impl KeyVerifier {
    /// Verifies an access token (`cdo_at_…`) issued for `audience` (when given).
    pub(super) async fn verify_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<Identity, AuthFailure> {
        let hash = crate::oauth::tokens::hash(token);
        let cached = self
            .tokens
            .get(&hash)
            .filter(|(_, _, checked)| checked.elapsed() < self.ttl);
        let (grant, expires_at) = match cached {
            Some((grant, expires_at, _)) => (grant, expires_at),
            None => {
                let (grant, expires_at) = self
                    .store
                    .find_oauth_access(&hash)
                    .await
                    .map_err(|error| {
                        tracing::error!(%error, "access token lookup failed");
                        AuthFailure::InvalidToken
                    })?
                    .ok_or(AuthFailure::InvalidToken)?;
                self.tokens
                    .remember(&hash, (grant.clone(), expires_at, Instant::now()));
                (grant, expires_at)
            }
        };
        if expires_at <= chrono::Utc::now() {
            return Err(AuthFailure::InvalidToken);
        }
        if audience.is_some_and(|audience| audience != grant.resource) {
            return Err(AuthFailure::WrongResource);
        }
        match &grant.subject {
            ConsoleSubject::Key { id, prefix } => match self.recheck(*id, prefix).await? {
                Identity::Key {
                    id,
                    prefix,
                    project_id,
                    role,
                } => Ok(Identity::Key {
                    id,
                    prefix,
                    project_id,
                    role: role.min(grant.role),
                }),
                _ => Err(AuthFailure::Unknown),
            },
            ConsoleSubject::Operator { fingerprint } => {
                if self.operator_fingerprint().as_deref() == Some(fingerprint.as_str()) {
                    Ok(Identity::Operator)
                } else {
                    // The operator token changed since: its tokens end with it.
                    Err(AuthFailure::Revoked)
                }
            }
        }
    }
}
