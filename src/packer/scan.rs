//! The first pass over the walked files, in parallel (rayon) and in bounded batches: read each
//! file once, leave out binaries and non-UTF-8 text, find secrets, take the git blob id of the
//! final text, and count its tokens unless the cache already knows that blob. Only metadata is
//! kept; the text is read again when the pack is written ([`reread`]).

use std::path::PathBuf;

use rayon::prelude::*;

use super::walk::Candidate;
use super::{
    PackError, PackOptions, PackedFile, Progress, RedactedFile, SecretMode, SkipReason,
    SkippedFile, TokenCache, secrets, tokens,
};

/// A file that goes into the pack.
#[derive(Debug, Clone)]
pub struct KeptFile {
    pub path: String,
    pub abs: PathBuf,
    /// Bytes of the final text.
    pub bytes: u64,
    pub tokens: u64,
    pub blob_id: String,
    /// Whether credentials were found and must be redacted when the text is read again.
    pub redact: bool,
}

/// What the first pass found.
#[derive(Debug, Default)]
pub struct Scanned {
    pub kept: Vec<KeptFile>,
    pub skipped: Vec<SkippedFile>,
    pub redacted: Vec<RedactedFile>,
    /// How many counts came from the cache.
    pub cached: u64,
}

/// The most text held in memory at once by the first pass when a cache is consulted (the texts
/// of a batch wait for its lookup); without a cache, each text is counted as soon as it is read
/// and dropped, and batches only pace the progress reports.
const CACHED_BATCH_BYTES: u64 = 4 << 20;
const UNCACHED_BATCH_BYTES: u64 = 64 << 20;

enum Read {
    Text {
        /// The final text, until it is counted.
        text: String,
        bytes: u64,
        redacted: Option<Vec<&'static str>>,
        blob_id: String,
        tokens: Option<u64>,
    },
    Skip(SkippedFile),
}

/// Reads, filters, hashes and counts `files` (in path order), using and feeding `cache`.
pub fn scan(
    files: &[Candidate],
    options: &PackOptions,
    cache: &dyn TokenCache,
    progress: &dyn Fn(Progress),
) -> Result<Scanned, PackError> {
    let count_now = !cache.enabled();
    let batch_limit = if count_now {
        UNCACHED_BATCH_BYTES
    } else {
        CACHED_BATCH_BYTES
    };
    let mut scanned = Scanned::default();
    let mut start = 0;
    while start < files.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < files.len() && (end == start || bytes < batch_limit) {
            bytes += files[end].bytes;
            end += 1;
        }
        let batch = &files[start..end];
        let mut read: Vec<Read> = batch
            .par_iter()
            .map(|file| {
                let mut read = read_one(file, options.secrets);
                if count_now && let Read::Text { text, tokens, .. } = &mut read {
                    *tokens = Some(options.encoding.count(text));
                    *text = String::new();
                }
                read
            })
            .collect();
        let ids: Vec<String> = read
            .iter()
            .filter_map(|read| match read {
                Read::Text {
                    blob_id,
                    tokens: None,
                    ..
                } => Some(blob_id.clone()),
                _ => None,
            })
            .collect();
        let known = if ids.is_empty() {
            Default::default()
        } else {
            cache.lookup(options.encoding, &ids)
        };
        let mut fresh = Vec::new();
        read.par_iter_mut().for_each(|read| {
            if let Read::Text {
                text,
                blob_id,
                tokens: tokens @ None,
                ..
            } = read
            {
                *tokens = Some(match known.get(blob_id.as_str()) {
                    Some(count) => *count,
                    None => options.encoding.count(text),
                });
                *text = String::new();
            }
        });
        for (file, read) in batch.iter().zip(read) {
            match read {
                Read::Text {
                    bytes,
                    redacted,
                    blob_id,
                    tokens,
                    ..
                } => {
                    let tokens = tokens.expect("every text is counted");
                    if known.contains_key(blob_id.as_str()) {
                        scanned.cached += 1;
                    } else if !count_now {
                        fresh.push((blob_id.clone(), tokens));
                    }
                    if let Some(kinds) = &redacted {
                        scanned.redacted.push(RedactedFile {
                            path: file.path.clone(),
                            kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
                        });
                    }
                    scanned.kept.push(KeptFile {
                        path: file.path.clone(),
                        abs: file.abs.clone(),
                        bytes,
                        tokens,
                        blob_id,
                        redact: redacted.is_some(),
                    });
                }
                Read::Skip(skipped) => scanned.skipped.push(skipped),
            }
        }
        if !fresh.is_empty() {
            cache.record(options.encoding, &fresh);
        }
        progress(Progress::Scanned {
            done: end,
            files: files.len(),
        });
        start = end;
    }
    Ok(scanned)
}

/// Whether the first bytes hold a NUL, as git decides a file is binary.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0)
}

/// A file's final text, or why it is left out.
fn read_one(file: &Candidate, mode: SecretMode) -> Read {
    let (text, redacted) = match read_text(file, mode) {
        Ok(text) => text,
        Err(skipped) => return Read::Skip(skipped),
    };
    Read::Text {
        bytes: text.len() as u64,
        blob_id: tokens::blob_id(text.as_bytes()),
        text,
        redacted,
        tokens: None,
    }
}

type Text = (String, Option<Vec<&'static str>>);

/// The text of `file` (redacted when asked) and the kinds of secret redacted, or why it is left out.
fn read_text(file: &Candidate, mode: SecretMode) -> Result<Text, SkippedFile> {
    let skip = |reason, detail: Option<String>| SkippedFile {
        path: file.path.clone(),
        reason,
        detail,
    };
    let bytes = std::fs::read(&file.abs)
        .map_err(|error| skip(SkipReason::Unreadable, Some(error.to_string())))?;
    if looks_binary(&bytes) {
        return Err(skip(SkipReason::Binary, None));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        skip(
            SkipReason::NotUtf8,
            Some("the content is not UTF-8 text".into()),
        )
    })?;
    if mode == SecretMode::Off {
        return Ok((text, None));
    }
    let kinds = secrets::find(&text);
    if kinds.is_empty() {
        return Ok((text, None));
    }
    match mode {
        SecretMode::Exclude => Err(skip(SkipReason::Secret, Some(kinds.join(", ")))),
        _ => Ok((secrets::redact(&text), Some(kinds))),
    }
}

/// Reads a kept file again for writing, redacted as in the first pass.
pub fn reread(file: &KeptFile) -> Result<PackedFile, PackError> {
    let changed = || {
        PackError::Failed(format!(
            "{} changed while it was being packed: pack again",
            file.path
        ))
    };
    let bytes = std::fs::read(&file.abs).map_err(|_| changed())?;
    let mut text = String::from_utf8(bytes).map_err(|_| changed())?;
    if file.redact {
        text = secrets::redact(&text);
    }
    if text.len() as u64 != file.bytes {
        return Err(changed());
    }
    Ok(PackedFile {
        path: file.path.clone(),
        text,
        tokens: file.tokens,
        blob_id: file.blob_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_mark_a_file_binary() {
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_binary("plain text, ünïcode".as_bytes()));
    }
}
