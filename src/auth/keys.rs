//! API keys: how they look (`cdf_<prefix>_<secret>`), how they are hashed (argon2id) and how a
//! presented bearer token becomes an [`Identity`].
//!
//! Only the prefix (for lookup) and the argon2id hash are stored; the whole key is shown once.
//! A verified key is cached for a few seconds so argon2 does not cost every request; a revoked
//! key therefore stops working within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Identity;
use crate::store::Store;

const KEY_SCHEME: &str = "cdf";
const PREFIX_LEN: usize = 10;
const SECRET_LEN: usize = 40;

/// A freshly generated key: the full text (shown once), its prefix and its hash.
pub struct GeneratedKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(|byte| char::from(byte).to_ascii_lowercase())
        .collect()
}

/// Makes a new key and its argon2id hash. CPU-heavy: call it off the async workers.
pub fn generate() -> anyhow::Result<GeneratedKey> {
    let prefix = random_text(PREFIX_LEN);
    let key = format!("{KEY_SCHEME}_{prefix}_{}", random_text(SECRET_LEN));
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = Argon2::default()
        .hash_password(key.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("hashing the key failed: {error}"))?
        .to_string();
    Ok(GeneratedKey { key, prefix, hash })
}

/// The public prefix of a key that has the API-key shape, or `None`.
pub fn prefix_of(key: &str) -> Option<&str> {
    let mut parts = key.splitn(3, '_');
    let (scheme, prefix, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = scheme == KEY_SCHEME
        && prefix.len() == PREFIX_LEN
        && secret.len() == SECRET_LEN
        && prefix
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some(prefix)
}

fn verify_hash(key: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(key.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Why a bearer token was refused; each becomes a 401 that says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// The header is not `Bearer <key>`.
    Malformed,
    /// No key or operator token matches.
    Unknown,
    /// The key existed and was revoked.
    Revoked,
    /// The header still holds a `${…}` placeholder the client was meant to fill in.
    Unexpanded,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_api_key",
            AuthFailure::Malformed => "malformed_authorization",
            AuthFailure::Unknown => "invalid_api_key",
            AuthFailure::Revoked => "revoked_api_key",
            AuthFailure::Unexpanded => "unexpanded_variable",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => {
                "send an API key in the header `Authorization: Bearer <key>` (create one with `codifier keys create`)"
            }
            AuthFailure::Malformed => {
                "the Authorization header must be `Bearer <key>` with nothing else"
            }
            AuthFailure::Unknown => {
                "this API key is not known to the server: check it was copied whole"
            }
            AuthFailure::Revoked => "this API key was revoked: ask an admin for a new one",
            AuthFailure::Unexpanded => {
                "the Authorization header holds `${…}`: an environment variable was not expanded, so the client sent its name instead of the key. Set the variable where the client starts, or write the key into the client's configuration (`codifier connect <client> --key <key>`)"
            }
        }
    }
}

struct CachedKey {
    identity: Identity,
    verified_at: Instant,
}

/// Turns bearer tokens into identities, caching verified keys for `ttl`.
pub struct KeyVerifier {
    store: Arc<dyn Store>,
    operator_digest: Option<[u8; 32]>,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], CachedKey>>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl KeyVerifier {
    pub fn new(store: Arc<dyn Store>, operator_token: Option<&str>, ttl: Duration) -> Self {
        Self {
            store,
            operator_digest: operator_token.map(digest),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Identity, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        if header.contains("${") {
            return Err(AuthFailure::Unexpanded);
        }
        let (scheme, token) = header.split_once(' ').ok_or(AuthFailure::Malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
            return Err(AuthFailure::Malformed);
        }
        self.verify(token).await
    }

    /// Verifies a bare key or operator token.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let presented = digest(token);
        if let Some(operator) = &self.operator_digest {
            // Digests have a fixed length, so the comparison time says nothing about the token.
            if bool::from(operator.ct_eq(&presented)) {
                return Ok(Identity::Operator);
            }
        }
        if let Some(identity) = self.cached(&presented) {
            return Ok(identity);
        }
        let prefix = prefix_of(token).ok_or(AuthFailure::Unknown)?;
        let record = self
            .store
            .find_api_key(prefix)
            .await
            .map_err(|error| {
                tracing::error!(%error, "api key lookup failed");
                AuthFailure::Unknown
            })?
            .ok_or(AuthFailure::Unknown)?;
        let (token_owned, hash) = (token.to_owned(), record.hash.clone());
        let matches = tokio::task::spawn_blocking(move || verify_hash(&token_owned, &hash))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(AuthFailure::Unknown);
        }
        if record.key.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        let identity = Identity::Key {
            id: record.key.id,
            prefix: record.key.prefix.clone(),
            project_id: record.key.project_id,
            role: record.key.role,
        };
        if let Err(error) = self.store.touch_api_key(record.key.id).await {
            tracing::warn!(%error, "could not record the key's last use");
        }
        self.remember(presented, identity.clone());
        Ok(identity)
    }

    fn cached(&self, presented: &[u8; 32]) -> Option<Identity> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .get(presented)
            .filter(|entry| entry.verified_at.elapsed() < self.ttl)
            .map(|entry| entry.identity.clone())
    }

    fn remember(&self, presented: [u8; 32], identity: Identity) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ttl = self.ttl;
        cache.retain(|_, entry| entry.verified_at.elapsed() < ttl);
        cache.insert(
            presented,
            CachedKey {
                identity,
                verified_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_has_the_api_key_shape_and_verifies_against_its_hash() {
        let generated = generate().unwrap();
        assert_eq!(prefix_of(&generated.key), Some(generated.prefix.as_str()));
        assert!(generated.hash.starts_with("$argon2id$"));
        assert!(verify_hash(&generated.key, &generated.hash));
        assert!(!verify_hash(
            &format!("{}x", generated.key),
            &generated.hash
        ));
    }

    #[test]
    fn text_that_is_not_a_key_has_no_prefix() {
        assert_eq!(prefix_of("hello"), None);
        assert_eq!(prefix_of("cdf_short_secret"), None);
    }
}
