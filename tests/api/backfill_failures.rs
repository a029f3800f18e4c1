//! The embedding backfill when the database fails in the middle of a pass: the vectors the model
//! already made are kept, and no memory stays claimed, so the next pass takes the rest at once.
//! The failures come from a layer over a real store (`forward_store!`, as the server's metrics
//! and project cache are layered) that fails one chosen call of one operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use codifier::domain::MemoryType;
use codifier::embeddings::Embedder;
use codifier::embeddings::http::HttpEmbedder;
use codifier::embeddings::service::backfill;
use codifier::store::Store;

use crate::fake_embeddings::FakeEmbeddings;
use crate::helpers::{backends, fresh_store, local_actor, text_draft};

/// A store whose `nth` claim, or `nth` store of a non-empty batch, fails as a database that
/// went away would (0: never).
struct FailingStore {
    inner: Arc<dyn Store>,
    claims: AtomicUsize,
    fail_claim: usize,
    stores: AtomicUsize,
    fail_store: usize,
}

impl FailingStore {
    /// `inner`, failing its `fail_claim`th claim and its `fail_store`th store of a batch.
    fn over(inner: Arc<dyn Store>, fail_claim: usize, fail_store: usize) -> Arc<dyn Store> {
        Arc::new(Self {
            inner,
            claims: AtomicUsize::new(0),
            fail_claim,
            stores: AtomicUsize::new(0),
            fail_store,
        })
    }
}

/// The layer's hook: counts claims and stores, failing the chosen one; passes the rest on.
macro_rules! failing {
    ($layer:ident, claim_embeddings($project:ident, $limit:ident, $claim:ident)) => {{
        if $layer.claims.fetch_add(1, Ordering::SeqCst) + 1 == $layer.fail_claim {
            return Err(codifier::store::StoreError::Database(
                sqlx::Error::PoolTimedOut,
            ));
        }
        $layer.inner.claim_embeddings($project, $limit, $claim).await
    }};
    ($layer:ident, store_embeddings($project:ident, $model:ident, $done:ident)) => {{
        if !$done.is_empty() && $layer.stores.fetch_add(1, Ordering::SeqCst) + 1 == $layer.fail_store
        {
            return Err(codifier::store::StoreError::Database(
                sqlx::Error::PoolTimedOut,
            ));
        }
        $layer.inner.store_embeddings($project, $model, $done).await
    }};
    ($layer:ident, $name:ident($($arg:ident),*)) => {
        $layer.inner.$name($($arg),*).await
    };
}

codifier::forward_store!(FailingStore, failing);

/// A fresh store with one project of `count` learnings; returns the store and the project.
async fn project_of(
    backend: crate::helpers::Backend,
    count: usize,
) -> (Arc<dyn Store>, uuid::Uuid, crate::helpers::TestDatabase) {
    let (store, database) = fresh_store(backend).await;
    let actor = local_actor();
    let project = store.create_project(&actor, "p", None).await.unwrap();
    for n in 0..count {
        let text = format!("how service {n} retries its calls");
        let draft = text_draft(MemoryType::Learning, &format!("memory {n}"), &text);
        store
            .create_memory(project.id, &actor, &draft)
            .await
            .unwrap();
    }
    (store, project.id, database)
}

#[tokio::test]
async fn a_batch_embedded_before_the_next_claim_failed_is_stored() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        fake.behaviour.texts.lock().unwrap().clear();
        let (store, project, _db) = project_of(backend, 40).await;
        let embedder: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("m")).unwrap());
        store.prepare_vectors(embedder.model()).await.unwrap();

        // The first claim takes 32; the second, made while those are embedded, fails.
        let failing = FailingStore::over(store.clone(), 2, 0);
        let failed = backfill(&failing, embedder.as_ref(), |_, _, _| {}).await;
        assert!(failed.is_err(), "{backend:?}: the failed claim is reported");
        let progress = store.embedding_progress(project, embedder.model());
        assert_eq!(
            progress.await.unwrap(),
            (32, 40),
            "{backend:?}: the batch the model embedded is stored"
        );

        let rest = backfill(&store, embedder.as_ref(), |_, _, _| {}).await;
        assert_eq!(rest.unwrap(), 8, "{backend:?}: the rest, at once");
        assert_eq!(
            fake.behaviour.texts_sent_and_distinct(),
            (40, 40),
            "{backend:?}: each memory sent to the model once"
        );
    }
}

#[tokio::test]
async fn when_storing_a_batch_fails_every_claim_of_the_pass_is_given_back() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let (store, project, _db) = project_of(backend, 80).await;
        let embedder: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("m")).unwrap());
        store.prepare_vectors(embedder.model()).await.unwrap();

        // Batch 1 is stored while batch 2 is embedded and batch 3 claimed: that store fails.
        let failing = FailingStore::over(store.clone(), 0, 1);
        let failed = backfill(&failing, embedder.as_ref(), |_, _, _| {}).await;
        assert!(failed.is_err(), "{backend:?}: the failed store is reported");
        let progress = store.embedding_progress(project, embedder.model());
        assert_eq!(progress.await.unwrap(), (0, 80), "{backend:?}");

        let next = backfill(&store, embedder.as_ref(), |_, _, _| {}).await;
        assert_eq!(
            next.unwrap(),
            80,
            "{backend:?}: the next pass takes every memory at once, none left claimed"
        );
    }
}
