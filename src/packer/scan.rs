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

/// The most text held in memory at once by the first pass.
const BATCH_BYTES: u64 = 8 << 20;

enum Read {
    Text {
        text: String,
        redacted: Option<Vec<&'static str>>,
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
    let mut scanned = Scanned::default();
    let mut start = 0;
    while start < files.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < files.len() && (end == start || bytes < BATCH_BYTES) {
            bytes += files[end].bytes;
            end += 1;
        }
        let batch = &files[start..end];
        let read: Vec<(Read, String)> = batch
            .par_iter()
            .map(|file| {
                let read = read_one(file, options.secrets);
                let id = match &read {
                    Read::Text { text, .. } => tokens::blob_id(text.as_bytes()),
                    Read::Skip(_) => String::new(),
                };
                (read, id)
            })
            .collect();
        let ids: Vec<String> = read
            .iter()
            .filter(|(read, _)| matches!(read, Read::Text { .. }))
            .map(|(_, id)| id.clone())
            .collect();
        let known = cache.lookup(options.encoding, &ids);
        let counted: Vec<Option<(u64, bool)>> = read
            .par_iter()
            .map(|(read, id)| match read {
                Read::Text { text, .. } => Some(match known.get(id) {
                    Some(count) => (*count, true),
                    None => (options.encoding.count(text), false),
                }),
                Read::Skip(_) => None,
            })
            .collect();
        let mut fresh = Vec::new();
        for ((file, (read, id)), count) in batch.iter().zip(read).zip(counted) {
            match (read, count) {
                (Read::Text { text, redacted }, Some((count, cached))) => {
                    if cached {
                        scanned.cached += 1;
                    } else {
                        fresh.push((id.clone(), count));
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
                        bytes: text.len() as u64,
                        tokens: count,
                        blob_id: id,
                        redact: redacted.is_some(),
                    });
                }
                (Read::Skip(skipped), _) => scanned.skipped.push(skipped),
                (Read::Text { .. }, None) => unreachable!("every text is counted"),
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

fn read_one(file: &Candidate, mode: SecretMode) -> Read {
    let skip = |reason, detail: Option<String>| {
        Read::Skip(SkippedFile {
            path: file.path.clone(),
            reason,
            detail,
        })
    };
    let bytes = match std::fs::read(&file.abs) {
        Ok(bytes) => bytes,
        Err(error) => return skip(SkipReason::Unreadable, Some(error.to_string())),
    };
    if looks_binary(&bytes) {
        return skip(SkipReason::Binary, None);
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            return skip(
                SkipReason::NotUtf8,
                Some("the content is not UTF-8 text".into()),
            );
        }
    };
    if mode == SecretMode::Off {
        return Read::Text {
            text,
            redacted: None,
        };
    }
    let kinds = secrets::find(&text);
    if kinds.is_empty() {
        return Read::Text {
            text,
            redacted: None,
        };
    }
    match mode {
        SecretMode::Exclude => skip(SkipReason::Secret, Some(kinds.join(", "))),
        _ => Read::Text {
            text: secrets::redact(&text),
            redacted: Some(kinds),
        },
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
