//! The operator's settings for packing, read from the environment: private networks, limits,
//! timeouts, and the forge tokens.

use std::time::Duration;

use anyhow::bail;

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
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match read(name) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(value) if value > 0 => Ok(value),
                    _ => bail!("{name}={text:?} is not a positive whole number"),
                },
            }
        };
        let allow_private_network = match read("CODIFIER_PACK_ALLOW_PRIVATE_NETWORK").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                bail!("CODIFIER_PACK_ALLOW_PRIVATE_NETWORK={other:?} is not true or false")
            }
        };
        let defaults = Self::default();
        Ok(Self {
            allow_private_network,
            max_total_bytes: number("CODIFIER_PACK_MAX_TOTAL_BYTES", defaults.max_total_bytes)?,
            max_file_bytes: number("CODIFIER_PACK_MAX_FILE_BYTES", defaults.max_file_bytes)?,
            timeout: Duration::from_secs(number(
                "CODIFIER_PACK_TIMEOUT_SECONDS",
                defaults.timeout.as_secs(),
            )?),
            credentials: Credentials::from_env(),
        })
    }
}
