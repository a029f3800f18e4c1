//! Embedding jobs claimed (`claim_embeddings`): a memory claimed by one caller is not handed to
//! another until its claim runs out; storing its vector, changing the memory or giving the
//! claim back (the provider failed) ends it.

use std::time::Duration;

use codifier::domain::EmbeddingModel;
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::fixtures::{Ctx, draft};
use crate::helpers::Backend;

store_cases!(
    a_claimed_memory_goes_to_no_second_claimer_until_its_claim_runs_out,
    a_stored_vector_a_changed_memory_or_a_release_ends_the_claim,
    two_claimers_at_once_never_get_the_same_memory,
    a_claim_reads_only_memories_waiting_for_a_vector_through_their_indexes,
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
    let first = t.s.claim_embeddings(t.p, 3, long).await.unwrap();
    assert_eq!(first.len(), 3, "{b:?}: no more than the limit");
    let second = t.s.claim_embeddings(t.p, 10, long).await.unwrap();
    assert_eq!(second.len(), 2, "{b:?}: only the unclaimed rest");
    assert!(
        ids(&first).iter().all(|id| !ids(&second).contains(id)),
        "{b:?}: no memory claimed twice"
    );
    assert!(
        t.s.claim_embeddings(t.p, 10, long)
            .await
            .unwrap()
            .is_empty(),
        "{b:?}: all claimed"
    );
    // Claims that run out at once (a server that died mid-batch) are taken again.
    let t = Ctx::new(b).await;
    t.create(t.p, &draft("short", &[])).await;
    let short = Duration::from_millis(1);
    assert_eq!(t.s.claim_embeddings(t.p, 10, short).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        t.s.claim_embeddings(t.p, 10, long).await.unwrap().len(),
        1,
        "{b:?}: a claim that ran out is taken again"
    );
}

async fn a_stored_vector_a_changed_memory_or_a_release_ends_the_claim(b: Backend) {
    let t = Ctx::new(b).await;
    let kept = t.create(t.p, &draft("kept", &[])).await;
    let changed = t.create(t.p, &draft("changed", &[])).await;
    let long = Duration::from_secs(300);
    let jobs = t.s.claim_embeddings(t.p, 10, long).await.unwrap();
    assert_eq!(ids(&jobs).len(), 2, "{b:?}");
    let job = jobs.iter().find(|job| job.id == kept.id).unwrap();
    t.s.store_embedding(t.p, job, &model(), &[1.0, 0.0, 0.0, 0.0])
        .await
        .unwrap();
    let _ = t
        .update(t.p, changed.id, &draft("changed again", &[]))
        .await;
    let again = t.s.claim_embeddings(t.p, 10, long).await.unwrap();
    assert_eq!(
        ids(&again),
        [changed.id],
        "{b:?}: the embedded one is done, the changed one is claimable at once"
    );
    t.s.release_embeddings(t.p, &[changed.id]).await.unwrap();
    let released = t.s.claim_embeddings(t.p, 10, long).await.unwrap();
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
                .claim_embeddings(project, 8, Duration::from_secs(300))
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

/// The claim's query plan on `t`'s database, one line per step, with the claim's parameters
/// bound. Read through a connection of its own (on Postgres the test's role, which row-level
/// security does not filter; the plan's shape is what is checked).
async fn claim_plan(t: &Ctx) -> Vec<String> {
    let sql = codifier::store::embedding_claim_sql(t.s.backend());
    let at = chrono::Utc::now();
    match t.b {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.db.url).await.unwrap();
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(t.p.to_string())
                .bind(32i64)
                .bind(at.to_rfc3339())
                .bind(at.to_rfc3339())
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter().map(|row| row.get::<String, _>(3)).collect()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&t.db.url).await.unwrap();
            sqlx::query("ANALYZE memories")
                .execute(&mut conn)
                .await
                .unwrap();
            let rows = sqlx::query(&format!("EXPLAIN {sql}"))
                .bind(t.p)
                .bind(32i64)
                .bind(at)
                .bind(at)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter().map(|row| row.get::<String, _>(0)).collect()
        }
    }
}

/// Runs `sql` on `t`'s database through a connection of its own.
async fn execute(t: &Ctx, sql: &str) {
    match t.b {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&t.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// The claim used to walk past every memory that already had a vector (27.5 ms a batch at
/// 14,500 embedded on SQLite, growing with the project): now it reads the memories waiting for
/// one through `memories_awaiting_vector` (migration 0021) alone. Memories with a vector of
/// another model, or of the model at another width, wait too once `prepare_vectors` has run for
/// the model (their vectors cleared); the others keep theirs.
async fn a_claim_reads_only_memories_waiting_for_a_vector_through_their_indexes(b: Backend) {
    let t = Ctx::new(b).await;
    for n in 0..1500 {
        t.create(t.p, &draft(&format!("embedded {n}"), &[])).await;
    }
    execute(
        &t,
        "UPDATE memories SET embedding_model = 'test:claims', embedding_dim = 4",
    )
    .await;
    let mut waiting = Vec::new();
    for (title, model, dimensions) in [
        ("of another model", "test:another", 4),
        ("of another width", "test:claims", 8),
    ] {
        waiting.push(t.create(t.p, &draft(title, &[])).await.id);
        execute(
            &t,
            &format!(
                "UPDATE memories SET embedding_model = '{model}', embedding_dim = {dimensions} \
                 WHERE title = '{title}'"
            ),
        )
        .await;
    }
    for n in 0..3 {
        waiting.push(t.create(t.p, &draft(&format!("waiting {n}"), &[])).await.id);
    }
    waiting.sort();
    t.s.prepare_vectors(&model()).await.unwrap();

    let plan = claim_plan(&t).await;
    let text = plan.join("\n");
    assert!(
        text.contains("memories_awaiting_vector"),
        "{b:?}: the claim uses memories_awaiting_vector:\n{text}"
    );
    // A step that reads the memories table other than through this index (or a single row by
    // its key, for the update) would read the embedded ones too. (On Postgres a bitmap heap
    // scan reads only the rows its index scan, checked on its own line, found.)
    let reads: Vec<&String> = plan
        .iter()
        .filter(|step| match b {
            Backend::Sqlite => step.contains("SCAN memories") || step.contains("SEARCH memories"),
            Backend::Postgres => step.contains("Scan") && step.contains(" on memories"),
        })
        .filter(|step| !step.contains("Bitmap Heap Scan"))
        .collect();
    assert!(!reads.is_empty(), "{b:?}: the plan reads memories:\n{text}");
    for step in &reads {
        let by_key = match b {
            Backend::Sqlite => step.contains("(id=?)"),
            Backend::Postgres => step.contains("_pkey"),
        };
        assert!(
            by_key || step.contains("memories_awaiting_vector"),
            "{b:?}: a step reads memories past the waiting ones: {step}\n{text}"
        );
    }

    let long = Duration::from_secs(300);
    let jobs = t.s.claim_embeddings(t.p, 32, long).await.unwrap();
    assert_eq!(
        ids(&jobs),
        waiting,
        "{b:?}: the new memories and those of another model or width, none of the embedded"
    );
    assert_eq!(
        t.s.embedding_progress(t.p, &model()).await.unwrap(),
        (1500, 1505),
        "{b:?}: the vectors of the model kept"
    );
}
