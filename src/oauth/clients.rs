//! Who a `client_id` is. Either a client registered here (RFC 7591; its id is random text we
//! made), or — when the id is an https URL — a client ID metadata document: JSON served at that
//! URL whose `client_id` is the URL itself and whose `redirect_uris` list where codes may go.
//!
//! Documents are fetched the way webhooks are delivered ([`crate::events::target`]): only public
//! addresses (checked at every connection, so DNS rebinding cannot reach an internal one), no
//! redirects, no proxy, a timeout, and at most [`MAX_DOCUMENT_BYTES`]; a fetched document is
//! cached for [`CACHE_FOR`]. Tests serve documents from 127.0.0.1, which only the test-only
//! switch [`OAuthConfig::loopback_client_documents`](super::OAuthConfig) lets through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::events::target;
use crate::store::Store;

/// The largest client ID metadata document read.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long fetching a document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is trusted.
pub const CACHE_FOR: Duration = Duration::from_secs(300);
/// Documents kept at once (the cache starts again when full).
const CACHE_ENTRIES: usize = 1024;

/// What the consent page and the token endpoint need to know about a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub uri: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Whether the client was known by a metadata document (else it registered here).
    pub from_document: bool,
}

impl Client {
    /// Whether `redirect_uri` is exactly one the client declared (no prefix or pattern match).
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|uri| uri == redirect_uri)
    }
}

/// Why a client id was not accepted: a message saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// Resolves client ids (see the module documentation).
pub struct Clients {
    store: Arc<dyn Store>,
    guarded: reqwest::Client,
    /// The unguarded client of the test-only loopback switch.
    loopback: Option<reqwest::Client>,
    cache: Mutex<HashMap<String, (Client, Instant)>>,
}

impl Clients {
    pub fn new(store: Arc<dyn Store>, loopback_documents: bool) -> Self {
        Self {
            store,
            guarded: target::client(FETCH_TIMEOUT, false),
            loopback: loopback_documents.then(|| target::client(FETCH_TIMEOUT, true)),
            cache: Mutex::default(),
        }
    }

    /// The client with this id: a metadata document when the id is a URL, else a registration.
    pub async fn resolve(&self, client_id: &str) -> Result<Client, ClientError> {
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.document(client_id).await;
        }
        let registered = self
            .store
            .find_oauth_client(client_id)
            .await
            .map_err(|error| {
                tracing::error!(%error, "oauth client lookup failed");
                ClientError("the client could not be looked up: try again".into())
            })?
            .ok_or_else(|| {
                ClientError(format!(
                    "the client `{client_id}` is not registered here: register it at the registration endpoint, or use a client ID metadata document URL"
                ))
            })?;
        Ok(Client {
            client_id: registered.client_id,
            name: registered.client_name,
            uri: registered.client_uri,
            redirect_uris: registered.redirect_uris,
            from_document: false,
        })
    }

    async fn document(&self, client_id: &str) -> Result<Client, ClientError> {
        if let Some((client, fetched)) = self.cache().get(client_id)
            && fetched.elapsed() < CACHE_FOR
        {
            return Ok(client.clone());
        }
        let url = Url::parse(client_id)
            .map_err(|error| ClientError(format!("the client id is not a valid URL: {error}")))?;
        let http = self.http_for(&url).await?;
        let client = fetch(http, &url, client_id).await?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(client_id.to_owned(), (client.clone(), Instant::now()));
        Ok(client)
    }

    /// The HTTP client a document URL may be fetched with, or why it may not be fetched.
    async fn http_for(&self, url: &Url) -> Result<&reqwest::Client, ClientError> {
        let loopback_host = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if let Some(loopback) = &self.loopback
            && loopback_host
        {
            return Ok(loopback);
        }
        if url.scheme() != "https" {
            return Err(ClientError(
                "a client id that is a URL must be an https URL (a client ID metadata document)"
                    .into(),
            ));
        }
        if url.path() == "/" || url.path().is_empty() || url.fragment().is_some() {
            return Err(ClientError(
                "a client ID metadata document URL needs a path and no fragment".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ClientError(
                "a client ID metadata document URL cannot carry a user name or password".into(),
            ));
        }
        target::check(url, false)
            .await
            .map_err(|refused| ClientError(format!("the client id URL is refused: {refused}")))?;
        Ok(&self.guarded)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Client, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fetches and checks one document, reading at most [`MAX_DOCUMENT_BYTES`].
async fn fetch(http: &reqwest::Client, url: &Url, client_id: &str) -> Result<Client, ClientError> {
    let failed = |what: String| ClientError(format!("the client ID metadata document {what}"));
    let mut response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| failed(format!("could not be fetched: {error}")))?;
    if !response.status().is_success() {
        return Err(failed(format!("answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| failed(format!("could not be read: {error}")))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(failed(format!("is larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let document: Document = serde_json::from_slice(&body)
        .map_err(|error| failed(format!("is not a JSON client document: {error}")))?;
    if document.client_id != client_id {
        return Err(failed(format!(
            "names the client id `{}`, not the URL it was fetched from",
            document.client_id
        )));
    }
    if document.redirect_uris.is_empty() {
        return Err(failed("lists no `redirect_uris`".into()));
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    Ok(Client {
        client_id: client_id.to_owned(),
        name: document.client_name.unwrap_or(host),
        uri: document.client_uri,
        redirect_uris: document.redirect_uris,
        from_document: true,
    })
}

/// Checks a redirect URI a client registers: absolute, no fragment, and https — or http only
/// to the person's own machine (native apps listening on loopback).
pub fn check_redirect_uri(text: &str) -> Result<(), ClientError> {
    let url = Url::parse(text)
        .map_err(|error| ClientError(format!("redirect URI `{text}` is not a URL: {error}")))?;
    if url.fragment().is_some() {
        return Err(ClientError(format!(
            "redirect URI `{text}` has a fragment: remove it"
        )));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ClientError(format!(
            "redirect URI `{text}` is plain http to another machine: use https (http is for localhost only)"
        ))),
        // Native apps' private-use schemes (RFC 8252), e.g. `com.example.app:/callback`.
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(ClientError(format!(
            "redirect URI `{text}` has the scheme `{scheme}`: use https, http to localhost, or a reverse-domain private scheme"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/cb").is_ok());
        assert!(check_redirect_uri("http://evil.example/cb").is_err());
        assert!(check_redirect_uri("https://a.example/cb#x").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }
}
