//! Which files go in: a gitignore-aware walk (`.gitignore`, `.git/info/exclude`,
//! `.codifierignore`, `.repomixignore`; never the server's global git configuration or the
//! ignore files of directories above the root), the built-in ignores, the caller's include and
//! ignore globs, and the size limits. Symbolic links are never followed, so nothing outside the
//! repository can be read through one.

use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;

use super::{PackError, PackOptions, SkipReason, SkippedFile};

/// Directories and files left out unless `default_ignores` is off: version control, dependency
/// and build directories, lock files, minified bundles, and media or archive formats.
pub const DEFAULT_IGNORES: &[&str] = &[
    ".git/",
    ".hg/",
    ".svn/",
    "node_modules/",
    "bower_components/",
    "jspm_packages/",
    "vendor/",
    "third_party/vendor/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".tox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "target/",
    "dist/",
    "build/",
    "out/",
    ".next/",
    ".nuxt/",
    ".svelte-kit/",
    ".turbo/",
    ".cache/",
    ".parcel-cache/",
    "coverage/",
    ".nyc_output/",
    ".gradle/",
    ".terraform/",
    "Pods/",
    "DerivedData/",
    ".idea/",
    ".DS_Store",
    "Thumbs.db",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "bun.lock",
    "Cargo.lock",
    "Gemfile.lock",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "composer.lock",
    "go.sum",
    "flake.lock",
    "mix.lock",
    "pubspec.lock",
    "packages.lock.json",
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.bmp",
    "*.ico",
    "*.webp",
    "*.avif",
    "*.tiff",
    "*.psd",
    "*.svg",
    "*.mp3",
    "*.mp4",
    "*.wav",
    "*.ogg",
    "*.flac",
    "*.webm",
    "*.mov",
    "*.avi",
    "*.mkv",
    "*.pdf",
    "*.zip",
    "*.tar",
    "*.gz",
    "*.tgz",
    "*.bz2",
    "*.xz",
    "*.zst",
    "*.7z",
    "*.rar",
    "*.jar",
    "*.war",
    "*.class",
    "*.woff",
    "*.woff2",
    "*.ttf",
    "*.otf",
    "*.eot",
    "*.exe",
    "*.dll",
    "*.so",
    "*.dylib",
    "*.a",
    "*.o",
    "*.obj",
    "*.lib",
    "*.pyc",
    "*.pyo",
    "*.wasm",
    "*.sqlite",
    "*.sqlite3",
    "*.db",
    "*.bin",
    "*.pkl",
    "*.npy",
    "*.safetensors",
    "*.onnx",
];

/// A file the walk kept: its path relative to the root (with `/`), and its size.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: String,
    pub abs: PathBuf,
    pub bytes: u64,
}

/// The walk's result, in path order.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: Vec<Candidate>,
    pub skipped: Vec<SkippedFile>,
}

/// Walks `root` with the rules of `options`. Stops with [`PackError::TooLarge`] when the files
/// kept add up to more than `options.max_total_bytes`.
pub fn walk(root: &Path, options: &PackOptions) -> Result<Walked, PackError> {
    let mut overrides = OverrideBuilder::new(root);
    let invalid = |glob: &str, error: ignore::Error| {
        PackError::Invalid(format!(
            "the glob `{glob}` is not valid ({error}): fix or remove it"
        ))
    };
    for glob in &options.include {
        overrides.add(glob).map_err(|error| invalid(glob, error))?;
    }
    for glob in &options.ignore {
        let glob = glob.trim_start_matches('!');
        overrides
            .add(&format!("!{glob}"))
            .map_err(|error| invalid(glob, error))?;
    }
    if options.default_ignores {
        for glob in DEFAULT_IGNORES {
            overrides
                .add(&format!("!{glob}"))
                .expect("the built-in ignore globs are valid");
        }
    } else {
        overrides.add("!.git/").expect("valid glob");
    }
    let overrides = overrides
        .build()
        .map_err(|error| PackError::Invalid(format!("the globs do not combine: {error}")))?;
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_ignore(options.gitignore)
        .git_exclude(options.gitignore)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .sort_by_file_name(|a, b| a.cmp(b));
    if options.gitignore {
        builder.add_custom_ignore_filename(".codifierignore");
        builder.add_custom_ignore_filename(".repomixignore");
    }
    let excluded = options
        .exclude_path
        .as_ref()
        .and_then(|path| path.canonicalize().ok());
    let mut walked = Walked::default();
    let mut total = 0u64;
    for entry in builder.build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::debug!(%error, "skipping an unreadable entry");
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let Some(path) = relative.to_str().map(|path| path.replace('\\', "/")) else {
            walked.skipped.push(SkippedFile {
                path: relative.to_string_lossy().into_owned(),
                reason: SkipReason::NotUtf8,
                detail: Some("the file name is not valid UTF-8".into()),
            });
            continue;
        };
        if file_type.is_symlink() {
            walked.skipped.push(SkippedFile {
                path,
                reason: SkipReason::Symlink,
                detail: None,
            });
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        if excluded.as_deref() == Some(entry.path()) {
            continue;
        }
        let bytes = match entry.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => {
                walked.skipped.push(SkippedFile {
                    path,
                    reason: SkipReason::Unreadable,
                    detail: Some(error.to_string()),
                });
                continue;
            }
        };
        if bytes > options.max_file_bytes {
            walked.skipped.push(SkippedFile {
                path,
                reason: SkipReason::TooLarge,
                detail: Some(format!(
                    "{bytes} bytes; the limit is {} (max_file_bytes)",
                    options.max_file_bytes
                )),
            });
            continue;
        }
        total += bytes;
        if total > options.max_total_bytes {
            return Err(PackError::TooLarge(format!(
                "the repository's files add up to more than {} bytes (the total size limit) after {} files: narrow the pack with `include` (e.g. [\"src/**\"]) or `ignore` globs, or a lower `max_file_bytes`; the operator can raise CODIFIER_PACK_MAX_TOTAL_BYTES",
                options.max_total_bytes,
                walked.files.len()
            )));
        }
        walked.files.push(Candidate {
            path,
            abs: entry.into_path(),
            bytes,
        });
    }
    walked.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walked)
}
