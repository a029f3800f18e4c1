//! `codifier pack <url|path>`: the packer from the command line, for the local operator. Writes
//! the packed text to a file or stdout (streaming, on the calling thread, without the database
//! or an async runtime), shows progress on a terminal, and prints a summary on stderr, with
//! token counts cached in a file ([`count_file`]). With `--project` it stores a snapshot
//! instead, as `pack_repo` does.

mod count_file;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::auth::Identity;
use crate::config::Config;
use crate::knowledge::snapshots::{self, PackRequest};
use crate::packer::{
    self, Encoding, PackOptions, PackSummary, PackerSettings, Progress, RepoSource, SecretMode,
    SourcePolicy, Style,
};
use count_file::FileTokenCache;

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

/// The person at the terminal may pack local paths and hosts on their own network.
const LOCAL_OPERATOR: SourcePolicy = SourcePolicy {
    allow_local: true,
    allow_private_network: true,
};

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
pub fn write_pack(args: PackArgs) -> anyhow::Result<()> {
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
    let prepared = packer::prepare(&source, &options, &settings.credentials, &cache, &progress)
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
    summary: &PackSummary,
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
