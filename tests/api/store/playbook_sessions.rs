//! Playbook sessions in the store, on every backend: confined to their project (row-level
//! security on Postgres), saved only on the revision they were read at, with the memories a step
//! produced written in the same transaction.

use codifier::domain::MemoryType;
use codifier::store::postgres::PgStore;
use codifier::store::*;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{Backend, fresh_store};

store_cases!(a_session_is_saved_only_on_its_revision_and_only_in_its_project);

fn actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

fn session(project: Uuid) -> PlaybookSession {
    let at = codifier::store::now();
    PlaybookSession {
        id: Uuid::new_v4(),
        project_id: project,
        playbook_id: "initialize-project".into(),
        playbook_version: "1.0".into(),
        current_step: 0,
        collected_data: json!({}),
        step_results: StepResults::default(),
        status: SessionStatus::Active,
        revision: 0,
        last_step_id: None,
        last_input_digest: None,
        created_at: at,
        updated_at: at,
    }
}

fn draft(title: &str) -> MemoryDraft {
    MemoryDraft {
        memory_type: MemoryType::Document,
        title: title.into(),
        content: json!({"text": title}),
        category: None,
        description: None,
        confidence: 1.0,
        tags: vec![],
        source_role: None,
    }
}

async fn a_session_is_saved_only_on_its_revision_and_only_in_its_project(backend: Backend) {
    let (store, db) = fresh_store(backend).await;
    let a = store.create_project(&actor(), "a", None).await.unwrap().id;
    let b = store.create_project(&actor(), "b", None).await.unwrap().id;
    let started = session(a);
    store
        .create_playbook_session(a, &actor(), &started)
        .await
        .unwrap();
    assert!(
        store
            .get_playbook_session(b, started.id)
            .await
            .unwrap()
            .is_none(),
        "{backend:?}"
    );
    assert!(
        store
            .list_playbook_sessions(b, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut next = started.clone();
    next.revision = 1;
    next.current_step = 1;
    let step = StepMemory {
        step_id: "description".into(),
        draft: draft("Description"),
    };
    let (saved, written) = store
        .save_playbook_session(a, &actor(), next.clone(), std::slice::from_ref(&step))
        .await
        .unwrap();
    assert_eq!(
        saved.step_results.get("description").unwrap().memory_id,
        Some(written[0].0.id)
    );

    // The same revision again is stale: a conflict, and its memory is not written.
    let stale = StepMemory {
        step_id: "other".into(),
        draft: draft("Never stored"),
    };
    let error = store
        .save_playbook_session(a, &actor(), next, &[stale])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    let memories = store
        .fetch_memories(
            a,
            &MemoryFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(memories.memories.len(), 1, "the stale save wrote nothing");

    // A session of A cannot be saved through B.
    let mut moved = saved.clone();
    moved.revision = 2;
    assert!(
        store
            .save_playbook_session(b, &actor(), moved, &[])
            .await
            .is_err()
    );

    let recorded = store
        .record_session_data(
            a,
            &actor(),
            started.id,
            "query_results",
            &json!({"rows": [1]}),
        )
        .await
        .unwrap();
    assert_eq!(recorded.collected_data["query_results"]["rows"][0], 1);
    assert_eq!(recorded.revision, 2);
    assert!(
        store
            .record_session_data(b, &actor(), started.id, "k", &json!(1))
            .await
            .is_err()
    );

    if backend == Backend::Postgres {
        let pg = PgStore::connect(&db.url).await.unwrap();
        let mut tx = pg.scoped(b).await.unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, 0, "row-level security hides A's session from B");
        drop(tx);
        let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let all: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert_eq!(all, 1);
    }
}
