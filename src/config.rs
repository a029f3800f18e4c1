//! Typed configuration, read from the environment (flags override where natural). A missing or
//! malformed setting fails at start with a message naming the variable. Secrets are redacted in
//! `Debug`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which embedding provider to use (`CODIFIER_EMBEDDINGS`).
#[derive(Debug, Clone)]
pub enum EmbeddingsConfig {
    /// Full-text search only.
    None,
    /// The local sentence model, read from `model_dir`; when its files are missing they are
    /// fetched with `fetch` (`None`: downloading is off, `CODIFIER_MODEL_FETCH=off`).
    Local {
        model_dir: PathBuf,
        fetch: Option<crate::embeddings::fetch::FetchConfig>,
    },
    /// An OpenAI-compatible HTTP API.
    Http(crate::embeddings::http::HttpEmbedderConfig),
}

/// Everything the server reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`; defaults to an SQLite file in the per-user data directory.
    pub database_url: String,
    /// `CODIFIER_LISTEN`, else `0.0.0.0:$PORT` when `PORT` is set, else `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `API_AUTH_TOKEN`: the operator token (every project). At least 16 characters.
    pub operator_token: Option<String>,
    /// `CODIFIER_ALLOWED_HOSTS`: `Host` header values accepted (comma-separated).
    pub allowed_hosts: Vec<String>,
    /// `CODIFIER_LOG` (an env-filter directive such as `info` or `codifier=debug`).
    pub log_filter: String,
    /// `CODIFIER_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `CODIFIER_KEY_CACHE_SECONDS`: how long a verified API key is trusted without checking again.
    pub key_cache_ttl: Duration,
    /// `CODIFIER_MAX_BODY_BYTES`: the largest HTTP request body accepted.
    pub max_body_bytes: usize,
    /// `CODIFIER_ADDR_FILE`: when set, the bound address is written there (for scripts and tests).
    pub addr_file: Option<PathBuf>,
    /// `CODIFIER_EMBEDDINGS` and the provider's own settings.
    pub embeddings: EmbeddingsConfig,
    /// `CODIFIER_DUPLICATE_THRESHOLD`: similarity at which a new memory is called a near duplicate.
    pub duplicate_threshold: f32,
    /// `CODIFIER_PUBLIC_URL` (else `https://$FLY_APP_NAME.fly.dev` on Fly.io): the base URL
    /// clients reach the server at, named in the protected-resource document.
    pub public_url: Option<String>,
    /// `CODIFIER_AUTHORIZATION_SERVERS`: OAuth authorization server URLs (comma-separated).
    pub authorization_servers: Vec<String>,
    /// `CODIFIER_SHUTDOWN_GRACE_SECONDS`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// `CODIFIER_SESSION_IDLE_SECONDS`: how long a Streamable HTTP session stays in memory
    /// without a message; its next request brings it back from the database.
    pub session_idle: Duration,
    /// `CODIFIER_CONSOLE_SESSION_HOURS`: how long a web console sign-in lasts (default 12 h).
    pub console_session: Duration,
    /// `CODIFIER_METRICS_LISTEN`: a separate address serving `/metrics` without a key (for a
    /// scraper on the operator's private network); without it `/metrics` needs the operator token.
    pub metrics_listen: Option<SocketAddr>,
    /// The Athena sidecar (`CODIFIER_ATHENA_*`); `None` when `CODIFIER_ATHENA_COMMAND` is unset.
    pub athena: Option<crate::athena::AthenaConfig>,
    /// Playbooks (`CODIFIER_PLAYBOOKS_DIR`, `CODIFIER_TEMPLATES_DIR`, `CODIFIER_SAMPLING_*`).
    pub playbooks: PlaybooksConfig,
    /// `CODIFIER_PACK_*` and the forge tokens: see [`crate::packer::PackerSettings`].
    pub packer: crate::packer::PackerSettings,
    /// Event streams and webhook deliveries (`CODIFIER_WEBHOOK_*`, `CODIFIER_EVENTS_POLL_MS`).
    pub events: crate::events::EventsConfig,
    /// The OAuth authorization server (`CODIFIER_OAUTH*`).
    pub oauth: crate::oauth::OAuthConfig,
    /// Repeated wrong keys per client address (`CODIFIER_AUTH_FAILURES`, …): see
    /// [`crate::auth::throttle`].
    pub auth_throttle: crate::auth::throttle::ThrottleConfig,
}

/// Where extra playbooks and templates come from, and how generate steps use MCP sampling.
#[derive(Debug, Clone)]
pub struct PlaybooksConfig {
    /// `CODIFIER_PLAYBOOKS_DIR`: `*.yaml` playbooks that add to or replace the shipped ones.
    pub playbooks_dir: Option<PathBuf>,
    /// `CODIFIER_TEMPLATES_DIR`: `*.md.j2` templates that add to or replace the shipped ones.
    pub templates_dir: Option<PathBuf>,
    /// `CODIFIER_SAMPLING`: generate through the client's model when it supports MCP sampling.
    pub sampling: bool,
    /// `CODIFIER_SAMPLING_TIMEOUT_SECONDS`: how long to wait for the client's model.
    pub sampling_timeout: Duration,
    /// How the `requestState` of an input-required result (protocol 2026-07-28) is sealed.
    pub request_state: RequestStateConfig,
}

/// The key and lifetime of the `requestState` a 2026-07-28 client echoes back with the input a
/// generate step asked its model for.
#[derive(Clone)]
pub struct RequestStateConfig {
    /// `CODIFIER_REQUEST_STATE_SECRET` (32 bytes or more): the HMAC key. Unset: a random key
    /// stored in the database by the first server that needs one and shared by every server on
    /// that database.
    pub secret: Option<String>,
    /// `CODIFIER_REQUEST_STATE_TTL_SECONDS`: how long a client has to answer (default 600).
    pub ttl: Duration,
}

impl Default for RequestStateConfig {
    fn default() -> Self {
        Self {
            secret: None,
            ttl: Duration::from_secs(600),
        }
    }
}

impl std::fmt::Debug for RequestStateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStateConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The smallest `CODIFIER_REQUEST_STATE_SECRET` accepted, in bytes (an HMAC-SHA256 key).
pub const MIN_REQUEST_STATE_SECRET: usize = 32;

fn request_state_from_env() -> anyhow::Result<RequestStateConfig> {
    let secret = var("CODIFIER_REQUEST_STATE_SECRET");
    if let Some(secret) = &secret
        && secret.len() < MIN_REQUEST_STATE_SECRET
    {
        bail!(
            "CODIFIER_REQUEST_STATE_SECRET is {} bytes: use at least {MIN_REQUEST_STATE_SECRET} random bytes (e.g. `openssl rand -hex 32`), or unset it to let the servers share a key kept in the database",
            secret.len()
        );
    }
    let seconds = parse_var::<u64>("CODIFIER_REQUEST_STATE_TTL_SECONDS", "a number of seconds")?
        .unwrap_or(600);
    if seconds == 0 {
        bail!("CODIFIER_REQUEST_STATE_TTL_SECONDS is 0: give clients at least a second to answer");
    }
    Ok(RequestStateConfig {
        secret,
        ttl: Duration::from_secs(seconds),
    })
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        Self {
            playbooks_dir: None,
            templates_dir: None,
            sampling: true,
            sampling_timeout: Duration::from_secs(120),
            request_state: RequestStateConfig::default(),
        }
    }
}

fn playbooks_from_env() -> anyhow::Result<PlaybooksConfig> {
    let sampling = match var("CODIFIER_SAMPLING").as_deref() {
        None | Some("on") | Some("true") | Some("1") => true,
        Some("off") | Some("false") | Some("0") => false,
        Some(other) => bail!("CODIFIER_SAMPLING={other:?} is not `on` or `off`"),
    };
    let seconds = parse_var::<u64>("CODIFIER_SAMPLING_TIMEOUT_SECONDS", "a number of seconds")?
        .unwrap_or(120);
    if seconds == 0 {
        bail!(
            "CODIFIER_SAMPLING_TIMEOUT_SECONDS is 0: set CODIFIER_SAMPLING=off to turn sampling off"
        );
    }
    Ok(PlaybooksConfig {
        playbooks_dir: var("CODIFIER_PLAYBOOKS_DIR").map(PathBuf::from),
        templates_dir: var("CODIFIER_TEMPLATES_DIR").map(PathBuf::from),
        sampling,
        sampling_timeout: Duration::from_secs(seconds),
        request_state: request_state_from_env()?,
    })
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allowed_hosts", &self.allowed_hosts)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("embeddings", &self.embeddings)
            .field("duplicate_threshold", &self.duplicate_threshold)
            .field("public_url", &self.public_url)
            .field("authorization_servers", &self.authorization_servers)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("session_idle", &self.session_idle)
            .field("console_session", &self.console_session)
            .field("metrics_listen", &self.metrics_listen)
            .field("athena", &self.athena)
            .field("playbooks", &self.playbooks)
            .field("packer", &self.packer)
            .field("oauth", &self.oauth)
            .finish()
    }
}

/// A database URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:<redacted>{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Reads one variable; blank counts as unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Reads and parses one variable (`None` when unset); a value that does not parse names the
/// variable and says it is not `what`.
pub(crate) fn parse_var<T: std::str::FromStr>(name: &str, what: &str) -> anyhow::Result<Option<T>> {
    var(name)
        .map(|text| {
            text.parse::<T>()
                .map_err(|_| anyhow::anyhow!("{name}={text:?} is not {what}"))
        })
        .transpose()
}

/// A positive whole number from `name`, or `default` when it is unset.
pub(crate) fn positive_var(name: &str, default: u64) -> anyhow::Result<u64> {
    match parse_var::<u64>(name, "a positive whole number")? {
        None => Ok(default),
        Some(0) => anyhow::bail!("{name}=\"0\" is not a positive whole number"),
        Some(value) => Ok(value),
    }
}

/// A switch from `name` (`on`, `true`, `1` or `off`, `false`, `0`), or `default` when unset.
pub(crate) fn switch_var(name: &str, default: bool) -> anyhow::Result<bool> {
    match var(name).as_deref() {
        None => Ok(default),
        Some("on" | "true" | "1") => Ok(true),
        Some("off" | "false" | "0") => Ok(false),
        Some(other) => anyhow::bail!("{name}={other:?} is not on or off (true or false)"),
    }
}

/// `CODIFIER_DATA_DIR`, else `codifier` in the user's data directory: the embedded database
/// and the command line's token-count cache live there.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    match var("CODIFIER_DATA_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => dirs::data_dir().map(|dir| dir.join("codifier")).context(
            "no per-user data directory is known here: set DATABASE_URL or CODIFIER_DATA_DIR",
        ),
    }
}

/// Where the embedded database lives when `DATABASE_URL` is unset.
pub fn default_database_url() -> anyhow::Result<String> {
    let dir = data_dir()?;
    Ok(format!("sqlite://{}", dir.join("codifier.db").display()))
}

impl Config {
    /// Reads the configuration; `listen` overrides the environment's listen address.
    pub fn from_env(listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        let database_url = match var("DATABASE_URL") {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:"))
                {
                    bail!("DATABASE_URL must start with sqlite:, postgres: or postgresql:");
                }
                url
            }
            None => default_database_url()?,
        };
        let listen = match listen {
            Some(listen) => listen,
            None => {
                match parse_var::<SocketAddr>("CODIFIER_LISTEN", "an address like 127.0.0.1:8080")?
                {
                    Some(listen) => listen,
                    None => match parse_var::<u16>("PORT", "a port number")? {
                        Some(port) => SocketAddr::from(([0, 0, 0, 0], port)),
                        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
                    },
                }
            }
        };
        let operator_token = var("API_AUTH_TOKEN");
        if let Some(token) = &operator_token
            && token.chars().count() < 16
        {
            bail!(
                "API_AUTH_TOKEN is shorter than 16 characters: use a long random value (e.g. `openssl rand -hex 32`)"
            );
        }
        let mut allowed_hosts = match var("CODIFIER_ALLOWED_HOSTS") {
            Some(list) => list
                .split(',')
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
            None => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        };
        let fly_app = var("FLY_APP_NAME");
        if let Some(app) = &fly_app {
            allowed_hosts.push(format!("{app}.fly.dev"));
        }
        let public_url = var("CODIFIER_PUBLIC_URL")
            .or_else(|| fly_app.map(|app| format!("https://{app}.fly.dev")));
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("CODIFIER_PUBLIC_URL={url:?} is not an http(s) URL");
        }
        let authorization_servers: Vec<String> = var("CODIFIER_AUTHORIZATION_SERVERS")
            .map(|list| {
                list.split(',')
                    .map(|url| url.trim().to_owned())
                    .filter(|url| !url.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(url) = authorization_servers
            .iter()
            .find(|url| !url.starts_with("https://"))
        {
            bail!("CODIFIER_AUTHORIZATION_SERVERS: {url:?} is not an https:// URL");
        }
        let shutdown_grace = Duration::from_secs(
            parse_var::<u64>("CODIFIER_SHUTDOWN_GRACE_SECONDS", "a number of seconds")?
                .unwrap_or(10),
        );
        let session_idle = Duration::from_secs(
            parse_var::<u64>("CODIFIER_SESSION_IDLE_SECONDS", "a number of seconds")?
                .unwrap_or(60)
                .max(1),
        );
        let console_hours =
            parse_var::<u64>("CODIFIER_CONSOLE_SESSION_HOURS", "a number of hours")?.unwrap_or(12);
        if !(1..=24 * 30).contains(&console_hours) {
            bail!("CODIFIER_CONSOLE_SESSION_HOURS={console_hours} is not between 1 and 720");
        }
        let log_format = match var("CODIFIER_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("CODIFIER_LOG_FORMAT={other:?} is not `text` or `json`"),
        };
        let log_filter = var("CODIFIER_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter).map_err(|error| {
            anyhow::anyhow!("CODIFIER_LOG={log_filter:?} is not a log filter: {error}")
        })?;
        let key_cache_ttl = Duration::from_secs(
            parse_var::<u64>("CODIFIER_KEY_CACHE_SECONDS", "a number of seconds")?.unwrap_or(5),
        );
        let max_body_bytes =
            parse_var::<usize>("CODIFIER_MAX_BODY_BYTES", "a number of bytes")?.unwrap_or(2 << 20);
        if max_body_bytes < 1024 {
            bail!("CODIFIER_MAX_BODY_BYTES is below 1024: requests could not carry a tool call");
        }
        let duplicate_threshold =
            parse_var::<f32>("CODIFIER_DUPLICATE_THRESHOLD", "a number from 0 to 1")?
                .unwrap_or(0.92);
        if !(0.0..=1.0).contains(&duplicate_threshold) {
            bail!("CODIFIER_DUPLICATE_THRESHOLD={duplicate_threshold} is not between 0 and 1");
        }
        Ok(Self {
            athena: crate::athena::AthenaConfig::from_env()?,
            packer: crate::packer::PackerSettings::from_env()?,
            events: crate::events::EventsConfig::from_env()?,
            oauth: crate::oauth::OAuthConfig::from_env()?,
            auth_throttle: crate::auth::throttle::ThrottleConfig::from_env()?,
            embeddings: embeddings_from_env()?,
            playbooks: playbooks_from_env()?,
            duplicate_threshold,
            database_url,
            listen,
            operator_token,
            allowed_hosts,
            log_filter,
            log_format,
            key_cache_ttl,
            max_body_bytes,
            addr_file: var("CODIFIER_ADDR_FILE").map(PathBuf::from),
            public_url,
            authorization_servers,
            shutdown_grace,
            session_idle,
            console_session: Duration::from_secs(console_hours * 3600),
            metrics_listen: parse_var::<SocketAddr>(
                "CODIFIER_METRICS_LISTEN",
                "an address like 0.0.0.0:9091",
            )?,
        })
    }
}

/// Where the local model's files are looked for (and fetched to) when `CODIFIER_MODEL_DIR` is
/// unset: `models/all-MiniLM-L6-v2` in the data directory.
pub fn default_model_dir() -> Option<PathBuf> {
    data_dir().ok().map(|dir| {
        dir.join("models")
            .join(crate::embeddings::local::MODEL_NAME)
    })
}

/// The local model's directory and how to fetch its files: `CODIFIER_MODEL_DIR`,
/// `CODIFIER_MODEL_FETCH` (`on`, the default, or `off`), `CODIFIER_MODEL_SOURCES` and
/// `CODIFIER_MODEL_FETCH_TIMEOUT_SECONDS`.
pub fn local_model_from_env()
-> anyhow::Result<(PathBuf, Option<crate::embeddings::fetch::FetchConfig>)> {
    use crate::embeddings::fetch::{FetchConfig, parse_sources};
    let model_dir = var("CODIFIER_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(default_model_dir)
        .context("no data directory is known here: set CODIFIER_MODEL_DIR to the local model's directory")?;
    let fetch = match var("CODIFIER_MODEL_FETCH").as_deref() {
        None | Some("on") | Some("true") | Some("1") => true,
        Some("off") | Some("false") | Some("0") => false,
        Some(other) => bail!("CODIFIER_MODEL_FETCH={other:?} is not `on` or `off`"),
    };
    let mut config = FetchConfig::default();
    if let Some(list) = var("CODIFIER_MODEL_SOURCES") {
        config.sources = parse_sources(&list)
            .map_err(|error| anyhow::anyhow!("CODIFIER_MODEL_SOURCES: {error}"))?;
    }
    if let Some(seconds) = parse_var::<u64>(
        "CODIFIER_MODEL_FETCH_TIMEOUT_SECONDS",
        "a number of seconds",
    )? {
        if seconds == 0 {
            bail!(
                "CODIFIER_MODEL_FETCH_TIMEOUT_SECONDS is 0: set CODIFIER_MODEL_FETCH=off to turn downloading off"
            );
        }
        config.timeout = Duration::from_secs(seconds);
    }
    Ok((model_dir, fetch.then_some(config)))
}

fn embeddings_from_env() -> anyhow::Result<EmbeddingsConfig> {
    let local = || -> anyhow::Result<EmbeddingsConfig> {
        let (model_dir, fetch) = local_model_from_env()?;
        Ok(EmbeddingsConfig::Local { model_dir, fetch })
    };
    match var("CODIFIER_EMBEDDINGS").as_deref() {
        Some("none") => Ok(EmbeddingsConfig::None),
        // Unset: the local model, its files fetched in the background when they are missing
        // (unless downloading is off; then search says why it uses words only).
        Some("local") | None => local(),
        Some("openai") | Some("http") => {
            let base_url =
                var("CODIFIER_EMBEDDING_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                bail!("CODIFIER_EMBEDDING_URL={base_url:?} is not an http(s) URL");
            }
            let dimensions =
                parse_var::<usize>("CODIFIER_EMBEDDING_DIMENSIONS", "a number of dimensions")?;
            Ok(EmbeddingsConfig::Http(
                crate::embeddings::http::HttpEmbedderConfig {
                    base_url,
                    model: var("CODIFIER_EMBEDDING_MODEL")
                        .unwrap_or_else(|| "text-embedding-3-small".into()),
                    api_key: var("CODIFIER_EMBEDDING_API_KEY").or_else(|| var("OPENAI_API_KEY")),
                    send_dimensions: dimensions.is_some(),
                    dimensions: dimensions.unwrap_or(1536),
                    batch_size: parse_var::<usize>("CODIFIER_EMBEDDING_BATCH", "a batch size")?
                        .unwrap_or(64),
                    timeout: Duration::from_secs(
                        parse_var::<u64>(
                            "CODIFIER_EMBEDDING_TIMEOUT_SECONDS",
                            "a number of seconds",
                        )?
                        .unwrap_or(30),
                    ),
                    max_retries: 4,
                },
            ))
        }
        Some(other) => bail!("CODIFIER_EMBEDDINGS={other:?} is not `local`, `openai` or `none`"),
    }
}

impl EmbeddingsConfig {
    /// The provider's name (the `CODIFIER_EMBEDDINGS` value) and its model, for logs.
    pub fn provider_and_model(&self) -> (&'static str, String) {
        match self {
            Self::None => ("none", "-".into()),
            Self::Local { .. } => ("local", crate::embeddings::local::MODEL_NAME.into()),
            Self::Http(http) => ("openai", http.model.clone()),
        }
    }

    /// Where the provider's model comes from, in words for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::None => "none: full-text search only (CODIFIER_EMBEDDINGS=none)".into(),
            Self::Local { model_dir, fetch } => {
                let files = if crate::embeddings::local::files_present(model_dir) {
                    "files present".to_owned()
                } else if let Some(fetch) = fetch {
                    let sources: Vec<String> = fetch.sources.iter().map(|s| s.label()).collect();
                    format!(
                        "files missing: fetching them in the background from {}",
                        sources.join(", then ")
                    )
                } else {
                    "files missing and downloading is off (CODIFIER_MODEL_FETCH=off): full-text search only".into()
                };
                format!("local model in {} ({files})", model_dir.display())
            }
            Self::Http(http) => format!("OpenAI-compatible API at {}", http.base_url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_never_reaches_the_debug_output() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/codifier"),
            "postgres://app:<redacted>@db:5432/codifier"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
