//! API keys: how they look (`cdf_<prefix>_<secret>`) and how they are hashed (argon2id).
//! Turning a presented bearer token into an [`super::Identity`] is [`KeyVerifier`]'s job.
//!
//! Only the prefix (for lookup) and the argon2id hash are stored; the whole key is shown once.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;

pub use super::verifier::{AuthFailure, KeyVerifier};

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

/// Whether `key` matches the argon2 `hash`. CPU-heavy (and 19 MiB of working memory): call it
/// off the async workers, through [`KeyVerifier`], which runs it once per key and process.
pub(super) fn verify_hash(key: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(key.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
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
