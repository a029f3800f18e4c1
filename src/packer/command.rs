//! `codifier pack <url|path>`: the packer from the command line, for the local operator. Writes
//! the packed text to a file or stdout (streaming), shows progress on a terminal, and prints a
//! summary on stderr; the small `codifier-pack` program beside `codifier` does this part (see
//! [`hand_over`]). With `--project` it stores a snapshot instead, as `pack_repo` does.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::Args;

use super::clone::{Cloned, Credentials};
use super::count_file::FileTokenCache;
use super::git_cli;
use super::source::RemoteUrl;
use super::{
    Encoding, Git, PackOptions, PackerSettings, Progress, RepoSource, SecretMode, SourcePolicy,
    Style,
};
use crate::auth::Identity;
use crate::config::Config;
use crate::knowledge::snapshots::{self, PackRequest};

/// Options of `codifier pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// A repository URL (https://, ssh://, git@host:owner/repo, file://) or a local directory.
    pub source: String,
    /// Write the pack here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Output style: xml, markdown, plain or json.
    #[arg(long, default_value = "xml", value_parser = ["xml", "markdown", "plain", "json"])]
    pub style: String,
    /// A branch, tag or full commit id to pack (URLs only).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Commits of history to fetch (1 = shallow; 0 = all).
    #[arg(long, default_value_t = 1)]
    pub depth: u32,
    /// Only files matching these globs (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Leave out files matching these globs (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Do not apply the built-in ignores (lock files, build output, vendored code, media).
    #[arg(long)]
    pub no_default_ignores: bool,
    /// Do not apply .gitignore, .codifierignore and .repomixignore.
    #[arg(long)]
    pub no_gitignore: bool,
    /// Leave out files larger than this many bytes (default: CODIFIER_PACK_MAX_FILE_BYTES).
    #[arg(long)]
    pub max_file_bytes: Option<u64>,
    /// Stop when the files add up to more than this many bytes (default: CODIFIER_PACK_MAX_TOTAL_BYTES).
    #[arg(long)]
    pub max_total_bytes: Option<u64>,
    /// Files holding credentials: exclude, redact, or off (no scan).
    #[arg(long, default_value = "exclude", value_parser = ["exclude", "redact", "off"])]
    pub secrets: String,
    /// Tokenizer: o200k_base or cl100k_base.
    #[arg(long, default_value = "o200k_base", value_parser = ["o200k_base", "cl100k_base"])]
    pub encoding: String,
    /// Prefix each line with its number.
    #[arg(long)]
    pub line_numbers: bool,
    /// How many of the largest files the summary names.
    #[arg(long, default_value_t = 10)]
    pub top_files: usize,
    /// Do not read or write the token-count cache (`token-counts.v1` in the data directory).
    #[arg(long)]
    pub no_cache: bool,
    /// Store a snapshot in this project (id or name) instead of writing the text.
    #[arg(long)]
    pub project: Option<String>,
    /// The snapshot's version label (with --project).
    #[arg(long)]
    pub version_label: Option<String>,
    /// Print the summary as JSON on stderr instead of text.
    #[arg(long)]
    pub json_summary: bool,
}

impl PackArgs {
    fn options(&self, settings: &PackerSettings) -> PackOptions {
        PackOptions {
            reference: self.reference.clone(),
            depth: self.depth,
            include: self.include.clone(),
            ignore: self.ignore.clone(),
            default_ignores: !self.no_default_ignores,
            gitignore: !self.no_gitignore,
            max_file_bytes: self.max_file_bytes.unwrap_or(settings.max_file_bytes),
            max_total_bytes: self.max_total_bytes.unwrap_or(settings.max_total_bytes),
            secrets: SecretMode::parse(&self.secrets).unwrap_or_default(),
            encoding: Encoding::parse(&self.encoding).unwrap_or_default(),
            style: Style::parse(&self.style).unwrap_or_default(),
            line_numbers: self.line_numbers,
            top_files: self.top_files,
            timeout: settings.timeout,
            exclude_path: self.output.clone(),
        }
    }
}

/// The companion program that packs to a file or stdout, installed beside `codifier`.
pub const COMPANION: &str = "codifier-pack";

/// Which sources this executable was built from (a hash `build.rs` computes).
pub const BUILD_ID: &str = env!("CODIFIER_BUILD_ID");

/// Set by `codifier` when it hands a pack to [`COMPANION`] (to the build it expects), and by a
/// companion sending a pack back: `codifier` packs by itself whenever it is set.
const EXPECTED_BUILD: &str = "CODIFIER_PACK_BUILD";

/// Hands `codifier pack` over to [`COMPANION`] beside the running executable, replacing this
/// process (its exit status and output are the pack's). The companion is a small program without
/// libgit2 or OpenSSL: a pack pages in a few MB of code instead of touching the server's
/// executable all over. Returns when there is no companion to run, when the source needs
/// libgit2 ([`needs_libgit2`]: a URL to clone, a repository whose HEAD only libgit2 reads, any
/// repository when no `git` is on `PATH`), or when a companion
/// from another build sent the pack back; the caller then packs in its own process. `args` are
/// the arguments after `pack`.
pub fn hand_over(source: &str, args: impl IntoIterator<Item = OsString>) {
    if std::env::var_os(EXPECTED_BUILD).is_some() || needs_libgit2(source) {
        return;
    }
    if let Some(companion) = beside_this_executable(COMPANION) {
        // `exec` returns only if the program could not start.
        let _ = exec(
            Command::new(companion)
                .args(args)
                .env(EXPECTED_BUILD, BUILD_ID),
        );
    }
}

/// Whether packing `source` needs libgit2: a URL (cloned), a directory whose HEAD git's files
/// alone do not say, or a directory in a repository when no `git` is on `PATH` (the companion
/// asks `git` for the `origin` remote and whether the working tree still matches its commit,
/// [`git_cli`]). A source that does not parse does not: the pack reports the mistake.
pub fn needs_libgit2(source: &str) -> bool {
    match RepoSource::parse(source, LOCAL_OPERATOR) {
        Ok(RepoSource::Local(path)) => path.canonicalize().is_ok_and(|root| {
            super::head::from_files(&root).is_none()
                || (super::head::in_repository(&root) && !git_cli::on_path())
        }),
        Ok(RepoSource::Remote(_)) => true,
        Err(_) => false,
    }
}

/// The companion's work: sends the pack back to the `codifier` beside it when it needs libgit2,
/// when `git` could not answer, or when `codifier` expected another build (`codifier` then
/// packs by itself), else packs.
pub fn companion(args: PackArgs, raw: impl IntoIterator<Item = OsString>) -> anyhow::Result<()> {
    let other_build = std::env::var_os(EXPECTED_BUILD).is_some_and(|expected| expected != BUILD_ID);
    if !other_build
        && !needs_libgit2(&args.source)
        && let Some(git) = WithoutLibgit2::inspecting(&args.source)
    {
        return write_pack(args, &git);
    }
    let codifier = beside_this_executable("codifier").with_context(|| {
        format!("{COMPANION} cannot pack this without the codifier beside it: run `codifier pack`")
    })?;
    let error = exec(
        Command::new(codifier)
            .arg("pack")
            .args(raw)
            .env(EXPECTED_BUILD, BUILD_ID),
    );
    Err(anyhow::anyhow!(
        "{COMPANION} cannot hand the pack to codifier ({error}): run `codifier pack`"
    ))
}

/// Git for the companion, which links no libgit2. It is never asked to clone, nor to read a HEAD
/// git's files do not answer: [`companion`] sends those packs back to `codifier` first. What
/// libgit2 would say of the working tree, `git` said before the pack began ([`git_cli`]).
struct WithoutLibgit2 {
    /// The packed directory (canonical), and its `origin` remote and working tree.
    inspected: Option<(PathBuf, Inspected)>,
}

type Inspected = (Option<String>, Option<super::WorkingTree>);

impl WithoutLibgit2 {
    /// Asks `git` about `source` when it is a local directory; `None` when `git` could not say,
    /// so that libgit2 must.
    fn inspecting(source: &str) -> Option<Self> {
        let root = match RepoSource::parse(source, LOCAL_OPERATOR) {
            Ok(RepoSource::Local(path)) => path.canonicalize().ok(),
            _ => None,
        };
        let Some(root) = root.filter(|root| root.is_dir()) else {
            // Nothing to inspect: the pack reports what is wrong with the source.
            return Some(Self { inspected: None });
        };
        let inspected = git_cli::inspect(&root).ok()?;
        Some(Self {
            inspected: Some((root, inspected)),
        })
    }
}

impl Git for WithoutLibgit2 {
    fn clone(
        &self,
        _: &RemoteUrl,
        _: &PackOptions,
        _: &Credentials,
    ) -> Result<Cloned, super::PackError> {
        Err(super::PackError::Invalid(format!(
            "{COMPANION} packs local directories only: clone with `codifier pack`"
        )))
    }

    fn local_head(&self, root: &Path) -> (Option<String>, Option<String>) {
        super::head::from_files(root).unwrap_or_default()
    }

    fn inspect(&self, root: &Path) -> Inspected {
        match &self.inspected {
            Some((inspected_root, inspected)) if inspected_root == root => inspected.clone(),
            _ => git_cli::inspect(root).unwrap_or_default(),
        }
    }
}

/// The person at the terminal may pack local paths and hosts on their own network.
const LOCAL_OPERATOR: SourcePolicy = SourcePolicy {
    allow_local: true,
    allow_private_network: true,
};

fn beside_this_executable(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name)).filter(|path| path.is_file())
}

/// Replaces this process with `command`; returns only on failure.
fn exec(command: &mut Command) -> std::io::Error {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.exec()
    }
    #[cfg(not(unix))]
    {
        let _ = command;
        std::io::Error::other("handing a pack over needs exec (Unix)")
    }
}

/// `codifier pack --project`: packs and stores a snapshot, as `pack_repo` does.
pub async fn store_snapshot(config: Config, args: PackArgs) -> anyhow::Result<()> {
    let project = args
        .project
        .clone()
        .context("storing a snapshot needs --project")?;
    let options = args.options(&config.packer);
    let store = crate::app::open_store(&config).await?;
    crate::cli::project_named(&store, &project).await?;
    let mut settings = config.packer.clone();
    // The person at the terminal may pack hosts on their own network.
    settings.allow_private_network = true;
    let request = PackRequest {
        project,
        url: args.source.clone(),
        version_label: args.version_label.clone(),
        options,
    };
    let outcome = snapshots::pack(&store, &settings, &Identity::Local, "cli:pack", request)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}

/// `codifier pack` without `--project`: packs to a file or stdout, on this thread (with rayon
/// for the counting), with token counts cached in a file in the data directory. Needs neither
/// the database nor an async runtime.
pub fn write_pack(args: PackArgs, git: &dyn Git) -> anyhow::Result<()> {
    if args.project.is_some() {
        anyhow::bail!(
            "{COMPANION} writes packs only: store a snapshot with `codifier pack --project`"
        );
    }
    let settings = PackerSettings::from_env()?;
    let options = args.options(&settings);
    let cache: Option<FileTokenCache> = if args.no_cache {
        None
    } else {
        match crate::config::data_dir() {
            Ok(dir) => Some(FileTokenCache::new(&dir)),
            Err(error) => {
                eprintln!("note: no token-count cache ({error:#}); counting every file");
                None
            }
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let progress = move |step: Progress| {
        if terminal {
            show(step);
        }
    };
    let source = RepoSource::parse(&args.source, LOCAL_OPERATOR)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let prepared = super::prepare_with(
        git,
        &source,
        &options,
        &settings.credentials,
        &cache,
        &progress,
    )
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(256 << 10, file);
            prepared
                .write_to(&mut out, options.line_numbers, &progress)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(256 << 10, stdout.lock());
            prepared
                .write_to(&mut out, options.line_numbers, &progress)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
    }
    if terminal {
        eprint!("\r\x1b[K");
    }
    report(&prepared.summary, args.output.as_deref(), args.json_summary)
}

fn show(step: Progress) {
    let line = match step {
        Progress::Cloning => "cloning…".to_owned(),
        Progress::Walking => "walking…".to_owned(),
        Progress::Scanning { files } => format!("scanning {files} files…"),
        Progress::Scanned { done, files } => format!("scanned {done}/{files} files"),
        Progress::Writing { done, files } => format!("written {done}/{files} files"),
    };
    eprint!("\r\x1b[K{line}");
    let _ = std::io::stderr().flush();
}

fn report(
    summary: &super::PackSummary,
    output: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        eprintln!("{}", serde_json::to_string(summary)?);
        return Ok(());
    }
    let target = output
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "stdout".into());
    eprintln!(
        "packed {}: {}, {} bytes, {} tokens ({}) → {target}",
        summary.source,
        crate::plural::count(summary.file_count as usize, "file"),
        summary.total_bytes,
        summary.total_tokens,
        summary.encoding.as_str()
    );
    if let Some(tree) = summary.working_tree.as_ref().filter(|tree| tree.dirty) {
        eprintln!("uncommitted changes: {}", tree.describe());
    }
    for file in summary.top_files.iter().take(5) {
        eprintln!("  {:>9} tokens  {}", file.tokens, file.path);
    }
    if !summary.skipped.is_empty() {
        eprintln!(
            "left out {}:",
            crate::plural::count(summary.skipped.len(), "file")
        );
        for file in summary.skipped.iter().take(20) {
            let detail = file
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            eprintln!("  {:?}: {}{detail}", file.reason, file.path);
        }
        if summary.skipped.len() > 20 {
            eprintln!(
                "  … and {} more (--json-summary lists all)",
                summary.skipped.len() - 20
            );
        }
    }
    for file in &summary.redacted {
        eprintln!("redacted {} in {}", file.kinds.join(", "), file.path);
    }
    Ok(())
}
