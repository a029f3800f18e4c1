//! Embedding jobs claimed (`claim_embeddings`): a memory claimed by one caller is not handed to
//! another until its claim runs out; storing its vector, changing the memory or giving the
//! claim back (the provider failed) ends it.

use std::time::Duration;

use codifier::domain::EmbeddingModel;
use uuid::Uuid;

use super::fixtures::{Ctx, draft};
use crate::helpers::Backend;

store_cases!(
    a_claimed_memory_goes_to_no_second_claimer_until_its_claim_runs_out,
    a_stored_vector_a_changed_memory_or_a_release_ends_the_claim,
    two_claimers_at_once_never_get_the_same_memory,
);

fn model() -> EmbeddingModel {
    EmbeddingModel {
        name: "test:claims".into(),
        dimensions: 4,
    }
}

fn ids(jobs: &[codifier::domain::EmbeddingJob]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|job| job.id).collect();
    ids.sort();
    ids
}

async fn a_claimed_memory_goes_to_no_second_claimer_until_its_claim_runs_out(b: Backend) {
    let t = Ctx::new(b).await;
    for n in 0..5 {
        t.create(t.p, &draft(&format!("memory {n}"), &[])).await;
    }
    let long = Duration::from_secs(300);
    let first = t.s.claim_embeddings(t.p, &model(), 3, long).await.unwrap();
    assert_eq!(first.len(), 3, "{b:?}: no more than the limit");
    let second = t.s.claim_embeddings(t.p, &model(), 10, long).await.unwrap();
    assert_eq!(second.len(), 2, "{b:?}: only the unclaimed rest");
    assert!(
        ids(&first).iter().all(|id| !ids(&second).contains(id)),
        "{b:?}: no memory claimed twice"
    );
    assert!(
        t.s.claim_embeddings(t.p, &model(), 10, long)
            .await
            .unwrap()
            .is_empty(),
        "{b:?}: all claimed"
    );
    // Claims that run out at once (a server that died mid-batch) are taken again.
    let t = Ctx::new(b).await;
    t.create(t.p, &draft("short", &[])).await;
    let short = Duration::from_millis(1);
    assert_eq!(
        t.s.claim_embeddings(t.p, &model(), 10, short)
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        t.s.claim_embeddings(t.p, &model(), 10, long)
            .await
            .unwrap()
            .len(),
        1,
        "{b:?}: a claim that ran out is taken again"
    );
}

async fn a_stored_vector_a_changed_memory_or_a_release_ends_the_claim(b: Backend) {
    let t = Ctx::new(b).await;
    let kept = t.create(t.p, &draft("kept", &[])).await;
    let changed = t.create(t.p, &draft("changed", &[])).await;
    let long = Duration::from_secs(300);
    let jobs = t.s.claim_embeddings(t.p, &model(), 10, long).await.unwrap();
    assert_eq!(ids(&jobs).len(), 2, "{b:?}");
    let job = jobs.iter().find(|job| job.id == kept.id).unwrap();
    t.s.store_embedding(t.p, job, &model(), &[1.0, 0.0, 0.0, 0.0])
        .await
        .unwrap();
    let _ = t
        .update(t.p, changed.id, &draft("changed again", &[]))
        .await;
    let again = t.s.claim_embeddings(t.p, &model(), 10, long).await.unwrap();
    assert_eq!(
        ids(&again),
        [changed.id],
        "{b:?}: the embedded one is done, the changed one is claimable at once"
    );
    t.s.release_embeddings(t.p, &[changed.id]).await.unwrap();
    let released = t.s.claim_embeddings(t.p, &model(), 10, long).await.unwrap();
    assert_eq!(
        ids(&released),
        [changed.id],
        "{b:?}: given back, taken again"
    );
    let (done, total) = t.s.embedding_progress(t.p, &model()).await.unwrap();
    assert_eq!((done, total), (1, 2), "{b:?}");
}

async fn two_claimers_at_once_never_get_the_same_memory(b: Backend) {
    let t = Ctx::new(b).await;
    for n in 0..200 {
        t.create(t.p, &draft(&format!("memory {n}"), &[])).await;
    }
    let claimer = |store: std::sync::Arc<dyn codifier::store::Store>, project: Uuid| async move {
        let mut got = Vec::new();
        loop {
            let jobs = store
                .claim_embeddings(project, &model(), 8, Duration::from_secs(300))
                .await
                .unwrap();
            if jobs.is_empty() {
                return got;
            }
            for job in &jobs {
                store
                    .store_embedding(project, job, &model(), &[1.0, 0.0, 0.0, 0.0])
                    .await
                    .unwrap();
            }
            got.extend(jobs.into_iter().map(|job| job.id));
        }
    };
    let (one, two) = tokio::join!(
        tokio::spawn(claimer(t.s.clone(), t.p)),
        tokio::spawn(claimer(t.s.clone(), t.p))
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let mut all: Vec<Uuid> = one.iter().chain(&two).copied().collect();
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (claimed, all.len()),
        (200, 200),
        "{b:?}: {} and {} claimed, each memory once",
        one.len(),
        two.len()
    );
}
