//! [`KeyVerifier`]: how a bearer token becomes an [`Identity`], with argon2 run at most once per
//! key and process.
//!
//! An argon2id check takes 19 MiB of working memory (the `argon2` crate's default cost) and tens
//! of milliseconds of CPU. Re-running it whenever a short cache expired, and in parallel when
//! several requests missed at once, cost about 19 MB of resident memory per re-check (glibc kept
//! the freed blocks). So once a key has passed argon2, the SHA-256 digest of the presented text is
//! remembered by the key's public prefix, beside the stored hash it was proven against:
//! - within `CODIFIER_KEY_CACHE_SECONDS` of the last check, a request whose digest matches (in
//!   constant time) is let in without asking the store;
//! - after that, one lookup by prefix re-reads the key's row (revoked? still there? role and
//!   project as they are now?) and the digest stands in for argon2, so a revocation still bites
//!   within that time;
//! - a different text under a proven prefix is refused at once: only one text verifies against a
//!   stored hash, and the proven digest is that text's.
//!
//! Requests that miss together for one key wait for a single check (a per-prefix async lock), a
//! wrong secret never replaces what was proven, and at most one argon2 check per core runs at a
//! time, so the memory argon2 can take at once is bounded too.
//!
//! A wrong key costs one argon2 check whether its prefix is stored or not (an unknown prefix, or
//! a wrong secret under a proven one, is checked against a dummy hash), so the answer's time does
//! not tell which prefixes exist. What bounds that cost is the per-address failure limit
//! ([`super::throttle`]): a caller it slowed is answered [`AuthFailure::Throttled`] wherever an
//! argon2 check (real or dummy) would be needed, and let in where none is (a proven key).

mod access_tokens;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::Identity;
use super::keys::{prefix_of, verify_hash};
use crate::remembered::Remembered;
use crate::store::{ApiKeySecret, Store};

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
    /// An OAuth access token that is unknown, expired, or whose family was revoked.
    InvalidToken,
    /// An OAuth access token issued for another resource (RFC 8707).
    WrongResource,
    /// Too many wrong keys came from this client address lately (a 429 with `Retry-After`).
    Throttled,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_api_key",
            AuthFailure::Malformed => "malformed_authorization",
            AuthFailure::Unknown => "invalid_api_key",
            AuthFailure::Revoked => "revoked_api_key",
            AuthFailure::Unexpanded => "unexpanded_variable",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::WrongResource => "invalid_token_audience",
            AuthFailure::Throttled => "too_many_failed_keys",
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
            AuthFailure::Throttled => {
                "too many wrong API keys came from this address: wait as long as `Retry-After` says, and check the key"
            }
            AuthFailure::Unexpanded => {
                "the Authorization header holds `${…}`: an environment variable was not expanded, so the client sent its name instead of the key. Set the variable where the client starts, or write the key into the client's configuration (`codifier connect <client> --key <key>`)"
            }
            AuthFailure::InvalidToken => {
                "this access token is unknown, expired or revoked: the client should refresh it, or connect again and approve it with a valid key"
            }
            AuthFailure::WrongResource => {
                "this access token was issued for another resource: ask this server's authorization server for a token for this server's /mcp"
            }
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A key that passed argon2 in this process.
struct Proven {
    /// SHA-256 of the key's text.
    digest: [u8; 32],
    /// The stored argon2 hash it passed against: another hash under the prefix must be proven anew.
    hash: String,
    /// What the store said at the last check, and when; `None` once the key was found revoked.
    live: Option<(Identity, Instant)>,
}

/// What this process knows about one key prefix.
#[derive(Default)]
struct Slot {
    proven: Mutex<Option<Proven>>,
    /// Held while the store (and maybe argon2) is asked, so concurrent misses ask once.
    checking: tokio::sync::Mutex<()>,
}

impl Slot {
    fn proven(&self) -> std::sync::MutexGuard<'_, Option<Proven>> {
        self.proven.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer for `presented` without asking the store, when there is one.
    fn answer(&self, presented: &[u8; 32], ttl: Duration) -> Option<Result<Identity, AuthFailure>> {
        let proven = self.proven();
        let proven = proven.as_ref()?;
        if !bool::from(proven.digest.ct_eq(presented)) {
            return Some(Err(AuthFailure::Unknown));
        }
        match &proven.live {
            Some((identity, checked)) if checked.elapsed() < ttl => Some(Ok(identity.clone())),
            _ => None,
        }
    }

    /// The proven digest, if it was proven against `hash`.
    fn digest_for(&self, hash: &str) -> Option<[u8; 32]> {
        self.proven()
            .as_ref()
            .filter(|proven| proven.hash == hash)
            .map(|proven| proven.digest)
    }
}

/// Turns bearer tokens into identities; see the module documentation for what it remembers.
pub struct KeyVerifier {
    store: Arc<dyn Store>,
    operator_digest: Option<[u8; 32]>,
    ttl: Duration,
    /// Only prefixes of stored keys get a slot, so made-up prefixes cannot crowd real ones out.
    slots: Remembered<Arc<Slot>>,
    /// Keys re-checked by id and prefix (web console sessions, which never hold the key's
    /// text), with when the store last said they were live.
    rechecked: Remembered<(Identity, Instant)>,
    /// OAuth access tokens by their SHA-256, with when the store last vouched for them.
    tokens: Remembered<access_tokens::CheckedToken>,
    argon2_permits: Semaphore,
    argon2_runs: AtomicU64,
    dummy_runs: AtomicU64,
}

/// A fixed argon2 hash no key matches, made once with the default cost (as real keys are).
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"codifier dummy!!").expect("a 16-byte salt");
        argon2::Argon2::default()
            .hash_password(b"codifier: no key has this text", &salt)
            .expect("hashing a fixed text")
            .to_string()
    })
}

impl KeyVerifier {
    pub fn new(store: Arc<dyn Store>, operator_token: Option<&str>, ttl: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        Self {
            store,
            operator_digest: operator_token.map(digest),
            ttl,
            slots: Remembered::default(),
            rechecked: Remembered::default(),
            tokens: Remembered::default(),
            argon2_permits: Semaphore::new(cores),
            argon2_runs: AtomicU64::new(0),
            dummy_runs: AtomicU64::new(0),
        }
    }

    /// How many argon2 checks this verifier has run.
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }

    /// How many dummy argon2 checks (for wrong keys whose prefix is unknown or proven by
    /// another text) this verifier has run.
    pub fn dummy_runs(&self) -> u64 {
        self.dummy_runs.load(Ordering::Relaxed)
    }

    /// Verifies the value of an `Authorization` header: an API key, the operator token, or an
    /// OAuth access token (which must have been issued for `audience`, when given).
    pub async fn verify_header(
        &self,
        header: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Identity, AuthFailure> {
        self.verify_header_with(header, audience, true).await
    }

    /// [`Self::verify_header`]; with `may_hash` false (a throttled caller) whatever would need
    /// an argon2 check is refused as [`AuthFailure::Throttled`].
    pub async fn verify_header_with(
        &self,
        header: Option<&str>,
        audience: Option<&str>,
        may_hash: bool,
    ) -> Result<Identity, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        if header.contains("${") {
            return Err(AuthFailure::Unexpanded);
        }
        let (scheme, token) = header.split_once(' ').ok_or(AuthFailure::Malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
            return Err(AuthFailure::Malformed);
        }
        if token.starts_with(crate::oauth::tokens::ACCESS_PREFIX) {
            return self.verify_access_token(token, audience).await;
        }
        self.verify_with(token, may_hash).await
    }

    /// Verifies a bare key or operator token (never an OAuth access token: a form that takes a
    /// key, such as the console's sign-in, must not turn a narrowed token back into its key).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        self.verify_with(token, true).await
    }

    /// Verifies a bare key or operator token; see [`Self::verify_header_with`] for `may_hash`.
    pub async fn verify_with(&self, token: &str, may_hash: bool) -> Result<Identity, AuthFailure> {
        let presented = digest(token);
        if let Some(operator) = &self.operator_digest {
            // Digests have a fixed length, so the comparison time says nothing about the token.
            if bool::from(operator.ct_eq(&presented)) {
                return Ok(Identity::Operator);
            }
        }
        let prefix = prefix_of(token).ok_or(AuthFailure::Unknown)?;
        let slot = match self.slots.get(prefix) {
            Some(slot) => slot,
            None => {
                if self.lookup(prefix).await?.is_none() {
                    return Err(self.refuse(token, may_hash).await);
                }
                self.slots.get_or_insert_with(prefix, Arc::default)
            }
        };
        match slot.answer(&presented, self.ttl) {
            Some(Err(AuthFailure::Unknown)) => return Err(self.refuse(token, may_hash).await),
            Some(answer) => return answer,
            None => {}
        }
        let checking = slot.checking.lock().await;
        // Whoever held the lock before may have just checked this very key.
        match slot.answer(&presented, self.ttl) {
            Some(Err(AuthFailure::Unknown)) => {
                drop(checking);
                return Err(self.refuse(token, may_hash).await);
            }
            Some(answer) => return answer,
            None => {}
        }
        let Some(record) = self.lookup(prefix).await? else {
            // The key is gone: should a key ever come back under this prefix, prove it anew.
            *slot.proven() = None;
            drop(checking);
            return Err(self.refuse(token, may_hash).await);
        };
        match slot.digest_for(&record.hash) {
            Some(proven) if bool::from(proven.ct_eq(&presented)) => {}
            Some(_) => {
                drop(checking);
                return Err(self.refuse(token, may_hash).await);
            }
            None if !may_hash => return Err(AuthFailure::Throttled),
            None if self.argon2(token, &record.hash).await => {}
            None => return Err(AuthFailure::Unknown),
        }
        let mut proven = Proven {
            digest: presented,
            hash: record.hash,
            live: None,
        };
        if record.key.revoked_at.is_some() {
            *slot.proven() = Some(proven);
            return Err(AuthFailure::Revoked);
        }
        let identity = Identity::Key {
            id: record.key.id,
            prefix: record.key.prefix,
            project_id: record.key.project_id,
            role: record.key.role,
        };
        if let Err(error) = self.store.touch_api_key(record.key.id).await {
            tracing::warn!(%error, "could not record the key's last use");
        }
        proven.live = Some((identity.clone(), Instant::now()));
        *slot.proven() = Some(proven);
        Ok(identity)
    }

    /// A fingerprint of the operator token (not the token, nor its plain digest), for records
    /// that must end when the token changes; `None` when no operator token is configured.
    pub fn operator_fingerprint(&self) -> Option<String> {
        self.operator_digest.map(|operator| {
            let mut hasher = Sha256::new();
            hasher.update(b"codifier operator fingerprint\0");
            hasher.update(operator);
            hex::encode(hasher.finalize())
        })
    }

    /// How long a checked key is trusted before the store is asked again
    /// (`CODIFIER_KEY_CACHE_SECONDS`): the promised window for a revocation to take effect.
    pub fn window(&self) -> Duration {
        self.ttl
    }

    /// Re-checks a key that proved itself earlier, by its id and prefix (a web console session
    /// holds those, never the key's text): the store is asked again once
    /// `CODIFIER_KEY_CACHE_SECONDS` have passed, as for a bearer key, so a revoked key is
    /// refused within that time and the role and project are as the store has them now.
    pub async fn recheck(&self, id: uuid::Uuid, prefix: &str) -> Result<Identity, AuthFailure> {
        if let Some((identity, checked)) = self.rechecked.get(prefix)
            && checked.elapsed() < self.ttl
            && matches!(&identity, Identity::Key { id: known, .. } if *known == id)
        {
            return Ok(identity);
        }
        let record = self.lookup(prefix).await?.ok_or(AuthFailure::Unknown)?;
        if record.key.id != id {
            return Err(AuthFailure::Unknown);
        }
        if record.key.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        let identity = Identity::Key {
            id: record.key.id,
            prefix: record.key.prefix,
            project_id: record.key.project_id,
            role: record.key.role,
        };
        if let Err(error) = self.store.touch_api_key(id).await {
            tracing::warn!(%error, "could not record the key's last use");
        }
        self.rechecked
            .remember(prefix, (identity.clone(), Instant::now()));
        Ok(identity)
    }

    /// The stored key under `prefix`, if any; a store that fails makes the key unknown (and
    /// forgets nothing proven, so a passing outage costs no argon2).
    async fn lookup(&self, prefix: &str) -> Result<Option<ApiKeySecret>, AuthFailure> {
        self.store.find_api_key(prefix).await.map_err(|error| {
            tracing::error!(%error, "api key lookup failed");
            AuthFailure::Unknown
        })
    }

    /// The answer to a wrong key with the shape of one: after the same argon2 work a stored
    /// prefix costs (against a dummy hash), or at once for a throttled caller.
    async fn refuse(&self, token: &str, may_hash: bool) -> AuthFailure {
        if !may_hash {
            return AuthFailure::Throttled;
        }
        let Ok(_permit) = self.argon2_permits.acquire().await else {
            return AuthFailure::Unknown;
        };
        self.dummy_runs.fetch_add(1, Ordering::Relaxed);
        let token = token.to_owned();
        let _ = tokio::task::spawn_blocking(move || verify_hash(&token, dummy_hash())).await;
        AuthFailure::Unknown
    }

    /// Checks `token` against an argon2 `hash` on a blocking thread, one per core at a time.
    async fn argon2(&self, token: &str, hash: &str) -> bool {
        let Ok(_permit) = self.argon2_permits.acquire().await else {
            return false;
        };
        self.argon2_runs.fetch_add(1, Ordering::Relaxed);
        crate::metrics::global().argon2_verification();
        let (token, hash) = (token.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || verify_hash(&token, &hash))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
