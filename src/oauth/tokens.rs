//! Codes and tokens: opaque random text with a prefix saying what it is (`cdo_ac_` codes,
//! `cdo_at_` access tokens, `cdo_rt_` refresh tokens), 256 random bits each, so SHA-256 is the
//! right way to keep them (argon2 is for keys a person may choose or reuse). PKCE is S256 only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of authorization codes.
pub const CODE_PREFIX: &str = "cdo_ac_";
/// The prefix of access tokens: the key verifier recognizes them by it.
pub const ACCESS_PREFIX: &str = "cdo_at_";
/// The prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "cdo_rt_";

/// A new random text with `prefix`: 32 random bytes, base64url.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of a code or token: SHA-256, as hex.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Why a PKCE challenge or verifier is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PkceError(pub String);

/// Checks the challenge an authorization request carries: S256 only, 43 base64url characters.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<String, PkceError> {
    let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
        return Err(PkceError(
            "`code_challenge` is missing: this server requires PKCE with S256 (send code_challenge and code_challenge_method=S256)".into(),
        ));
    };
    match method {
        Some("S256") => {}
        Some("plain") => {
            return Err(PkceError(
                "`code_challenge_method=plain` is refused: use S256".into(),
            ));
        }
        None => {
            return Err(PkceError(
                "`code_challenge_method` is missing: this server accepts S256 only (plain is refused)".into(),
            ));
        }
        Some(other) => {
            return Err(PkceError(format!(
                "`code_challenge_method={other}` is not supported: use S256"
            )));
        }
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(PkceError(
            "`code_challenge` is not an S256 challenge (43 base64url characters: BASE64URL(SHA256(code_verifier)))".into(),
        ));
    }
    Ok(challenge.to_owned())
}

/// Whether `verifier` (RFC 7636: 43 to 128 unreserved characters) answers `challenge`.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifier_answers_its_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned();
        assert!(verifier_matches(verifier, &challenge));
        assert!(!verifier_matches(&format!("{verifier}x"), &challenge));
    }

    #[test]
    fn plain_and_missing_challenges_are_refused_with_what_to_send() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_challenge(Some(challenge), Some("S256")).is_ok());
        let plain = check_challenge(Some(challenge), Some("plain")).unwrap_err();
        assert!(plain.0.contains("S256"), "{plain}");
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some(challenge), None).is_err());
        assert!(check_challenge(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn generated_tokens_carry_their_prefix_and_differ() {
        let (a, b) = (generate(ACCESS_PREFIX), generate(ACCESS_PREFIX));
        assert!(a.starts_with(ACCESS_PREFIX) && a != b);
        assert_eq!(hash(&a).len(), 64);
    }
}
