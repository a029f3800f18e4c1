//! How well the vector half finds the true nearest neighbours: recall@10 against an exact scan
//! (Postgres: the HNSW index; SQLite: the in-memory int8 scan with its re-rank).

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::{corpus, load, ms};
use crate::domain::{Candidate, MemoryFilter, MemoryType};
use crate::embeddings::Embedder;
use crate::store::Store;

/// The share of the exact top `k` the index returns, over `exact` and `found` lists. A found id
/// tied in similarity with the exact k-th neighbour counts as a hit.
fn recall_at(exact: &[Candidate], found: &[Candidate], k: usize) -> f64 {
    let exact = &exact[..exact.len().min(k)];
    let Some(kth) = exact.last() else { return 1.0 };
    let hits = found
        .iter()
        .take(k)
        .filter(|c| exact.iter().any(|e| e.id == c.id) || c.score >= kth.score - 1e-6)
        .count();
    hits.min(exact.len()) as f64 / exact.len() as f64
}

/// Recall@10 of the vector half over 100 sample queries, against an exact scan.
pub async fn recall(
    store: &Arc<dyn Store>,
    project: Uuid,
    embedder: &dyn Embedder,
) -> anyhow::Result<f64> {
    println!("\n== Vector recall ==");
    let model = embedder.model();
    let queries = corpus::queries(100, 7);
    let mut vectors = Vec::new();
    for chunk in queries.chunks(32) {
        vectors.extend(embedder.embed(chunk).await?);
    }
    let (mut plain, mut pooled, mut filtered) = (0.0, 0.0, 0.0);
    let (mut exact_ms, mut index_ms) = (Vec::new(), Vec::new());
    for (i, vector) in vectors.iter().enumerate() {
        let everything = MemoryFilter {
            limit: 10,
            ..MemoryFilter::default()
        };
        let started = Instant::now();
        let exact = store
            .exact_vector_candidates(project, &everything, model, vector, 10)
            .await?;
        exact_ms.push(ms(started));
        let started = Instant::now();
        plain += recall_at(
            &exact,
            &store
                .vector_candidates(project, &everything, model, vector, 10)
                .await?,
            10,
        );
        index_ms.push(ms(started));
        // Hybrid search asks the index for at least 50 and keeps the best.
        pooled += recall_at(
            &exact,
            &store
                .vector_candidates(project, &everything, model, vector, 50)
                .await?,
            10,
        );
        let by_type = MemoryFilter {
            memory_type: Some(MemoryType::KNOWLEDGE[i % 5]),
            ..everything
        };
        let exact = store
            .exact_vector_candidates(project, &by_type, model, vector, 10)
            .await?;
        filtered += recall_at(
            &exact,
            &store
                .vector_candidates(project, &by_type, model, vector, 10)
                .await?,
            10,
        );
    }
    let n = vectors.len() as f64;
    println!(
        "recall@10 over {} queries: {:.3} (k=10), {:.3} (top 10 of k=50, as hybrid asks), {:.3} (filtered by memory_type, k=10)",
        vectors.len(),
        plain / n,
        pooled / n,
        filtered / n
    );
    println!(
        "vector half p50 {:.2} ms, exact scan p50 {:.2} ms",
        load::percentile(&mut index_ms, 50.0),
        load::percentile(&mut exact_ms, 50.0)
    );
    Ok(plain / n)
}
