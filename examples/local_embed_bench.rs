//! Throughput of the local embedder: embeds 256 generated ~40-word sentences, a few rounds.
//!
//!     cargo run --release --example local_embed_bench -- "$(bash scripts/model-dir.sh)"
//!
//! `RAYON_NUM_THREADS` sets the CPU threads (default: the available cores).

use std::time::Instant;

use codifier::embeddings::Embedder;
use codifier::embeddings::local::LocalEmbedder;

const SUBJECTS: [&str; 8] = [
    "the deployment pipeline",
    "our billing service",
    "the nightly backup job",
    "a new team member",
    "the search index",
    "the mobile client",
    "the on-call engineer",
    "the staging database",
];
const MIDDLES: [&str; 6] = [
    "failed twice last week because the credentials expired before the rotation script ran,",
    "was moved to the new cluster after we measured latency spikes during peak traffic hours,",
    "needs a review of its retry policy since timeouts cascade into the upstream gateway,",
    "now writes structured logs that the dashboard aggregates per tenant and per region,",
    "started returning stale results once the cache invalidation hook was disabled by mistake,",
    "should be documented in the runbook together with the rollback steps and the owners,",
];
const ENDS: [&str; 5] = [
    "so we agreed to add an alert and revisit the design in the next planning meeting.",
    "and the fix is tracked in the reliability backlog with a deadline at the end of the month.",
    "which is why every change to it now requires a second approval and a canary release.",
    "although nobody has confirmed whether the customers noticed any visible impact so far.",
    "and we will keep the old configuration around until the migration has fully completed.",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: local_embed_bench MODEL_DIR")?;
    let texts: Vec<String> = (0..256)
        .map(|i| {
            let (s, m, e) = (SUBJECTS[i % 8], MIDDLES[(i / 8) % 6], ENDS[(i / 3) % 5]);
            format!("In ticket {i} we noted that {s} {m} {e}")
        })
        .collect();
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    println!(
        "{} texts, {:.1} words each on average",
        texts.len(),
        words as f64 / 256.0
    );
    println!("threads {}", rayon::current_num_threads());

    let started = Instant::now();
    let dir = std::path::PathBuf::from(dir);
    let embedder = tokio::task::spawn_blocking(move || LocalEmbedder::load(&dir)).await??;
    println!("load: {:.2?}", started.elapsed());
    embedder.embed(&texts[..8]).await?; // warm-up
    for round in 1..=3 {
        let started = Instant::now();
        let vectors = embedder.embed(&texts).await?;
        let elapsed = started.elapsed();
        assert_eq!(vectors.len(), texts.len());
        let rate = texts.len() as f64 / elapsed.as_secs_f64();
        println!("round {round}: {elapsed:.2?} for 256 texts = {rate:.1} texts/s");
    }
    Ok(())
}
