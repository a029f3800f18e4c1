//! The operator's settings for packing, read from the environment: private networks, limits,
//! timeouts, and the forge tokens.

use std::time::Duration;

use super::clone::Credentials;

/// What the operator allows and the limits every pack runs under.
#[derive(Debug, Clone)]
pub struct PackerSettings {
    /// `CODIFIER_PACK_ALLOW_PRIVATE_NETWORK`: let remote callers pack hosts on the server's own
    /// network (loopback, private, link-local). Off by default.
    pub allow_private_network: bool,
    /// `CODIFIER_PACK_MAX_TOTAL_BYTES`: the most text one pack may hold (256 MiB).
    pub max_total_bytes: u64,
    /// `CODIFIER_PACK_MAX_FILE_BYTES`: the default largest file (10 MiB); callers may lower it.
    pub max_file_bytes: u64,
    /// `CODIFIER_PACK_TIMEOUT_SECONDS`: how long a clone may take (300 s).
    pub timeout: Duration,
    /// `GITHUB_TOKEN`, `GITLAB_TOKEN`, `BITBUCKET_TOKEN` and the hosts each is for.
    pub credentials: Credentials,
}

impl Default for PackerSettings {
    fn default() -> Self {
        Self {
            allow_private_network: false,
            max_total_bytes: 256 << 20,
            max_file_bytes: 10 << 20,
            timeout: Duration::from_secs(300),
            credentials: Credentials::default(),
        }
    }
}

impl PackerSettings {
    /// Reads the settings; a malformed value names its variable.
    pub fn from_env() -> anyhow::Result<Self> {
        use crate::config::{positive_var, switch_var};
        let defaults = Self::default();
        Ok(Self {
            allow_private_network: switch_var(
                "CODIFIER_PACK_ALLOW_PRIVATE_NETWORK",
                defaults.allow_private_network,
            )?,
            max_total_bytes: positive_var(
                "CODIFIER_PACK_MAX_TOTAL_BYTES",
                defaults.max_total_bytes,
            )?,
            max_file_bytes: positive_var("CODIFIER_PACK_MAX_FILE_BYTES", defaults.max_file_bytes)?,
            timeout: Duration::from_secs(positive_var(
                "CODIFIER_PACK_TIMEOUT_SECONDS",
                defaults.timeout.as_secs(),
            )?),
            credentials: Credentials::from_env(),
        })
    }
}
