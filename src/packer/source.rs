//! What a caller asks to pack, and whether they may: remote URLs (https, http, ssh, scp-like
//! `git@host:owner/repo`) for everyone; local paths and `file://` only for the local operator.
//! A remote host is resolved and refused when any of its addresses is on the server's own
//! network (loopback, private, link-local, unique-local, unspecified …), unless the operator
//! allows private networks. Credentials written into a URL are taken out of it at once: the
//! URL kept, logged and stored never carries them.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;

use url::Url;

use super::PackError;

/// Who is asking, and what the operator allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourcePolicy {
    /// Local paths and `file://` URLs (the CLI and stdio only).
    pub allow_local: bool,
    /// Hosts that resolve to loopback, private or link-local addresses
    /// (`CODIFIER_PACK_ALLOW_PRIVATE_NETWORK`).
    pub allow_private_network: bool,
}

/// A repository to clone, with any credentials taken out of its URL.
#[derive(Clone)]
pub struct RemoteUrl {
    /// The URL without user name or password: what is logged and stored.
    pub url: Url,
    /// A user name and password (or token) that were written into the URL.
    pub userinfo: Option<(String, String)>,
}

impl std::fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteUrl")
            .field("url", &self.url.as_str())
            .field("userinfo", &self.userinfo.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RemoteUrl {
    /// The host name, lower-case.
    pub fn host(&self) -> String {
        self.url.host_str().unwrap_or_default().to_ascii_lowercase()
    }
}

/// A source to pack.
#[derive(Debug, Clone)]
pub enum RepoSource {
    /// Cloned with git2 (https, http, ssh, or `file://` for the local operator).
    Remote(RemoteUrl),
    /// A local working tree, packed as it is on disk (local operator only).
    Local(PathBuf),
}

impl RepoSource {
    /// Reads `text` as a URL or a local path and checks that `policy` allows it. Host names are
    /// resolved here (blocking), so call it off the async runtime.
    pub fn parse(text: &str, policy: SourcePolicy) -> Result<Self, PackError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PackError::Invalid(
                "`url` is empty: send a repository URL such as https://github.com/owner/repo"
                    .into(),
            ));
        }
        let local_refused = || {
            PackError::Forbidden(
                "local paths and file:// URLs can only be packed by the local operator (the `codifier pack` command or `codifier stdio`): send a remote URL such as https://github.com/owner/repo".into(),
            )
        };
        let url = if let Some(scp) = scp_like(text) {
            scp
        } else if text.contains("://") {
            Url::parse(text).map_err(|error| {
                PackError::Invalid(format!(
                    "`url` is not a valid URL ({error}): send e.g. https://github.com/owner/repo"
                ))
            })?
        } else {
            if !policy.allow_local {
                return Err(local_refused());
            }
            return Ok(RepoSource::Local(PathBuf::from(text)));
        };
        match url.scheme() {
            "file" => {
                if !policy.allow_local {
                    return Err(local_refused());
                }
                Ok(RepoSource::Remote(RemoteUrl {
                    url,
                    userinfo: None,
                }))
            }
            "https" | "http" | "ssh" => {
                let host = url
                    .host_str()
                    .filter(|host| !host.is_empty())
                    .ok_or_else(|| {
                        PackError::Invalid(
                            "`url` has no host: send e.g. https://github.com/owner/repo".into(),
                        )
                    })?;
                if !policy.allow_private_network {
                    check_public(host, url.port_or_known_default().unwrap_or(22))?;
                }
                let userinfo = (!url.username().is_empty() || url.password().is_some())
                    .then(|| {
                        (
                            url.username().to_owned(),
                            url.password().unwrap_or_default().to_owned(),
                        )
                    })
                    .filter(|_| url.scheme() != "ssh");
                let mut clean = url.clone();
                if clean.scheme() != "ssh" {
                    let _ = clean.set_username("");
                }
                let _ = clean.set_password(None);
                clean.set_fragment(None);
                Ok(RepoSource::Remote(RemoteUrl {
                    url: clean,
                    userinfo,
                }))
            }
            other => Err(PackError::Invalid(format!(
                "`url` uses the scheme `{other}`: send an https://, http:// or ssh:// URL"
            ))),
        }
    }

    /// The source as shown to people and stored: never with credentials.
    pub fn display(&self) -> String {
        match self {
            RepoSource::Remote(remote) => remote.url.to_string(),
            RepoSource::Local(path) => path.display().to_string(),
        }
    }
}

/// `git@github.com:owner/repo.git` as an `ssh://` URL.
fn scp_like(text: &str) -> Option<Url> {
    if text.contains("://") {
        return None;
    }
    let (user_host, path) = text.split_once(':')?;
    let (user, host) = user_host.split_once('@')?;
    if user.is_empty() || host.is_empty() || host.contains('/') || path.starts_with('/') {
        return None;
    }
    Url::parse(&format!("ssh://{user}@{host}/{path}")).ok()
}

/// Refuses a host when any address it resolves to is not a public unicast address.
fn check_public(host: &str, port: u16) -> Result<(), PackError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|_| {
                PackError::NotFound(format!(
                    "the host `{host}` could not be resolved: check the repository URL"
                ))
            })?
            .map(|address| address.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(PackError::NotFound(format!(
            "the host `{host}` has no address: check the repository URL"
        )));
    }
    if let Some(internal) = addresses.iter().find(|ip| !is_public(**ip)) {
        return Err(PackError::Forbidden(format!(
            "`{host}` resolves to {internal}, an address on the server's own network; such hosts are refused unless the operator sets CODIFIER_PACK_ALLOW_PRIVATE_NETWORK=true"
        )));
    }
    Ok(())
}

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let first = segments[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || (first == 0x0064 && segments[1] == 0xff9b) // NAT64: embeds IPv4, often internal
                || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn remote() -> SourcePolicy {
        SourcePolicy::default()
    }

    #[test]
    fn a_remote_caller_cannot_pack_a_local_path_or_a_file_url() {
        for text in ["/etc", "./repo", "file:///etc", "file://localhost/tmp/x"] {
            let error = RepoSource::parse(text, remote()).unwrap_err();
            assert!(matches!(error, PackError::Forbidden(_)), "{text}: {error}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        for text in [
            "http://127.0.0.1/repo.git",
            "http://localhost:8080/repo.git",
            "https://10.1.2.3/r",
            "https://192.168.1.1/r",
            "https://169.254.169.254/latest",
            "https://[::1]/r",
            "https://[fd00::1]/r",
            "https://[fe80::1]/r",
            "https://[::ffff:127.0.0.1]/r",
            "https://0.0.0.0/r",
            "http://2130706433/r",
            "http://0x7f000001/r",
            "ssh://git@127.0.0.1/r.git",
            "git@127.0.0.1:owner/r.git",
        ] {
            let error = RepoSource::parse(text, remote()).unwrap_err();
            assert!(matches!(error, PackError::Forbidden(_)), "{text}: {error}");
            assert!(error.to_string().contains("own network"), "{text}: {error}");
        }
    }

    #[test]
    fn the_operator_may_allow_private_networks() {
        let policy = SourcePolicy {
            allow_private_network: true,
            ..SourcePolicy::default()
        };
        assert!(RepoSource::parse("http://127.0.0.1:9/r.git", policy).is_ok());
    }

    #[test]
    fn credentials_in_a_url_never_stay_in_it() {
        let policy = SourcePolicy {
            allow_private_network: true,
            ..SourcePolicy::default()
        };
        let RepoSource::Remote(remote) =
            RepoSource::parse("https://alice:s3cr3t-token@10.0.0.1/o/r.git", policy).unwrap()
        else {
            panic!("remote");
        };
        assert_eq!(remote.url.as_str(), "https://10.0.0.1/o/r.git");
        assert_eq!(
            remote.userinfo,
            Some(("alice".to_owned(), "s3cr3t-token".to_owned()))
        );
        assert!(!format!("{remote:?}").contains("s3cr3t"));
    }

    #[test]
    fn unknown_schemes_and_empty_urls_get_a_clear_error() {
        for text in ["", "ftp://example.com/r", "https://"] {
            let error = RepoSource::parse(text, remote()).unwrap_err();
            assert!(matches!(error, PackError::Invalid(_)), "{text}: {error}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        assert!(is_public("140.82.112.3".parse().unwrap()));
        assert!(is_public("2606:4700::1111".parse().unwrap()));
        assert!(!is_public(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(!is_public("100.100.1.1".parse().unwrap()));
    }
}
