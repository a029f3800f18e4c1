//! Retrieval quality on a fixed set (`tests/fixtures/retrieval.json`) with the real local model:
//! recall@5 for text, semantic and hybrid search on each store. Hybrid must not be worse than
//! either half alone. Needs the model files: `CODIFIER_TEST_MODEL_DIR` (scripts/test.sh sets it).

use std::sync::Arc;

use codifier::auth::Identity;
use codifier::domain::MemoryType;
use codifier::embeddings::service::{Embeddings, backfill};
use codifier::knowledge::search::{SearchMode, search};
use codifier::store::MemoryFilter;
use serde::Deserialize;

use crate::helpers::{backends, fresh_store, local_actor, text_draft};

#[derive(Deserialize)]
struct Fixture {
    memories: Vec<FixtureMemory>,
    queries: Vec<FixtureQuery>,
}

#[derive(Deserialize)]
struct FixtureMemory {
    title: String,
    #[serde(rename = "type")]
    memory_type: String,
    text: String,
}

#[derive(Deserialize)]
struct FixtureQuery {
    query: String,
    expect: Vec<String>,
}

/// The local model's directory, or `None` (with a note) when this run has none. Under CI the
/// model must be there.
pub fn model_dir() -> Option<std::path::PathBuf> {
    match std::env::var("CODIFIER_TEST_MODEL_DIR") {
        Ok(dir) if !dir.is_empty() => Some(dir.into()),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "CI=true but CODIFIER_TEST_MODEL_DIR is unset: run the tests through scripts/test.sh"
            )
        }
        _ => {
            eprintln!("skipped: CODIFIER_TEST_MODEL_DIR is unset");
            None
        }
    }
}

#[tokio::test]
async fn hybrid_search_finds_at_least_as_much_as_either_half_alone() {
    let Some(dir) = model_dir() else { return };
    let embedder = tokio::task::spawn_blocking(move || codifier::embeddings::load_local(&dir))
        .await
        .unwrap()
        .expect("the local model loads");
    let fixture: Fixture =
        serde_json::from_str(include_str!("../fixtures/retrieval.json")).expect("fixture");
    for backend in backends() {
        let (store, _db) = fresh_store(backend).await;
        let project =
            codifier::knowledge::projects::create(&store, &Identity::Local, "t", "q", None)
                .await
                .unwrap();
        let actor = local_actor();
        for memory in &fixture.memories {
            let kind = MemoryType::parse(&memory.memory_type).expect("memory type");
            let draft = text_draft(kind, &memory.title, &memory.text);
            store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
        }
        store.prepare_vectors(embedder.model()).await.unwrap();
        backfill(&store, embedder.as_ref(), |_, _, _| {})
            .await
            .unwrap();
        let embeddings = Embeddings::ready(Arc::clone(&embedder));

        let mut recall = Vec::new();
        for mode in [SearchMode::Text, SearchMode::Semantic, SearchMode::Hybrid] {
            let mut total = 0.0;
            for query in &fixture.queries {
                let filter = MemoryFilter {
                    limit: 5,
                    ..Default::default()
                };
                let found = search(
                    &store,
                    &embeddings,
                    project.id,
                    &filter,
                    &query.query,
                    mode,
                    0,
                )
                .await
                .unwrap();
                let titles: Vec<&str> = found.memories.iter().map(|m| m.title.as_str()).collect();
                let hits = query
                    .expect
                    .iter()
                    .filter(|t| titles.contains(&t.as_str()))
                    .count();
                if hits < query.expect.len() {
                    println!(
                        "  {backend:?} {mode:?} missed part of {:?}: found {titles:?}",
                        query.query
                    );
                }
                total += hits as f64 / query.expect.len() as f64;
            }
            recall.push(total / fixture.queries.len() as f64);
        }
        let (text, semantic, hybrid) = (recall[0], recall[1], recall[2]);
        println!(
            "retrieval quality ({backend:?}, {} memories, {} queries): recall@5 text {text:.3}, semantic {semantic:.3}, hybrid {hybrid:.3}",
            fixture.memories.len(),
            fixture.queries.len()
        );
        assert!(
            hybrid >= text && hybrid >= semantic,
            "{backend:?}: hybrid {hybrid} < text {text} or semantic {semantic}"
        );
        assert!(
            hybrid >= 0.8,
            "{backend:?}: hybrid recall@5 {hybrid} is too low"
        );
    }
}
