//! Finding by meaning and by words, additive writes, and embedding providers: through MCP over
//! Streamable HTTP on both stores, with the hosted provider faked at the network boundary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use codifier::config::EmbeddingsConfig;
use codifier::domain::{MemoryType, Role};
use codifier::embeddings::Embedder;
use codifier::embeddings::http::HttpEmbedder;
use serde_json::{Value, json};

use crate::clients::{self, Client, call, memory_titles, ok, refused};
use crate::fake_embeddings::{self, FakeEmbeddings};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends, local_actor, text_draft};

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
            memory_titles(&semantic)[0],
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
        assert_eq!(memory_titles(&hybrid)[0], "Migrations");
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
            !memory_titles(&filtered).contains(&"Parking".to_owned()),
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
        assert_eq!(memory_titles(&deleted), ["Old rule"], "{backend:?}");
        ok(&call(&writer, "restore_memory", json!({"id": id})).await);
        let live = ok(&call(&writer, "fetch_context", json!({})).await);
        assert_eq!(
            memory_titles(&live),
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
        let actor = local_actor();
        for title in ["Parking cars", "Green tea"] {
            let draft = text_draft(MemoryType::Learning, title, title);
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

/// The backfill overlaps the store with the model (batch N + 1 claimed and batch N − 1 stored
/// while batch N is embedded): every memory still reaches the provider once, also with two
/// backfills at once on one database (two servers), and each batch's vectors are all stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overlapping_backfills_send_every_memory_to_the_provider_exactly_once() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        fake.behaviour.texts.lock().unwrap().clear();
        let (store, _db) = crate::helpers::fresh_store(backend).await;
        let actor = local_actor();
        let project = store.create_project(&actor, "p", None).await.unwrap();
        for n in 0..230 {
            let text = format!("how service {n} retries its calls");
            let draft = text_draft(MemoryType::Learning, &format!("memory {n}"), &text);
            store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
        }
        let embedder: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("m")).unwrap());
        let backfill =
            || codifier::embeddings::service::backfill(&store, embedder.as_ref(), |_, _, _| {});
        let (one, two) = tokio::join!(backfill(), backfill());
        let (one, two) = (one.unwrap(), two.unwrap());
        assert_eq!(one + two, 230, "{backend:?}: {one} and {two} embedded");
        assert_eq!(
            fake.behaviour.texts_sent_and_distinct(),
            (230, 230),
            "{backend:?}: each text sent once"
        );
        assert_eq!(
            store
                .embedding_progress(project.id, embedder.model())
                .await
                .unwrap(),
            (230, 230),
            "{backend:?}: every vector stored"
        );
        assert_eq!(backfill().await.unwrap(), 0, "{backend:?}: nothing left");
    }
}

/// A server started with another model than the one the memories were embedded with sends each
/// memory to the model once: its start makes every memory with a vector of the earlier model
/// wait again (that vector cleared), and the backfill takes each once. A memory deleted before
/// the change and restored after it waits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_change_re_embeds_every_memory_exactly_once() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let (store, _db) = crate::helpers::fresh_store(backend).await;
        let actor = local_actor();
        let project = store.create_project(&actor, "p", None).await.unwrap();
        let mut ids = Vec::new();
        for n in 0..70 {
            let text = format!("how service {n} retries its calls");
            let draft = text_draft(MemoryType::Learning, &format!("memory {n}"), &text);
            let (memory, _) = store
                .create_memory(project.id, &actor, &draft)
                .await
                .unwrap();
            ids.push(memory.id);
        }
        let old: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("old")).unwrap());
        store.prepare_vectors(old.model()).await.unwrap();
        let first = codifier::embeddings::service::backfill(&store, old.as_ref(), |_, _, _| {});
        assert_eq!(first.await.unwrap(), 70, "{backend:?}");
        store
            .delete_memory(project.id, &actor, ids[0])
            .await
            .unwrap();
        fake.behaviour.texts.lock().unwrap().clear();

        let provider = fake.config("new");
        let loader: codifier::embeddings::service::Loader =
            Box::new(move || Ok(Arc::new(HttpEmbedder::new(provider)?) as Arc<dyn Embedder>));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let embeddings = codifier::embeddings::service::Embeddings::start(
            loader,
            store.clone(),
            shutdown.clone(),
        );
        let new = codifier::domain::EmbeddingModel {
            name: "openai:new".into(),
            dimensions: fake_embeddings::DIMENSIONS,
        };
        let progress = || store.embedding_progress(project.id, &new);
        let mut reached = (0, 0);
        for _ in 0..200 {
            reached = progress().await.unwrap();
            if reached == (69, 69) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            reached,
            (69, 69),
            "{backend:?}: every live memory re-embedded"
        );
        store
            .restore_deleted(project.id, &actor, ids[0])
            .await
            .unwrap();
        embeddings.wake();
        for _ in 0..200 {
            reached = progress().await.unwrap();
            if reached == (70, 70) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(reached, (70, 70), "{backend:?}: the restored memory too");
        shutdown.cancel();

        assert_eq!(
            fake.behaviour.texts_sent_and_distinct(),
            (70, 70),
            "{backend:?}: each memory sent to the new model once"
        );
        assert_eq!(
            store
                .embedding_progress(project.id, old.model())
                .await
                .unwrap(),
            (0, 70),
            "{backend:?}: no vector of the old model left"
        );
        let new: Arc<dyn Embedder> = Arc::new(HttpEmbedder::new(fake.config("new")).unwrap());
        let again = codifier::embeddings::service::backfill(&store, new.as_ref(), |_, _, _| {});
        assert_eq!(again.await.unwrap(), 0, "{backend:?}: nothing left waiting");
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
        let app = codifier::app::App {
            knowledge: codifier::knowledge::KnowledgeBase {
                store: store.clone(),
                embeddings: embeddings.clone(),
                duplicate_threshold: 0.92,
            },
            athena: None,
            playbooks: codifier::playbooks::Engine::unwired(store.clone(), embeddings.clone())
                .unwrap(),
            packer: Default::default(),
            library: Default::default(),
            validator: Default::default(),
            task_deadlines: Default::default(),
            events: Default::default(),
            listeners: codifier::events::listeners::Listeners::new(256),
            request_states: std::sync::Arc::new(codifier::mcp::RequestStates::new(
                &Default::default(),
                store.clone(),
            )),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server_shutdown = shutdown.clone();
        tokio::spawn(async move {
            codifier::http::serve_app(&config, app, listener, server_shutdown).await
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
        let model = codifier::domain::EmbeddingModel {
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

async fn semantic_titles(client: &Client, query: &str, extra: Value) -> Vec<String> {
    let mut arguments = json!({"project_id": "p", "query": query, "mode": "semantic"});
    for (key, value) in extra.as_object().unwrap() {
        arguments[key] = value.clone();
    }
    memory_titles(&ok(&call(client, "fetch_context", arguments).await))
}

#[tokio::test]
async fn meaning_search_sees_every_write_update_and_delete_at_once() {
    let fake = FakeEmbeddings::start().await;
    for backend in backends() {
        let server = server_with_fake(backend, &fake, "fake").await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        wait_for_embedder(&client).await;
        remember(&client, "Tea", "The kitchen has green tea.", &["site"]).await;
        // The first search loads the project's vectors; every later change must reach them.
        assert_eq!(
            semantic_titles(&client, "automobile", json!({})).await,
            ["Tea"]
        );

        let parking = remember(
            &client,
            "Parking",
            "Every car parks in the garage.",
            &["site"],
        )
        .await;
        let id = parking["memory"]["id"].as_str().unwrap().to_owned();
        let found = semantic_titles(&client, "automobile", json!({})).await;
        assert_eq!(
            found[0], "Parking",
            "{backend:?}: a new memory is found at once"
        );
        let by_tag = semantic_titles(&client, "automobile", json!({"tags": ["ops"]})).await;
        assert!(by_tag.is_empty(), "{backend:?}: filters apply: {by_tag:?}");

        ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "p", "id": id, "memory_type": "learning", "title": "Parking",
                   "content": {"text": "Run database migrations first."}, "tags": ["ops"]}),
        )
        .await);
        let found = semantic_titles(&client, "postgres", json!({"tags": ["ops"]})).await;
        assert_eq!(
            found,
            ["Parking"],
            "{backend:?}: the new text and tags are searched"
        );
        let found = semantic_titles(&client, "automobile", json!({"tags": ["site"]})).await;
        assert_eq!(found, ["Tea"], "{backend:?}: the old tags are gone");

        ok(&call(
            &client,
            "delete_memory",
            json!({"project_id": "p", "id": id}),
        )
        .await);
        let found = semantic_titles(&client, "postgres", json!({})).await;
        assert_eq!(
            found,
            ["Tea"],
            "{backend:?}: a deleted memory is never found"
        );
    }
}

#[tokio::test]
async fn meaning_search_finds_what_another_handle_wrote_to_the_same_sqlite_file() {
    let fake = FakeEmbeddings::start().await;
    let server = server_with_fake(crate::helpers::Backend::Sqlite, &fake, "fake").await;
    let project = server.project("p").await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    wait_for_embedder(&client).await;
    remember(&client, "Tea", "The kitchen has green tea.", &[]).await;
    assert_eq!(
        semantic_titles(&client, "automobile", json!({})).await,
        ["Tea"]
    );

    // Another process on the same file, as the CLI would be: its own pool, its own cache.
    let other = codifier::store::connect(&server.database.url)
        .await
        .unwrap();
    let embedder = HttpEmbedder::new(fake.config("fake")).unwrap();
    let actor = local_actor();
    let (memory, _) = other
        .create_memory(
            project.id,
            &actor,
            &text_draft(MemoryType::Learning, "Parking", "Every car parks here."),
        )
        .await
        .unwrap();
    let job = codifier::store::EmbeddingJob {
        id: memory.id,
        text: codifier::store::embedding_text(&memory.title, &memory.content),
        updated_at: memory.updated_at,
    };
    let vector = embedder
        .embed(std::slice::from_ref(&job.text))
        .await
        .unwrap()
        .pop()
        .unwrap();
    other
        .store_embedding(project.id, &job, embedder.model(), &vector)
        .await
        .unwrap();
    let found = semantic_titles(&client, "automobile", json!({})).await;
    assert_eq!(
        found[0], "Parking",
        "a vector stored by another handle is found at once"
    );

    other
        .delete_memory(project.id, &actor, memory.id)
        .await
        .unwrap();
    assert_eq!(
        semantic_titles(&client, "automobile", json!({})).await,
        ["Tea"],
        "a memory deleted by another handle is gone at once"
    );
}

/// Memory `n` of 13 for the SQLite word lookup: "deploy" is in 8 of them, "database" in 6,
/// "rollback" in 4, "canary" in 3 (the last one holds "canary" alone).
fn word_memory(n: usize) -> codifier::store::MemoryDraft {
    let mut words = vec![format!("note{n}")];
    if n == 12 {
        words.push("canary".into());
    }
    for (word, every) in [
        ("deploy", 8),
        ("database", 6),
        ("rollback", 4),
        ("canary", 2),
    ] {
        if n < every {
            words.extend(std::iter::repeat_n(word.to_string(), 1 + n % 3));
        }
    }
    let kind = if n.is_multiple_of(2) {
        MemoryType::Learning
    } else {
        MemoryType::Rule
    };
    text_draft(kind, &format!("memory {n}"), &words.join(" "))
}

#[tokio::test]
async fn on_sqlite_common_words_do_not_narrow_what_rarer_words_find() {
    use codifier::store::sqlite::SqliteStore;
    use codifier::store::{MemoryFilter, MemoryStore, ProjectStore, SearchStore, Store};
    let database = crate::helpers::fresh_database(crate::helpers::Backend::Sqlite).await;
    let store = SqliteStore::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = local_actor();
    let project = store.create_project(&actor, "p", None).await.unwrap().id;
    let mut ids = Vec::new();
    for n in 0..13 {
        ids.push(
            store
                .create_memory(project, &actor, &word_memory(n))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    let everything = MemoryFilter {
        limit: 50,
        ..Default::default()
    };
    let rules = MemoryFilter {
        memory_type: Some(MemoryType::Rule),
        ..everything.clone()
    };
    let lookup = |store: SqliteStore, filter: MemoryFilter, query: &'static str, all: bool| async move {
        let words: Vec<String> = query.split(' ').map(str::to_owned).collect();
        let found = store
            .text_candidates(project, &filter, &words, all, 50)
            .await
            .unwrap();
        let mut ids: Vec<uuid::Uuid> = found.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let sorted = |picked: &[usize]| {
        let mut picked: Vec<uuid::Uuid> = picked.iter().map(|n| ids[*n]).collect();
        picked.sort();
        picked
    };
    // Thresholds that make every word rare, some words common, and every word common: a
    // query whose rarer words imply the common ones finds the same memories under each.
    for common in [4096, 5, 3, 1] {
        let plan = store.clone().with_common_term(common);
        for (query, filter, expected) in [
            ("deploy rollback", &everything, vec![0, 1, 2, 3]),
            ("deploy database", &rules, vec![1, 3, 5]),
            ("rollback canary", &rules, vec![1]),
            ("deploy nowhere", &everything, vec![]),
        ] {
            let found = lookup(plan.clone(), filter.clone(), query, true).await;
            assert_eq!(found, sorted(&expected), "{query}, common from {common}");
        }
    }
    // "deploy" common from 5 memories: "canary" alone finds, so memory 12 is found too.
    let strict = lookup(store.clone(), everything.clone(), "deploy canary", true).await;
    assert_eq!(strict, sorted(&[0, 1]));
    let loose = store.clone().with_common_term(5);
    let found = lookup(loose.clone(), everything.clone(), "deploy canary", true).await;
    assert_eq!(found, sorted(&[0, 1, 12]));
    // Any word: rare, both find; "deploy" common, only "canary"; both common, both again.
    let any = lookup(store.clone(), everything.clone(), "deploy canary", false).await;
    assert_eq!(any, sorted(&[0, 1, 2, 3, 4, 5, 6, 7, 12]));
    let found = lookup(loose, everything.clone(), "deploy canary", false).await;
    assert_eq!(found, sorted(&[0, 1, 12]));
    let all_common = store.clone().with_common_term(1);
    let found = lookup(all_common, everything.clone(), "deploy canary", false).await;
    assert_eq!(found, any);
}
