//! Two `codifier serve` processes on one Postgres database, the way one scales out (more
//! machines, one managed Postgres), behind a round-robin TCP proxy of the test's own that sends
//! each new connection to the other server. Both start at once on an empty database (so their
//! migrations race); one client's calls then alternate between them and behave as with one
//! server: the session, the active project after `switch`, writes, and a revoked key refused by
//! both within the key-cache window.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use super::{Mcp, Process, memory, written_id};
use crate::helpers::{Backend, OPERATOR_TOKEN, backends, fresh_database};

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

#[tokio::test]
async fn two_servers_on_one_postgres_start_together_and_serve_one_client_alternately() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = fresh_database(Backend::Postgres).await;
    let env = [("CODIFIER_KEY_CACHE_SECONDS", "1")];
    let (a, b) = tokio::join!(
        Process::start(&database.url, &env),
        Process::start(&database.url, &env)
    );
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
    let (proxy, counts) = round_robin(vec![a.base.clone(), b.base.clone()]).await;

    let store = codifier::store::connect(&database.url).await.unwrap();
    let actor = codifier::domain::Actor {
        label: "test".into(),
        tool: "test".into(),
    };
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
