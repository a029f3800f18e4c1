//! The Postgres store's round trips. Transactions start in one round trip (no ping before
//! each one), so a connection the server has closed must be noticed and replaced at `BEGIN`
//! rather than failing the call; and projects found once are not looked up again, so a lookup
//! that missed must not be remembered.

use codifier::store::*;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::fresh_postgres;

fn actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

#[tokio::test]
async fn reads_and_writes_carry_on_after_the_server_closes_every_pooled_connection() {
    let Some((store, db)) = fresh_postgres().await else {
        return;
    };
    let project = store
        .create_project(&actor(), "pool", None)
        .await
        .expect("project");
    let draft = MemoryDraft {
        memory_type: codifier::domain::MemoryType::Rule,
        title: "retry at begin".into(),
        content: json!({ "text": "a dead connection is replaced before the transaction starts" }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: vec!["pool".into()],
        source_role: None,
    };
    store
        .create_memory(project.id, &actor(), &draft)
        .await
        .expect("write");
    let filter = MemoryFilter {
        limit: 10,
        ..Default::default()
    };
    // Several connections at once, so the pool holds more than one when they are closed.
    let reads = (0..4).map(|_| store.fetch_memories(project.id, &filter));
    for page in futures::future::join_all(reads).await {
        assert_eq!(page.expect("read").memories.len(), 1);
    }

    let name = db
        .url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    let mut admin = sqlx::PgConnection::connect(&std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .expect("admin connection");
    let closed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .expect("terminate the store's connections");
    assert!(
        closed.len() >= 2,
        "the pool held {} connections",
        closed.len()
    );
    assert!(closed.iter().all(|done| *done));

    // The connections were used a moment ago, so nothing pings them before they are reused.
    for round in 0..closed.len() + 1 {
        let page = store.fetch_memories(project.id, &filter).await;
        let page = page.unwrap_or_else(|error| panic!("read {round} failed: {error}"));
        assert_eq!(page.memories.len(), 1, "read {round}");
    }
    let mut second = draft.clone();
    second.title = "written after the restart".into();
    store
        .create_memory(project.id, &actor(), &second)
        .await
        .expect("a write after the connections closed");
    let page = store
        .fetch_memories(project.id, &filter)
        .await
        .expect("read");
    assert_eq!(page.memories.len(), 2);
}

#[tokio::test]
async fn a_project_lookup_that_missed_finds_the_project_once_it_is_created() {
    let Some((store, _db)) = fresh_postgres().await else {
        return;
    };
    assert!(store.find_project("later").await.expect("lookup").is_none());
    let created = store
        .create_project(&actor(), "later", None)
        .await
        .expect("project");
    for asked in ["later".to_owned(), created.id.to_string()] {
        for round in 0..2 {
            let found = store.find_project(&asked).await.expect("lookup");
            let found = found.unwrap_or_else(|| panic!("{asked} not found, round {round}"));
            assert_eq!((found.id, found.name.as_str()), (created.id, "later"));
        }
    }
    assert!(store.find_project("never").await.expect("lookup").is_none());
}
