//! Filling the benchmark project: the corpus written straight through the store in parallel,
//! embedded meanwhile by the configured model through the backfill (or, with `--synthetic-vectors`,
//! given stand-in vectors for the latency figures), then indexed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use uuid::Uuid;

use super::{corpus, load, ms};
use crate::domain::{Actor, EmbeddingModel, WriteOutcome};
use crate::embeddings::Embedder;
use crate::embeddings::service::backfill;
use crate::store::{Store, embedding_text};

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

/// Times the model alone, then writes memories 0..n (as [`seed`]) while the backfill embeds
/// them, as the server's worker does when it is woken by writes: a pass that finds nothing
/// waiting sleeps briefly and looks again until the writes are done. Then builds the index.
pub async fn seed_and_embed(
    store: &Arc<dyn Store>,
    project: Uuid,
    actor: &Actor,
    n: u64,
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
    let written = AtomicBool::new(false);
    let last = Mutex::new(Instant::now());
    let embedding = async {
        let mut count = 0;
        loop {
            let writes_done = written.load(Ordering::Acquire);
            let embedded = backfill(store, embedder, |project, done, total| {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(15) {
                    *last = Instant::now();
                    eprintln!("bench: embedded {done}/{total} of `{project}`");
                }
            })
            .await?;
            count += embedded;
            if writes_done {
                return anyhow::Ok(count);
            }
            if embedded == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let writing = async {
        let seeded = seed(store, project, actor, n).await;
        written.store(true, Ordering::Release);
        seeded
    };
    let (seeded, count) = tokio::join!(writing, embedding);
    seeded?;
    let count = count?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backfill: {count} memories in {secs:.1} s from the first write = {:.0} texts/s end to end \
         (model + store, beside the writes)",
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
            " (SQLite: nothing to build; the first search loads the vectors into memory)"
        }
    );
    Ok(())
}

/// A stand-in for the model's vector of `text`: its words hashed onto the dimensions (±1 each,
/// normalised). Deterministic and instant; it has no meaning, so only latency and recall
/// against an exact scan are measured with it.
fn synthetic_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0f32; dimensions];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[(hash % dimensions as u64) as usize] += sign;
    }
    let norm = vector
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

/// Stores a synthetic vector (see [`synthetic_vector`]) for every memory `model` has not
/// embedded, labelled as the model's, then builds the index.
pub async fn synthetic_vectors(
    store: &Arc<dyn Store>,
    project: Uuid,
    model: &EmbeddingModel,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut count = 0u64;
    loop {
        let jobs = store
            .claim_embeddings(project, 1000, std::time::Duration::from_secs(300))
            .await?;
        if jobs.is_empty() {
            break;
        }
        let done: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let vector = synthetic_vector(&job.text, model.dimensions);
                (job, vector)
            })
            .collect();
        store.store_embeddings(project, model, &done).await?;
        count += done.len() as u64;
    }
    println!(
        "\n== Embedding ==\nsynthetic vectors (--synthetic-vectors; the model embeds only the queries): {count} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    store.prepare_vectors(model).await?;
    println!(
        "vector index (prepare_vectors): {:.1} s",
        ms(started) / 1000.0
    );
    Ok(())
}
