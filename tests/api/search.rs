//! Finding by meaning and by words, additive writes, and embedding providers: through MCP over
//! Streamable HTTP on both stores, with the hosted provider faked at the network boundary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use codifier::auth::Role;
use codifier::config::EmbeddingsConfig;
use codifier::embeddings::Embedder;
use codifier::embeddings::http::HttpEmbedder;
use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::fake_embeddings::{self, FakeEmbeddings};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// A server whose embeddings come from the fake provider, model `model`.
async fn server_with_fake(
    backend: crate::helpers::Backend,
    fake: &FakeEmbeddings,
    model: &str,
) -> TestServer {
    let provider = fake.config(model);
    TestServer::start_with(backend, move |config| {
        config.embeddings = EmbeddingsConfig::Http(provider)
    })
    .await
}

async fn remember(client: &Client, title: &str, text: &str, tags: &[&str]) -> Value {
    let memory = json!({"project_id": "p", "memory_type": "learning", "title": title,
                        "content": {"text": text}, "tags": tags});
    ok(&call(client, "update_memory", memory).await)
}

/// Waits until the server's embedder has loaded (semantic search stops refusing).
async fn wait_for_embedder(client: &Client) {
    for _ in 0..100 {
        let probe = call(
            client,
            "fetch_context",
            json!({"project_id": "p", "query": "x", "mode": "semantic"}),
        )
        .await;
        if probe.is_error != Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the embedder never became ready");
}

fn titles(result: &Value) -> Vec<String> {
    result["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_http_provider_batches_retries_and_sends_the_key() {
    let fake = FakeEmbeddings::start().await;
    fake.behaviour.fail_first.store(2, Ordering::SeqCst);
    *fake.behaviour.fail_status.lock().unwrap() = 429;
    let mut config = fake.config("m");
    config.batch_size = 2;
    let embedder = HttpEmbedder::new(config).unwrap();
    let texts: Vec<String> = (0..5).map(|n| format!("car number {n}")).collect();
    let vectors = embedder
        .embed(&texts)
        .await
        .expect("embedded after retries");
    assert_eq!(vectors.len(), 5);
    for vector in &vectors {
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length");
    }
    assert_eq!(*fake.behaviour.batch_sizes.lock().unwrap(), [2, 2, 1]);
    assert_eq!(
        fake.behaviour.requests.load(Ordering::SeqCst),
        5,
        "3 batches + 2 refused attempts"
    );
    assert_eq!(fake.behaviour.unauthorized.load(Ordering::SeqCst), 0);
    assert_eq!(embedder.model().name, "openai:m");
}

#[tokio::test]
async fn a_provider_that_keeps_failing_gives_a_clear_error() {
    let fake = FakeEmbeddings::start().await;
    fake.behaviour.fail_first.store(100, Ordering::SeqCst);
    *fake.behaviour.fail_status.lock().unwrap() = 503;
    let mut config = fake.config("m");
    config.max_retries = 1;
    let error = HttpEmbedder::new(config)
        .unwrap()
        .embed(&["x".into()])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    let mut wrong_key = fake.config("m");
    wrong_key.api_key = Some("nope".into());
    let error = HttpEmbedder::new(wrong_key)
        .unwrap()
        .embed(&["x".into()])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
}

#[tokio::test]
async fn hybrid_search_fuses_meaning_and_words_and_explains_the_ranks() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let server = server_with_fake(backend, &fake, "fake").await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        wait_for_embedder(&client).await;
        remember(
            &client,
            "Parking",
            "Every car parks in the north garage.",
            &["site"],
        )
        .await;
        remember(
            &client,
            "Migrations",
            "Run database migrations before each deployment.",
            &["ops"],
        )
        .await;
        remember(&client, "Tea", "The kitchen has green tea.", &["site"]).await;

        let semantic = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "automobile", "mode": "semantic"}),
        )
        .await);
        assert_eq!(
            titles(&semantic)[0],
            "Parking",
            "{backend:?}: meaning without a shared word"
        );
        let text = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "automobile", "mode": "text"}),
        )
        .await);
        assert_eq!(
            text["count"], 0,
            "{backend:?}: no shared word, no text match"
        );

        let hybrid = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "database migrations", "explain": true}),
        )
        .await);
        assert_eq!(hybrid["search"]["mode"], "hybrid");
        assert_eq!(titles(&hybrid)[0], "Migrations");
        let top = &hybrid["explain"][0];
        assert_eq!(top["text_rank"], 1, "{backend:?}: {top}");
        assert_eq!(top["semantic_rank"], 1, "{backend:?}: {top}");
        assert!((top["fused_score"].as_f64().unwrap() - 2.0 / 61.0).abs() < 1e-9);
        assert!(hybrid["search"]["query_embedding_ms"].as_f64().is_some());

        let filtered = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "car garage", "tags": ["ops"]}),
        )
        .await);
        assert!(
            !titles(&filtered).contains(&"Parking".to_owned()),
            "{backend:?}: filters apply in both halves"
        );
        let later = ok(&call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "car", "since": "2999-01-01"}),
        )
        .await);
        assert_eq!(later["count"], 0, "{backend:?}: the time range applies too");
    }
}

#[tokio::test]
async fn without_an_embedder_search_says_plainly_that_it_is_text_only() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    server.project("p").await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    remember(&client, "Errors", "Wrap errors with context.", &[]).await;
    let found = ok(&call(
        &client,
        "fetch_context",
        json!({"project_id": "p", "query": "errors"}),
    )
    .await);
    assert_eq!(found["search"]["mode"], "text");
    assert!(
        found["search"]["notice"]
            .as_str()
            .unwrap()
            .contains("Full-text search only")
    );
    assert_eq!(found["count"], 1);
    let semantic = refused(
        &call(
            &client,
            "fetch_context",
            json!({"project_id": "p", "query": "errors", "mode": "semantic"}),
        )
        .await,
    );
    assert!(semantic.contains("not available"), "{semantic}");
}

#[tokio::test]
async fn a_near_duplicate_is_named_and_both_memories_are_kept() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let server = server_with_fake(backend, &fake, "fake").await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        wait_for_embedder(&client).await;
        let first = remember(
            &client,
            "Database rule",
            "Every database change ships with a migration.",
            &[],
        )
        .await;
        let unrelated = remember(&client, "Tea", "The kitchen has green tea.", &[]).await;
        assert!(unrelated["near_duplicate"].is_null());
        let second = remember(
            &client,
            "Database rule!",
            "Every postgres change ships with a migration.",
            &[],
        )
        .await;
        assert_eq!(second["outcome"], "created");
        assert_eq!(second["embedded"], true);
        assert_eq!(
            second["near_duplicate"]["id"], first["memory"]["id"],
            "{backend:?}"
        );
        assert!(second["near_duplicate"]["similarity"].as_f64().unwrap() > 0.92);
        let all = ok(&call(&client, "fetch_context", json!({"project_id": "p"})).await);
        assert_eq!(all["count"], 3, "{backend:?}: nothing merged or deleted");
    }
}

#[tokio::test]
async fn updates_keep_every_earlier_version_and_any_can_be_restored() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let created = remember(&client, "Timeout", "Requests time out after 10 s.", &[]).await;
        let id = created["memory"]["id"].as_str().unwrap();
        for text in [
            "Requests time out after 30 s.",
            "Requests time out after 60 s.",
        ] {
            let update = json!({"project_id": "p", "id": id, "memory_type": "learning", "title": "Timeout", "content": {"text": text}});
            assert_eq!(
                ok(&call(&client, "update_memory", update).await)["outcome"],
                "updated"
            );
        }
        let history = ok(&call(
            &client,
            "memory_history",
            json!({"project_id": "p", "id": id}),
        )
        .await);
        let revisions = history["revisions"].as_array().unwrap();
        assert_eq!(revisions.len(), 2, "{backend:?}");
        assert_eq!(revisions[1]["revision"], 1);
        assert_eq!(
            revisions[1]["memory"]["content"]["text"],
            "Requests time out after 10 s."
        );

        let restored = ok(&call(
            &client,
            "restore_memory",
            json!({"project_id": "p", "id": id, "revision": 1}),
        )
        .await);
        assert_eq!(
            restored["memory"]["content"]["text"],
            "Requests time out after 10 s."
        );
        let history = ok(&call(
            &client,
            "memory_history",
            json!({"project_id": "p", "id": id}),
        )
        .await);
        assert_eq!(
            history["revisions"].as_array().unwrap().len(),
            3,
            "{backend:?}: the replaced version is kept too"
        );
        let missing = refused(
            &call(
                &client,
                "restore_memory",
                json!({"project_id": "p", "id": id, "revision": 9}),
            )
            .await,
        );
        assert!(missing.contains("revision 9"), "{missing}");
    }
}

#[tokio::test]
async fn deleted_memories_are_listed_for_writers_and_can_be_restored() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let reader = clients::streamable(
            &server.url("/mcp"),
            &server.key(project.id, Role::Read).await,
        )
        .await;
        let writer = clients::streamable(
            &server.url("/mcp"),
            &server.key(project.id, Role::Write).await,
        )
        .await;
        let created = remember(&writer, "Old rule", "Tabs, not spaces.", &[]).await;
        let id = created["memory"]["id"].as_str().unwrap();
        ok(&call(&writer, "delete_memory", json!({"id": id})).await);

        // A key that may delete may undo it; a read key may not.
        let listing = refused(&call(&reader, "fetch_context", json!({"deleted": true})).await);
        assert!(listing.contains("`write`"), "{listing}");
        let undelete = refused(&call(&reader, "restore_memory", json!({"id": id})).await);
        assert!(undelete.contains("`write`"), "{undelete}");

        let deleted = ok(&call(&writer, "fetch_context", json!({"deleted": true})).await);
        assert_eq!(deleted["deleted"], true);
        assert_eq!(titles(&deleted), ["Old rule"], "{backend:?}");
        ok(&call(&writer, "restore_memory", json!({"id": id})).await);
        let live = ok(&call(&writer, "fetch_context", json!({})).await);
        assert_eq!(
            titles(&live),
            ["Old rule"],
            "{backend:?}: back in every read"
        );
        let audit = server.store.list_audit(project.id, 10).await.unwrap();
        assert!(audit.iter().any(|entry| entry.action == "memory.restore"));
    }
}

#[tokio::test]
async fn vectors_of_another_model_are_never_mixed_and_a_backfill_brings_memories_over() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let (store, _db) = crate::helpers::fresh_store(backend).await;
        let project = codifier::knowledge::projects::create(
            &store,
            &codifier::auth::Identity::Local,
            "t",
            "p",
            None,
        )
        .await
        .unwrap();
        let actor = codifier::store::Actor {
            label: "local".into(),
            tool: "test".into(),
        };
        for title in ["Parking cars", "Green tea"] {
            let draft = codifier::store::MemoryDraft {
                memory_type: codifier::knowledge::MemoryType::Learning,
                title: title.into(),
                content: json!({"text": title}),
                category: None,
                description: None,
                confidence: 1.0,
                tags: vec![],
                source_role: None,
            };
            store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
        }
        let old: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("old")).unwrap());
        let new: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("new")).unwrap());
        codifier::embeddings::service::backfill(&store, old.as_ref(), |_, _, _| {})
            .await
            .unwrap();
        let query = new
            .embed(&["automobile".into()])
            .await
            .unwrap()
            .pop()
            .unwrap();
        let filter = codifier::store::MemoryFilter {
            limit: 10,
            ..Default::default()
        };
        let before = store
            .vector_candidates(project.id, &filter, new.model(), &query, 10)
            .await
            .unwrap();
        assert!(
            before.is_empty(),
            "{backend:?}: vectors of the old model are not searched"
        );
        assert_eq!(
            store
                .embedding_progress(project.id, new.model())
                .await
                .unwrap(),
            (0, 2)
        );

        store.prepare_vectors(new.model()).await.unwrap();
        let count = codifier::embeddings::service::backfill(&store, new.as_ref(), |_, _, _| {})
            .await
            .unwrap();
        assert_eq!(count, 2);
        assert_eq!(
            store
                .embedding_progress(project.id, new.model())
                .await
                .unwrap(),
            (2, 2)
        );
        let after = store
            .vector_candidates(project.id, &filter, new.model(), &query, 10)
            .await
            .unwrap();
        assert_eq!(after.len(), 2, "{backend:?}");
        let again = codifier::embeddings::service::backfill(&store, new.as_ref(), |_, _, _| {})
            .await
            .unwrap();
        assert_eq!(
            again, 0,
            "{backend:?}: a finished backfill has nothing left to do"
        );
    }
}

#[tokio::test]
async fn the_handshake_and_health_never_wait_for_the_model_and_early_writes_are_embedded_later() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let database = crate::helpers::fresh_database(backend).await;
        let config = crate::helpers::test_config(&database.url);
        let store = codifier::app::open_store(&config).await.unwrap();
        codifier::knowledge::projects::create(
            &store,
            &codifier::auth::Identity::Local,
            "t",
            "p",
            None,
        )
        .await
        .unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let provider = fake.config("slow");
        let loader: codifier::embeddings::service::Loader = Box::new(move || {
            let _ = released.recv_timeout(Duration::from_secs(30)); // a model that takes its time
            Ok(Arc::new(HttpEmbedder::new(provider)?) as Arc<dyn Embedder>)
        });
        let shutdown = tokio_util::sync::CancellationToken::new();
        let embeddings = codifier::embeddings::service::Embeddings::start(
            loader,
            store.clone(),
            shutdown.clone(),
        );
        let services = codifier::knowledge::memories::Services {
            store: store.clone(),
            embeddings: embeddings.clone(),
            duplicate_threshold: 0.92,
            athena: None,
            playbooks: codifier::playbooks::Engine::unwired(store.clone(), embeddings.clone())
                .unwrap(),
            packer: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server_shutdown = shutdown.clone();
        tokio::spawn(async move {
            codifier::app::serve_services(&config, services, listener, server_shutdown).await
        });

        let started = std::time::Instant::now();
        let health = reqwest::get(format!("http://{address}/health"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let client = clients::streamable(&format!("http://{address}/mcp"), OPERATOR_TOKEN).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{backend:?}: no wait for the model"
        );
        let early = remember(&client, "Early", "Written while the model loads.", &[]).await;
        assert_eq!(early["embedded"], false);
        let project = store.find_project("p").await.unwrap().unwrap();

        release.send(()).unwrap();
        let model = codifier::embeddings::EmbeddingModel {
            name: "openai:slow".into(),
            dimensions: fake_embeddings::DIMENSIONS,
        };
        let mut progress = (0, 0);
        for _ in 0..100 {
            progress = store.embedding_progress(project.id, &model).await.unwrap();
            if progress == (1, 1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            progress,
            (1, 1),
            "{backend:?}: the early write was embedded once the model was ready"
        );
        shutdown.cancel();
    }
}
