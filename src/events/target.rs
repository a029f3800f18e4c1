//! Where a webhook may post: http(s) URLs only, and — unless the operator sets
//! `CODIFIER_WEBHOOK_ALLOW_PRIVATE` — only public addresses. The check runs when a webhook is
//! created (a clear error at once) and again at every connection: the HTTP client resolves names
//! through [`PublicOnly`], which refuses a name if any of its addresses is internal (the
//! packer's rule, [`is_public`]) and hands the client exactly the addresses it checked, so a
//! DNS answer that changes between the check and the connection (rebinding) cannot send a
//! delivery to an internal address. Redirects are not followed and no proxy is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::packer::source::is_public;

/// Why a target is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

const ALLOW_HINT: &str =
    "such targets are refused unless the operator sets CODIFIER_WEBHOOK_ALLOW_PRIVATE=true";

/// Parses a webhook URL: http or https, a host, no user name or password in it.
pub fn parse_url(text: &str) -> Result<Url, Refused> {
    let url = Url::parse(text.trim())
        .map_err(|error| Refused(format!("`url` is not a valid URL ({error}): send an absolute http(s) URL such as https://example.com/hooks")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "`url` has the scheme `{}`: webhooks post over http or https only",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Refused(
            "`url` has no host: send an absolute http(s) URL".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused(
            "`url` carries a user name or password: remove them (deliveries are authenticated by their signature)".into(),
        ));
    }
    Ok(url)
}

/// Refuses an address literal in `url` that is not public (names are checked at connection by
/// [`PublicOnly`]; the HTTP client does not resolve literals).
pub fn check_literal(url: &Url) -> Result<(), Refused> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused(format!(
            "{ip} is an address on the server's own network (loopback, private, link-local or metadata); {ALLOW_HINT}"
        )))
    }
}

/// Resolves `host` and refuses it when any of its addresses is not public.
pub async fn resolve_public(host: &str) -> Result<Vec<SocketAddr>, Refused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|error| Refused(format!("the host `{host}` could not be resolved: {error}")))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused(format!("the host `{host}` has no address")));
    }
    if let Some(internal) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused(format!(
            "`{host}` resolves to {}, an address on the server's own network; {ALLOW_HINT}",
            internal.ip()
        )));
    }
    Ok(addresses)
}

/// Checks a URL the way a delivery will: its literal address, or every address its name has.
pub async fn check(url: &Url, allow_private: bool) -> Result<(), Refused> {
    if allow_private {
        return Ok(());
    }
    check_literal(url)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        resolve_public(name).await?;
    }
    Ok(())
}

/// The resolver of the delivering client: public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve_public(&host).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client deliveries go through: `timeout` per request, no redirects, no proxy, and
/// (unless `allow_private`) names resolved through [`PublicOnly`].
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("codifier-webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .expect("a client with no custom TLS or proxy settings builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_without_credentials_are_taken() {
        assert!(parse_url("https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "not a url",
            "https://u:p@example.com/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn internal_address_literals_are_refused() {
        for internal in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://192.168.0.1:8080/",
        ] {
            let url = parse_url(internal).unwrap();
            assert!(check_literal(&url).is_err(), "{internal}");
        }
        assert!(check_literal(&parse_url("http://93.184.215.14/").unwrap()).is_ok());
    }
}
