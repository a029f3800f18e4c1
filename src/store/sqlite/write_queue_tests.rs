//! Writers of one process never fail with "database is locked": they queue for the store's
//! one writing connection instead of racing for SQLite's lock (see `SqliteStore::connect`).

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::SqliteStore;
use crate::domain::MemoryType;
use crate::store::*;

fn actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

fn draft(title: String) -> MemoryDraft {
    MemoryDraft {
        memory_type: MemoryType::Learning,
        title,
        content: json!({ "text": "sixteen writers at once, each waiting its turn" }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: vec!["queue".into()],
        source_role: None,
    }
}

/// One client's mix, as the soak drives it: new memories, updates, deletes, session rows
/// written a statement at a time, and reads in between.
async fn client(store: SqliteStore, project: Uuid, client: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut note = |what: &str, result: StoreResult<()>| {
        if let Err(error) = result {
            failures.push(format!("client {client} {what}: {error}"));
        }
    };
    let filter = MemoryFilter {
        limit: 5,
        ..Default::default()
    };
    for round in 0..15 {
        let title = format!("client {client} round {round}");
        let created = store
            .create_memory(project, &actor(), &draft(title.clone()))
            .await;
        let id = match created {
            Ok((memory, _)) => Some(memory.id),
            Err(error) => {
                note("create", Err(error));
                None
            }
        };
        let session = format!("session-{client}-{round}");
        let params = json!({ "clientInfo": { "name": "queue" } });
        note(
            "session",
            store.save_mcp_session_params(&session, &params).await,
        );
        note(
            "read",
            store.fetch_memories(project, &filter).await.map(drop),
        );
        if let Some(id) = id {
            let changed = draft(format!("{title}, changed"));
            let updated = store.update_memory(project, &actor(), id, &changed).await;
            note("update", updated.map(drop));
            note(
                "delete",
                store.delete_memory(project, &actor(), id).await.map(drop),
            );
        }
        note("end session", store.delete_mcp_session(&session).await);
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_never_see_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    // A short busy timeout: a writer racing others for SQLite's lock gives up after 50 ms,
    // where the server's 10 s only hid the race until the machine was busy enough.
    let store = SqliteStore::open(&url, Duration::from_millis(50))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let project = store.create_project(&actor(), "queue", None).await.unwrap();

    let clients = (0..16).map(|n| tokio::spawn(client(store.clone(), project.id, n)));
    let mut failures = Vec::new();
    for finished in futures::future::join_all(clients).await {
        failures.extend(finished.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );

    let left = store
        .fetch_memories(
            project.id,
            &MemoryFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(left.memories.is_empty(), "every memory was deleted again");
    assert_eq!(
        store.list_deleted(project.id, 500).await.unwrap().len(),
        16 * 15
    );
}
