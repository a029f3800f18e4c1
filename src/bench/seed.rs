//! Filling the benchmark project: the corpus written straight through the store in parallel,
//! then embedded by the configured model through the backfill, then indexed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use uuid::Uuid;

use super::{corpus, load, ms};
use crate::embeddings::Embedder;
use crate::embeddings::service::backfill;
use crate::store::{Actor, Store, WriteOutcome, embedding_text};

/// Creates memories 0..n of the corpus in parallel batches; existing ones are left as they are.
pub async fn seed(
    store: &Arc<dyn Store>,
    project: Uuid,
    actor: &Actor,
    n: u64,
) -> anyhow::Result<()> {
    let parallel = if store.backend() == "sqlite" { 4 } else { 12 };
    let started = Instant::now();
    let mut writes = futures::stream::iter(0..n)
        .map(|index| {
            let (store, actor) = (store.clone(), actor.clone());
            async move {
                store
                    .create_memory(project, &actor, &corpus::memory(index))
                    .await
            }
        })
        .buffer_unordered(parallel);
    let (mut created, mut done) = (0u64, 0u64);
    while let Some(written) = writes.next().await {
        if written.context("seeding a memory failed")?.1 == WriteOutcome::Created {
            created += 1;
        }
        done += 1;
        if done % (n / 10).max(1) == 0 {
            eprintln!("bench: seeded {done}/{n}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\n== Seeding ==\n{n} memories ({created} new, {} already there) in {secs:.1} s: {:.0} writes/s",
        n - created,
        n as f64 / secs
    );
    Ok(())
}

/// Times the model alone, embeds every pending memory through the backfill, builds the index.
pub async fn embed_and_index(
    store: &Arc<dyn Store>,
    embedder: &dyn Embedder,
) -> anyhow::Result<()> {
    let batch: Vec<String> = (0..32)
        .map(corpus::memory)
        .map(|d| embedding_text(&d.title, &d.content))
        .collect();
    embedder.embed(&batch).await?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        embedder.embed(&batch).await?;
        times.push(ms(started));
    }
    let batch_ms = load::percentile(&mut times, 50.0);
    println!(
        "\n== Embedding ==\none batch of 32: {batch_ms:.0} ms (median of 3) = {:.0} texts/s for the model alone",
        32_000.0 / batch_ms
    );
    let started = Instant::now();
    let last = Mutex::new(Instant::now());
    let count = backfill(store, embedder, |project, done, total| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(15) {
            *last = Instant::now();
            eprintln!("bench: embedded {done}/{total} of `{project}`");
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backfill: {count} memories in {secs:.1} s = {:.0} texts/s end to end (model + store)",
        count as f64 / secs
    );
    let started = Instant::now();
    store.prepare_vectors(embedder.model()).await?;
    println!(
        "vector index (prepare_vectors): {:.1} s{}",
        ms(started) / 1000.0,
        if store.backend() == "postgres" {
            " to build the HNSW index (near 0 if it already existed)"
        } else {
            " (SQLite scans; no index)"
        }
    );
    Ok(())
}
