//! `codifier reembed`: the command-line backfill of vectors for the configured model, with its
//! progress on stderr, stopping cleanly when the provider fails and resuming where it stopped.

use std::process::Output;

use codifier::domain::MemoryType;
use codifier::store::Actor;

use crate::fake_embeddings::{DIMENSIONS, FakeEmbeddings, KEY};
use crate::helpers::{backends, fresh_store, text_draft};

async fn reembed(database_url: &str, fake: &FakeEmbeddings) -> Output {
    let dimensions = DIMENSIONS.to_string();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_codifier"))
        .arg("reembed")
        .env("DATABASE_URL", database_url)
        .env("CODIFIER_EMBEDDINGS", "openai")
        .env("CODIFIER_EMBEDDING_URL", fake.base_url())
        .env("CODIFIER_EMBEDDING_MODEL", "fake-reembed")
        .env("CODIFIER_EMBEDDING_API_KEY", KEY)
        .env("CODIFIER_EMBEDDING_DIMENSIONS", &dimensions)
        .env("CODIFIER_EMBEDDING_BATCH", "16")
        .env_remove("API_AUTH_TOKEN")
        .output()
        .await
        .expect("run codifier reembed")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reembed_reports_progress_stops_on_a_failing_provider_and_resumes_where_it_stopped() {
    for backend in backends() {
        let (store, database) = fresh_store(backend).await;
        let actor = Actor {
            label: "key:cdf_tester".into(),
            tool: "remember".into(),
        };
        let project = store.create_project(&actor, "web", None).await.unwrap();
        for n in 0..40 {
            let text = format!("how service {n} retries its calls");
            let draft = text_draft(MemoryType::Learning, &format!("learning {n}"), &text);
            store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
        }

        // The provider answers two requests of 16 (one backfill batch of 32), then refuses.
        let fake = FakeEmbeddings::start().await;
        *fake.behaviour.fail_status.lock().unwrap() = 400;
        *fake.behaviour.fail_after.lock().unwrap() = Some(2);
        let first = reembed(&database.url, &fake).await;
        let log = stderr(&first);
        assert!(!first.status.success(), "{backend:?}: {log}");
        assert!(log.contains("fake-reembed (64 dimensions)"), "{log}");
        assert!(
            log.contains("web: 32/40"),
            "{backend:?}: progress after a batch: {log}"
        );
        assert!(
            log.contains("quota exhausted"),
            "{backend:?}: says why: {log}"
        );

        // Run again with the provider healthy: only the 8 left are embedded.
        *fake.behaviour.fail_after.lock().unwrap() = None;
        fake.behaviour.batch_sizes.lock().unwrap().clear();
        let second = reembed(&database.url, &fake).await;
        let log = stderr(&second);
        assert!(second.status.success(), "{backend:?}: {log}");
        assert!(log.contains("web: 40/40"), "{backend:?}: {log}");
        assert!(log.contains("embedded 8 memories"), "{backend:?}: {log}");
        assert_eq!(*fake.behaviour.batch_sizes.lock().unwrap(), [8]);

        // Nothing is left: a third run embeds nothing and asks the provider nothing.
        let requests = fake
            .behaviour
            .requests
            .load(std::sync::atomic::Ordering::SeqCst);
        let third = reembed(&database.url, &fake).await;
        assert!(third.status.success(), "{}", stderr(&third));
        assert!(
            stderr(&third).contains("embedded 0 memories"),
            "{}",
            stderr(&third)
        );
        let after = fake
            .behaviour
            .requests
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(after, requests);
    }
}
