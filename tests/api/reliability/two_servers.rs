//! Two `codifier serve` processes on one Postgres database, the way one scales out (more
//! machines, one managed Postgres), behind a round-robin TCP proxy of the test's own that sends
//! each new connection to the other server. Both start at once on an empty database (so their
//! migrations race); one client's calls then alternate between them and behave as with one
//! server: the session, the active project after `switch`, writes, and a revoked key refused by
//! both within the key-cache window.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use codifier::domain::MemoryType;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::{Mcp, Process, memory, written_id};
use crate::fake_embeddings::FakeEmbeddings;
use crate::helpers::{Backend, OPERATOR_TOKEN, backends, fresh_database, text_draft};

/// A loopback TCP proxy: connection `n` goes to `backends[n % len]`. Returns its base URL and
/// the count of connections each backend got.
async fn round_robin(backends: Vec<String>) -> (String, Arc<Vec<AtomicUsize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
    let served = counts.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let index = n % backends.len();
            served[index].fetch_add(1, Ordering::Relaxed);
            let target = backends[index].trim_start_matches("http://").to_owned();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (base, counts)
}

/// A client that opens a new connection for every request, so the proxy alternates servers.
fn alternating(bearer: &str) -> Mcp {
    let mut client = Mcp::new(bearer);
    client.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    client
}

/// Two servers started at once on `url` (an empty database: their migrations race), once both
/// answer `/health` with 200.
async fn pair(url: &str, env: &[(&str, &str)]) -> (Process, Process) {
    let (a, b) = tokio::join!(Process::start(url, env), Process::start(url, env));
    for server in [&a, &b] {
        let mut waited = 0;
        while server.health().await != 200 {
            waited += 1;
            assert!(
                waited < 600,
                "a server never became healthy after the migration race"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (a, b)
}

fn actor() -> codifier::domain::Actor {
    codifier::domain::Actor {
        label: "test".into(),
        tool: "test".into(),
    }
}

#[tokio::test]
async fn two_servers_on_one_postgres_start_together_and_serve_one_client_alternately() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = fresh_database(Backend::Postgres).await;
    let (a, b) = pair(&database.url, &[("CODIFIER_KEY_CACHE_SECONDS", "1")]).await;
    let (proxy, counts) = round_robin(vec![a.base.clone(), b.base.clone()]).await;

    let store = codifier::store::connect(&database.url).await.unwrap();
    let actor = actor();
    let project = store
        .create_project(&actor, "shared", None)
        .await
        .unwrap()
        .id;

    let mut client = alternating(OPERATOR_TOKEN);
    client.initialize(&proxy).await;
    client
        .call(
            &proxy,
            "manage_projects",
            json!({"operation": "switch", "project_id": "shared"}),
        )
        .await
        .expect("switch");
    for round in 0..6 {
        let shown = client
            .call(&proxy, "manage_projects", json!({"operation": "get"}))
            .await
            .unwrap_or_else(|error| panic!("get on call {round}: {error}"));
        assert_eq!(
            shown["active_project_id"],
            json!(project),
            "the active project holds on either server"
        );
        let written = client
            .call(&proxy, "update_memory", memory(project, 0, round))
            .await
            .unwrap_or_else(|error| panic!("write on call {round}: {error}"));
        let id = written_id(&written);
        assert!(store.get_memory(project, id).await.unwrap().is_some());
    }
    assert_eq!(store.count_memories(project).await.unwrap(), 6);
    let served: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert!(
        served.iter().all(|count| *count >= 5),
        "both servers served the client: {served:?}"
    );

    // A key revoked on one database is refused by both servers within the cache window.
    let generated = codifier::auth::keys::generate().unwrap();
    let new = codifier::store::NewApiKey {
        project_id: project,
        prefix: generated.prefix.clone(),
        hash: generated.hash,
        role: codifier::domain::Role::Write,
        label: Some("two servers".into()),
    };
    store.create_api_key(&actor, &new).await.unwrap();
    let mut keyed = Mcp::new(&generated.key);
    keyed.initialize(&a.base).await;
    for server in [&a, &b] {
        assert_eq!(keyed.list_tools(&server.base).await, 200, "the key works");
    }
    store
        .revoke_api_key(&actor, &generated.prefix)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for server in [&a, &b] {
        assert_eq!(
            keyed.list_tools(&server.base).await,
            401,
            "{}: a revoked key is refused within the cache window",
            server.base
        );
    }
    a.kill().await;
    b.kill().await;
}

/// The step a playbook view is at.
fn current(view: &Value) -> &str {
    view["current"]["id"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn a_playbook_session_advances_from_either_server_and_of_two_concurrent_advances_one_wins() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = fresh_database(Backend::Postgres).await;
    let (a, b) = pair(&database.url, &[]).await;
    let (proxy, counts) = round_robin(vec![a.base.clone(), b.base.clone()]).await;
    let store = codifier::store::connect(&database.url).await.unwrap();
    let project = store
        .create_project(&actor(), "atlas", None)
        .await
        .unwrap()
        .id;
    let mut client = alternating(OPERATOR_TOKEN);
    client.initialize(&proxy).await;

    // One session walked through its steps, each call on the other server.
    let start = json!({"playbook_id": "initialize-project", "project_id": "atlas",
                       "input": {"project_name": "Atlas"}});
    let mut view = client
        .call(&proxy, "run_playbook", start.clone())
        .await
        .expect("run_playbook");
    let session = view["session_id"].clone();
    let mut walked = vec![current(&view).to_owned()];
    for value in [json!("A tracker."), json!(""), json!([])] {
        let key = view["current"]["input"]["key"].as_str().unwrap().to_owned();
        let step = view["current"]["id"].clone();
        view = client
            .call(
                &proxy,
                "advance_step",
                json!({"session_id": session, "step_id": step, "input": {key: value}}),
            )
            .await
            .unwrap_or_else(|error| panic!("advance {step}: {error}"));
        walked.push(current(&view).to_owned());
    }
    assert_eq!(
        walked,
        [
            "description",
            "statement-of-work",
            "repositories",
            "generate-rules"
        ],
        "one step per call, none skipped or repeated"
    );
    let served: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert!(
        served.iter().all(|n| *n >= 2),
        "both servers took part: {served:?}"
    );

    // Two callers answer the same step at once, one on each server: one wins, the other is
    // told the session moved, and the step is stored once.
    let mut on_a = Mcp::new(OPERATOR_TOKEN);
    on_a.initialize(&a.base).await;
    let mut on_b = Mcp::new(OPERATOR_TOKEN);
    on_b.initialize(&b.base).await;
    let races = 6;
    let before = store.count_memories(project).await.unwrap();
    for race in 0..races {
        let started = on_a
            .call(&a.base, "run_playbook", start.clone())
            .await
            .expect("run_playbook");
        let session = started["session_id"].clone();
        let id: uuid::Uuid = session.as_str().unwrap().parse().unwrap();
        let step_before = store
            .get_playbook_session(project, id)
            .await
            .unwrap()
            .expect("the session")
            .current_step;
        let answer = |who: &str| {
            json!({"session_id": session, "step_id": "description",
                   "input": {"description": format!("written on {who} in race {race}")}})
        };
        let (from_a, from_b) = tokio::join!(
            on_a.call(&a.base, "advance_step", answer("a")),
            on_b.call(&b.base, "advance_step", answer("b"))
        );
        let won: Vec<&Value> = [&from_a, &from_b].into_iter().flatten().collect();
        assert_eq!(
            won.len(),
            1,
            "race {race}: exactly one concurrent advance wins: {from_a:?} / {from_b:?}"
        );
        let lost = from_a.as_ref().err().or(from_b.as_ref().err()).unwrap();
        assert!(
            lost.contains("session") || lost.contains("step"),
            "race {race}: the loser is told why: {lost}"
        );
        let stored = store
            .get_playbook_session(project, id)
            .await
            .unwrap()
            .expect("the session");
        assert_eq!(
            stored.current_step,
            step_before + 1,
            "race {race}: advanced once"
        );
        assert_eq!(
            current(won[0]),
            "statement-of-work",
            "race {race}: the winner sees the next step"
        );
    }
    let stored = store.count_memories(project).await.unwrap() - before;
    assert_eq!(stored, races, "one description stored per race, none twice");
    a.kill().await;
    b.kill().await;
}

/// The texts the fake provider was asked to embed that carry `marker`.
fn embedded_with(fake: &FakeEmbeddings, marker: &str) -> usize {
    fake.behaviour
        .texts
        .lock()
        .unwrap()
        .iter()
        .filter(|text| text.contains(marker))
        .count()
}

#[tokio::test]
async fn two_servers_never_embed_one_memory_twice() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = fresh_database(Backend::Postgres).await;
    let store = codifier::store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let project = store
        .create_project(&actor(), "shared", None)
        .await
        .unwrap()
        .id;
    // A backlog written while no provider was configured: both servers start on it at once.
    let backlog = 120;
    let mut markers = Vec::new();
    for n in 0..backlog {
        let marker = format!("backlog{n}x{}", uuid::Uuid::new_v4().simple());
        let title = format!("memory {marker}");
        let draft = text_draft(MemoryType::Learning, &title, &format!("about {marker}"));
        store
            .create_memory(project, &actor(), &draft)
            .await
            .unwrap();
        markers.push(marker);
    }
    let fake = FakeEmbeddings::start().await;
    let url = fake.base_url();
    let dimensions = crate::fake_embeddings::DIMENSIONS.to_string();
    let env = [
        ("CODIFIER_EMBEDDINGS", "openai"),
        ("CODIFIER_EMBEDDING_URL", url.as_str()),
        ("CODIFIER_EMBEDDING_API_KEY", crate::fake_embeddings::KEY),
        ("CODIFIER_EMBEDDING_MODEL", "fake-model"),
        ("CODIFIER_EMBEDDING_DIMENSIONS", dimensions.as_str()),
        ("CODIFIER_EMBEDDING_BATCH", "4"),
    ];
    let (a, b) = pair(&database.url, &env).await;
    let model = codifier::domain::EmbeddingModel {
        name: "openai:fake-model".into(),
        dimensions: crate::fake_embeddings::DIMENSIONS,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (done, total) = store.embedding_progress(project, &model).await.unwrap();
        if done == total {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{done} of {total} memories embedded after 60 s ({} requests at the provider, {} unauthorized)",
            fake.behaviour.requests.load(Ordering::SeqCst),
            fake.behaviour.unauthorized.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // New memories written alternately through both servers are embedded as they are written.
    let (proxy, _) = round_robin(vec![a.base.clone(), b.base.clone()]).await;
    let mut client = alternating(OPERATOR_TOKEN);
    client.initialize(&proxy).await;
    for n in 0..6 {
        let marker = format!("fresh{n}x{}", uuid::Uuid::new_v4().simple());
        let draft = json!({"project_id": project, "memory_type": "learning",
                           "title": format!("memory {marker}"),
                           "content": {"text": format!("about {marker}")}});
        let written = client
            .call(&proxy, "update_memory", draft)
            .await
            .unwrap_or_else(|error| panic!("write {n}: {error}"));
        assert_eq!(written["embedded"], true, "write {n}: {written}");
        markers.push(marker);
    }
    // Give a straggling duplicate the time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice: Vec<(&String, usize)> = markers
        .iter()
        .map(|marker| (marker, embedded_with(&fake, marker)))
        .filter(|(_, count)| *count != 1)
        .collect();
    assert!(
        twice.is_empty(),
        "every memory embedded exactly once; these were not: {twice:?}"
    );
    eprintln!(
        "two servers: {} memories, {} embedding requests, each memory embedded once",
        markers.len(),
        fake.behaviour.requests.load(Ordering::SeqCst)
    );
    a.kill().await;
    b.kill().await;
}
