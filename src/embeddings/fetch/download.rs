//! Downloading one URL into a temporary file of the model directory, hashing it as it arrives
//! and refusing it past a size limit; and the hub source, which downloads each pinned file.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{FILES, FetchError, Progress, Report, install, temporary};

/// A download that arrived whole: its temporary file, SHA-256 and length.
pub(super) struct Downloaded {
    pub temp: tempfile::NamedTempFile,
    pub sha256: String,
    pub bytes: u64,
}

/// The HTTP client for model downloads: bounded connect and read waits, and redirects followed
/// only to URLs the sources themselves could name (the hub redirects to its file CDN).
pub(super) fn client() -> Result<reqwest::Client, String> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if super::allowed(attempt.url()) {
            attempt.follow()
        } else {
            let refused = format!("refused a redirect to {}", attempt.url());
            attempt.error(refused)
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("codifier/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .redirect(redirects)
        .build()
        .map_err(|e| e.to_string())
}

/// Fetches every pinned file the directory lacks from `<base>/<name>`.
pub(super) async fn from_hub(
    client: &reqwest::Client,
    base: &url::Url,
    source: &str,
    dir: &Path,
    report: Report<'_>,
) -> Result<(), FetchError> {
    let missing = super::missing(dir)
        .await
        .map_err(|e| super::disk_error(dir, e))?;
    for file in FILES
        .iter()
        .filter(|f| missing.iter().any(|m| m.name == f.name))
    {
        let url = url::Url::parse(&format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            file.name
        ))
        .map_err(|e| refused(source, format!("{base}/{}: {e}", file.name)))?;
        let got = download(client, &url, file.name, file.size, source, dir, report).await?;
        let dir = dir.to_owned();
        let (file, source) = (*file, source.to_owned());
        tokio::task::spawn_blocking(move || {
            install(got.temp, got.sha256, got.bytes, &file, &dir, &source)
        })
        .await
        .map_err(|e| refused("model directory", e.to_string()))??;
    }
    Ok(())
}

/// Downloads `url` into a temporary file of `dir`, refusing more than `limit` bytes.
pub(super) async fn download(
    client: &reqwest::Client,
    url: &url::Url,
    name: &str,
    limit: u64,
    source: &str,
    dir: &Path,
    report: Report<'_>,
) -> Result<Downloaded, FetchError> {
    let unreachable = |message: String| FetchError::Unreachable {
        host: source.to_owned(),
        message,
    };
    let mut progress = Progress {
        source: source.to_owned(),
        file: name.to_owned(),
        bytes: 0,
        total: limit,
    };
    report(&progress);
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| unreachable(format!("{name}: {}", error_chain(&e))))?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "{name}: {url} answered {}",
            response.status()
        )));
    }
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(refused(
            source,
            format!("{name} is {length} bytes, more than the {limit} allowed"),
        ));
    }
    progress.total = response.content_length().unwrap_or(limit);
    let temp = temporary(dir)?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| super::disk_error(temp.path(), e))?;
    let mut out = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut percent = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(format!("{name}: {}", error_chain(&e))))?
    {
        progress.bytes += chunk.len() as u64;
        if progress.bytes > limit {
            return Err(refused(
                source,
                format!("{name} went past the {limit} bytes allowed"),
            ));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| super::disk_error(temp.path(), e))?;
        if progress.percent() != percent {
            percent = progress.percent();
            report(&progress);
        }
    }
    let written = match out.flush().await {
        Ok(()) => out.sync_all().await,
        Err(error) => Err(error),
    };
    written.map_err(|e| super::disk_error(temp.path(), e))?;
    Ok(Downloaded {
        temp,
        sha256: hex::encode(hasher.finalize()),
        bytes: progress.bytes,
    })
}

pub(super) fn refused(source: &str, message: String) -> FetchError {
    FetchError::Refused {
        host: source.to_owned(),
        message,
    }
}

/// An error with its causes ("error sending request … : connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
