//! The native repository packer: turns a git repository (cloned with git2, or a local working
//! tree for the local operator) into one AI-readable document, with exact token counts.
//!
//! Everything here is synchronous and CPU- or disk-bound: callers run it in `spawn_blocking`.
//! The pipeline is
//! 1. [`source`]: parse what the caller asked for and check they may pack it (remote only over
//!    HTTP, never an address on the server's own network);
//! 2. [`clone`]: a shallow git2 clone into a temporary directory removed on every path;
//! 3. [`walk`]: a gitignore-aware walk with default ignores, globs, size limits, no symlinks;
//! 4. [`scan`]: in parallel (rayon), read each file once, drop binaries and non-UTF-8, find
//!    secrets ([`secrets`]), hash (git blob id) and count tokens ([`tokens`], cached by blob id);
//! 5. [`Prepared::stream`]: read the kept files again in bounded batches, in path order, for
//!    [`render`] (a file or stdout) or the snapshot store — memory stays bounded by the batch.

pub mod bpe;
#[cfg(test)]
mod bpe_tests;
pub mod clone;
pub mod head;
mod pretokenize;
pub mod render;
pub mod scan;
pub mod secrets;
pub mod settings;
pub mod source;
pub mod tokens;
pub mod tree;
mod vocab_table;
pub mod walk;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use render::Style;
pub use secrets::SecretMode;
pub use settings::PackerSettings;
pub use source::{RepoSource, SourcePolicy};
pub use tokens::{Encoding, TokenCache};
pub use worktree::WorkingTree;

/// What can go wrong while packing, phrased for the caller to act on. Messages never contain a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The request itself is wrong (bad URL, bad glob, bad option).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not pack this source (a local path over HTTP, an internal address).
    #[error("{0}")]
    Forbidden(String),
    /// The repository, branch, tag or commit does not exist (or is hidden without credentials).
    #[error("{0}")]
    NotFound(String),
    /// The server asked for credentials we do not have, or refused the ones we sent.
    #[error("{0}")]
    NeedsCredentials(String),
    #[error("{0}")]
    Timeout(String),
    /// The pack grew past the configured total size.
    #[error("{0}")]
    TooLarge(String),
    /// Git, the network or the disk failed.
    #[error("{0}")]
    Failed(String),
}

/// How to pack: what to take in, and how to count and render it.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// A branch, tag or full commit id to check out (remote and `file://` sources).
    pub reference: Option<String>,
    /// Commits of history to fetch; 1 (shallow) by default, 0 for all.
    pub depth: u32,
    /// Only files matching one of these globs (gitignore syntax, relative to the root).
    pub include: Vec<String>,
    /// Leave out files matching these globs.
    pub ignore: Vec<String>,
    /// Apply the built-in ignores (lock files, build output, vendored dependencies, media).
    pub default_ignores: bool,
    /// Apply `.gitignore`, `.git/info/exclude`, `.codifierignore` and `.repomixignore`.
    pub gitignore: bool,
    /// Files larger than this are left out (and listed).
    pub max_file_bytes: u64,
    /// The pack stops when the kept files add up to more than this.
    pub max_total_bytes: u64,
    pub secrets: SecretMode,
    pub encoding: Encoding,
    pub style: Style,
    pub line_numbers: bool,
    /// How many of the largest files (by tokens) the summary names.
    pub top_files: usize,
    /// Clone and fetch must finish within this time.
    pub timeout: Duration,
    /// A path to leave out (the CLI's own output file when it lies inside the repository).
    pub exclude_path: Option<PathBuf>,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            reference: None,
            depth: 1,
            include: Vec::new(),
            ignore: Vec::new(),
            default_ignores: true,
            gitignore: true,
            max_file_bytes: 10 << 20,
            max_total_bytes: 256 << 20,
            secrets: SecretMode::Exclude,
            encoding: Encoding::O200kBase,
            style: Style::Xml,
            line_numbers: false,
            top_files: 10,
            timeout: Duration::from_secs(300),
            exclude_path: None,
        }
    }
}

/// Why a file was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Larger than the maximum file size.
    TooLarge,
    /// Contains NUL bytes (images, archives, compiled code).
    Binary,
    /// Not valid UTF-8 text, or a name that is not valid UTF-8.
    NotUtf8,
    /// A symbolic link: never followed, so nothing outside the repository can be read.
    Symlink,
    /// Contains what looks like a credential (with `secrets: exclude`).
    Secret,
    /// Could not be read.
    Unreadable,
}

/// A file left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedFile {
    pub path: String,
    pub reason: SkipReason,
    /// What was found or measured (size, the kinds of secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A file's share of the pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileTokens {
    pub path: String,
    pub tokens: u64,
    pub bytes: u64,
}

/// A file whose secrets were replaced by `[REDACTED …]` (with `secrets: redact`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RedactedFile {
    pub path: String,
    /// The kinds of secret found (e.g. `aws_access_key_id`).
    pub kinds: Vec<String>,
}

/// What a pack contains: everything but the text itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PackSummary {
    /// The repository URL, without credentials. For a local directory: its repository's
    /// `origin` remote when it is the repository's top, else its canonical absolute path.
    pub source: String,
    /// The commit packed, when the source is a git repository. A local working tree's text
    /// differs from it when `working_tree.dirty` says so.
    pub commit_sha: Option<String>,
    /// For a local directory in a git repository: how its files differ from `commit_sha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_tree: Option<WorkingTree>,
    /// The branch (or tag) packed, when known.
    pub branch: Option<String>,
    pub encoding: Encoding,
    pub style: Style,
    pub file_count: u64,
    pub total_bytes: u64,
    /// Tokens of every kept file's text, summed.
    pub total_tokens: u64,
    /// The files with the most tokens, most first.
    pub top_files: Vec<FileTokens>,
    pub skipped: Vec<SkippedFile>,
    pub redacted: Vec<RedactedFile>,
    /// Files whose token count came from the cache (unchanged since an earlier pack).
    pub cached_token_counts: u64,
}

/// One file of the pack, with its final text (redacted if needed).
#[derive(Debug, Clone)]
pub struct PackedFile {
    pub path: String,
    pub text: String,
    pub tokens: u64,
    pub blob_id: String,
}

/// A checked-out source, scanned and counted, ready to stream. Holds the clone's temporary
/// directory: dropping it removes the directory.
pub struct Prepared {
    pub summary: PackSummary,
    /// The directory tree of the kept files.
    pub tree: String,
    pub(crate) root: PathBuf,
    pub(crate) files: Vec<scan::KeptFile>,
    _checkout: Option<tempfile::TempDir>,
}

/// Fetches (or opens) the source, walks, scans and counts it. `progress` hears each stage.
pub fn prepare(
    source: &RepoSource,
    options: &PackOptions,
    credentials: &clone::Credentials,
    cache: &dyn TokenCache,
    progress: &dyn Fn(Progress),
) -> Result<Prepared, PackError> {
    let (root, checkout, commit_sha, branch, label, working_tree) = match source {
        RepoSource::Remote(remote) => {
            progress(Progress::Cloning);
            let cloned = clone::clone(remote, options, credentials)?;
            let root = cloned.dir.path().to_path_buf();
            let label = source.display();
            (
                root,
                Some(cloned.dir),
                Some(cloned.commit),
                cloned.branch,
                label,
                None,
            )
        }
        RepoSource::Local(path) => {
            let root = path.canonicalize().map_err(|error| {
                PackError::NotFound(format!("cannot open {}: {error}", path.display()))
            })?;
            if !root.is_dir() {
                return Err(PackError::Invalid(format!(
                    "{} is not a directory: give the repository's root directory",
                    path.display()
                )));
            }
            let (commit, branch) = head::local_head(&root);
            let (origin, working_tree) = worktree::inspect(&root);
            let label = origin.unwrap_or_else(|| root.display().to_string());
            let working_tree = working_tree.filter(|_| commit.is_some());
            (root, None, commit, branch, label, working_tree)
        }
    };
    progress(Progress::Walking);
    let walked = walk::walk(&root, options)?;
    progress(Progress::Scanning {
        files: walked.files.len(),
    });
    let scanned = scan::scan(&walked.files, options, cache, progress)?;
    let mut skipped = walked.skipped;
    skipped.extend(scanned.skipped);
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let tree = tree::render(scanned.kept.iter().map(|file| file.path.as_str()));
    let mut top: Vec<FileTokens> = scanned
        .kept
        .iter()
        .map(|file| FileTokens {
            path: file.path.clone(),
            tokens: file.tokens,
            bytes: file.bytes,
        })
        .collect();
    top.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.path.cmp(&b.path)));
    top.truncate(options.top_files);
    let summary = PackSummary {
        source: label,
        commit_sha,
        working_tree,
        branch,
        encoding: options.encoding,
        style: options.style,
        file_count: scanned.kept.len() as u64,
        total_bytes: scanned.kept.iter().map(|file| file.bytes).sum(),
        total_tokens: scanned.kept.iter().map(|file| file.tokens).sum(),
        top_files: top,
        skipped,
        redacted: scanned.redacted,
        cached_token_counts: scanned.cached,
    };
    Ok(Prepared {
        summary,
        tree,
        root,
        files: scanned.kept,
        _checkout: checkout,
    })
}

/// Where a pack is, for progress on a terminal.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Cloning,
    Walking,
    Scanning { files: usize },
    Scanned { done: usize, files: usize },
    Writing { done: usize, files: usize },
}

impl Prepared {
    /// Reads the kept files again in path order and hands them to `sink` in batches of at most
    /// about `batch_bytes` of text, so memory stays bounded whatever the repository's size.
    pub fn stream(
        &self,
        batch_bytes: u64,
        mut sink: impl FnMut(Vec<PackedFile>) -> Result<(), PackError>,
    ) -> Result<(), PackError> {
        use rayon::prelude::*;
        let mut start = 0;
        while start < self.files.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < self.files.len() && (end == start || bytes < batch_bytes) {
                bytes += self.files[end].bytes;
                end += 1;
            }
            let batch: Result<Vec<PackedFile>, PackError> = self.files[start..end]
                .par_iter()
                .map(scan::reread)
                .collect();
            sink(batch?)?;
            start = end;
        }
        Ok(())
    }

    /// Writes the whole pack in `style` to `out`, streaming.
    pub fn write_to(
        &self,
        out: &mut dyn std::io::Write,
        line_numbers: bool,
        progress: &dyn Fn(Progress),
    ) -> Result<(), PackError> {
        let write_error =
            |error: std::io::Error| PackError::Failed(format!("cannot write: {error}"));
        let style = self.summary.style;
        render::header(out, style, &self.summary, &self.tree).map_err(write_error)?;
        let mut first = true;
        let mut done = 0;
        let files = self.files.len();
        self.stream(1 << 20, |batch| {
            for file in &batch {
                render::file(out, style, file, line_numbers, first).map_err(write_error)?;
                first = false;
            }
            done += batch.len();
            progress(Progress::Writing { done, files });
            Ok(())
        })?;
        render::footer(out, style).map_err(write_error)?;
        out.flush().map_err(write_error)
    }

    /// The checked-out directory (a temporary clone, or the local path).
    pub fn root(&self) -> &Path {
        &self.root
    }
}
