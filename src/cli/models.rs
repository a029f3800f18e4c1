//! `codifier models fetch`, `codifier models bench` and `codifier reembed`: the local embedding
//! model's files, its throughput on a fixed set of texts (the Rust half of
//! `scripts/bench-embed.sh`), and giving every memory a vector of the configured model.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use crate::app;
use crate::config::{Config, EmbeddingsConfig};
use crate::embeddings::fetch::FetchConfig;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the local model's files (all-MiniLM-L6-v2) into CODIFIER_MODEL_DIR (default: the
    /// data directory) and verify their pinned digests, with progress on stderr; prints the
    /// directory. `codifier serve` does the same in the background when they are missing.
    Fetch,
    /// Embed the first N memories of the benchmark corpus with the local model, in batches of
    /// the background backfill's size, and print the throughput as JSON. With `--out`, writes
    /// the texts (`texts.json`) and their vectors (`codifier.json`) there, so another
    /// implementation can embed the same texts and be compared (`scripts/bench-embed.sh`).
    Bench {
        /// How many texts to embed (after a warm-up batch).
        #[arg(long, default_value_t = 2_000)]
        texts: u64,
        /// A directory to write the texts and the vectors to.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The dense layers' number format: `fastest` (what `serve` uses: `int8` on CPUs with
        /// AVX-512 VNNI, `bf16` with AVX-512 BF16 only, else `f32`), `f32`, `bf16` or `int8`.
        #[arg(long, value_enum, default_value_t = BenchPrecision::Fastest)]
        precision: BenchPrecision,
    },
}

/// `codifier models bench --precision`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BenchPrecision {
    Fastest,
    F32,
    Bf16,
    Int8,
}

/// Runs a `codifier models` command.
pub async fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Fetch => {
            let (dir, fetch) = crate::config::local_model_from_env()?;
            fetch_model(&dir, fetch.as_ref()).await?;
            println!("{}", dir.display());
            Ok(())
        }
        ModelsCommand::Bench {
            texts,
            out,
            precision,
        } => bench(texts, out.as_deref(), precision).await,
    }
}

/// `codifier models bench`: the local model's throughput on the benchmark corpus's texts.
async fn bench(count: u64, out: Option<&Path>, precision: BenchPrecision) -> anyhow::Result<()> {
    use crate::embeddings::Embedder;
    use crate::embeddings::local::{LocalEmbedder, Precision};
    anyhow::ensure!(count >= 1, "--texts must be at least 1");
    let precision = match precision {
        BenchPrecision::Fastest => Precision::fastest(),
        BenchPrecision::F32 => Precision::F32,
        BenchPrecision::Bf16 => Precision::Bf16,
        BenchPrecision::Int8 => Precision::Int8,
    };
    let (dir, fetch) = crate::config::local_model_from_env()?;
    fetch_model(&dir, fetch.as_ref()).await?;
    let embedder =
        tokio::task::spawn_blocking(move || LocalEmbedder::load_with(&dir, precision)).await??;
    let texts: Vec<String> = (0..count)
        .map(super::bench::corpus::memory)
        .map(|draft| crate::store::embedding_text(&draft.title, &draft.content))
        .collect();
    let batch = crate::embeddings::service::BACKFILL_BATCH as usize;
    embedder.embed(&texts[..batch.min(texts.len())]).await?;
    let started = std::time::Instant::now();
    let mut vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch) {
        vectors.extend(embedder.embed(chunk).await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(out) = out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(out.join("texts.json"), serde_json::to_vec(&texts)?)?;
        std::fs::write(out.join("codifier.json"), serde_json::to_vec(&vectors)?)?;
    }
    let threads = rayon::current_num_threads();
    println!(
        "{}",
        serde_json::json!({
            "implementation": match precision {
                Precision::F32 => "codifier (f32, gemm crate)",
                Precision::Bf16 => "codifier (bf16 products, AVX-512 BF16)",
                Precision::Int8 => "codifier (int8 products, AVX-512 VNNI)",
            },
            "texts": texts.len(),
            "batch": batch,
            "threads": threads,
            "seconds": seconds,
            "texts_per_second": texts.len() as f64 / seconds,
        })
    );
    Ok(())
}

/// Fetches the local model's files into `dir` in the foreground (`codifier models fetch`,
/// `codifier reembed`), with progress on stderr.
pub async fn fetch_model(dir: &Path, fetch: Option<&FetchConfig>) -> anyhow::Result<()> {
    let Some(fetch) = fetch else {
        anyhow::ensure!(
            crate::embeddings::local::files_present(dir),
            "the model files are missing from {} and downloading is off (CODIFIER_MODEL_FETCH=off)",
            dir.display()
        );
        return Ok(());
    };
    let report = |progress: &crate::embeddings::fetch::Progress| {
        if progress.percent().is_multiple_of(10) {
            eprintln!("  {progress} ({}%)", progress.percent());
        }
    };
    match crate::embeddings::fetch::fetch(dir, fetch, &report).await {
        Ok(Some(source)) => eprintln!("fetched and verified the model files from {source}"),
        Ok(None) => eprintln!("the model files are already there and verified"),
        Err(failure) => anyhow::bail!("{failure}"),
    }
    Ok(())
}

/// `codifier reembed`: gives every memory a vector of the configured model, with progress.
/// Resumable: an interrupted run picks up where it stopped.
pub async fn reembed(config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    if let EmbeddingsConfig::Local { model_dir, fetch } = &config.embeddings
        && !crate::embeddings::local::files_present(model_dir)
    {
        fetch_model(model_dir, fetch.as_ref()).await?;
    }
    let loader = app::embedding_loader(&config.embeddings).context(
        "no embedding provider is configured: set CODIFIER_EMBEDDINGS (local or openai)",
    )?;
    let embedder = tokio::task::spawn_blocking(loader).await??;
    let model = embedder.model().clone();
    eprintln!(
        "embedding with {} ({} dimensions)",
        model.name, model.dimensions
    );
    store.prepare_vectors(&model).await?;
    let started = std::time::Instant::now();
    let count =
        crate::embeddings::service::backfill(&store, embedder.as_ref(), |project, done, total| {
            eprintln!("  {project}: {done}/{total}");
        })
        .await?;
    eprintln!(
        "embedded {count} memories in {:.1} s; every memory now has a {} vector",
        started.elapsed().as_secs_f64(),
        model.name
    );
    Ok(())
}
