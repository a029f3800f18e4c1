//! Crash safety: the real server killed with `SIGKILL` at a random moment while four writers
//! create memories over one MCP session, again and again on one database. After every restart
//! each acknowledged write is there, whole; the SQLite file passes `PRAGMA integrity_check`;
//! the MCP session opened before the first kill still answers, with its active project.
//! `CODIFIER_RELIABILITY_CRASH_ROUNDS` sets the number of kills (CI: 4 per store; the run: 50).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::{Mcp, Process, knob, memory, written_id};
use crate::helpers::{Backend, OPERATOR_TOKEN, backends, fresh_database};

const WRITERS: usize = 4;

pub(super) async fn healthy(server: &Process) {
    for _ in 0..300 {
        if server.health().await == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the restarted server never said 200 on /health");
}

pub(super) async fn integrity_check(url: &str) -> String {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

async fn kill_during_writes(backend: Backend) {
    let rounds = knob("CRASH_ROUNDS", 4);
    let database = fresh_database(backend).await;
    let store = codifier::store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = codifier::domain::Actor {
        label: "test".into(),
        tool: "test".into(),
    };
    let project = store
        .create_project(&actor, "crash", None)
        .await
        .unwrap()
        .id;
    let mut client = Mcp::new(OPERATOR_TOKEN);
    let acked: Arc<Mutex<Vec<(Uuid, String)>>> = Arc::default();
    let mut total_killed_in_flight = 0;
    for round in 0..rounds {
        let server = Process::start(&database.url, &[]).await;
        healthy(&server).await;
        if round == 0 {
            client.initialize(&server.base).await;
            client
                .call(
                    &server.base,
                    "manage_projects",
                    json!({"operation": "switch", "project_id": "crash"}),
                )
                .await
                .expect("switch");
        } else {
            assert_eq!(
                client.list_tools(&server.base).await,
                200,
                "round {round}: the session opened before the kills resumes"
            );
            let shown = client
                .call(&server.base, "manage_projects", json!({"operation": "get"}))
                .await
                .expect("get the active project");
            assert_eq!(
                shown["active_project_id"],
                json!(project),
                "round {round}: the session's active project survived the kill"
            );
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (client, base, acked) = (client.clone(), server.base.clone(), acked.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        let draft = memory(project, writer, round * 1_000_000 + n);
                        let title = draft["title"].as_str().unwrap().to_owned();
                        match client.call(&base, "update_memory", draft).await {
                            Ok(answer) => acked.lock().unwrap().push((written_id(&answer), title)),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        let wait = rand::thread_rng().gen_range(150..700);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().await;
        for writer in writers {
            writer.await.unwrap();
            total_killed_in_flight += 1;
        }

        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "round {round}: no write was acknowledged"
        );
        for (id, title) in &acked {
            let stored = store.get_memory(project, *id).await.unwrap();
            let stored = stored.unwrap_or_else(|| {
                panic!("round {round}: the acknowledged write {id} is gone after SIGKILL")
            });
            assert_eq!(&stored.title, title, "round {round}: {id} is not whole");
        }
        // Nothing unacknowledged is half there: every memory is one of ours, whole.
        let count = store.count_memories(project).await.unwrap() as usize;
        assert!(
            count >= acked.len() && count <= acked.len() + WRITERS * (round as usize + 1),
            "round {round}: {count} memories for {} acknowledged writes and {} kills of {WRITERS} writers",
            acked.len(),
            round + 1
        );
        if backend == Backend::Sqlite {
            assert_eq!(integrity_check(&database.url).await, "ok", "round {round}");
        }
    }
    eprintln!(
        "{backend:?}: {rounds} kills, {} acknowledged writes all present ({total_killed_in_flight} writers cut)",
        acked.lock().unwrap().len()
    );
}

#[tokio::test]
async fn every_acknowledged_write_survives_sigkill_and_the_stored_session_resumes() {
    for backend in backends() {
        kill_during_writes(backend).await;
    }
}
