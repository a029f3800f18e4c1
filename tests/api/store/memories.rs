//! Memories: written, read back, updated, deleted and paged, each within its own project.

use std::collections::HashSet;

use codifier::domain::MemoryType::{ApiContract, Document, Rule};
use codifier::store::WriteOutcome::{Unchanged, Updated};
use codifier::store::*;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{Ctx, actor, draft, fields, filter, outcome, pause, with};
use crate::helpers::Backend;

store_cases!(
    a_created_memory_reads_back_with_every_field,
    a_memory_written_twice_with_the_same_content_is_stored_once,
    an_update_changes_the_fields_and_moves_updated_at_but_not_created_at,
    an_update_to_the_content_of_another_memory_is_a_conflict_and_changes_nothing,
    a_deleted_memory_is_hidden_and_its_content_can_be_stored_again,
    a_deleted_memory_is_found_by_id_in_its_own_project_only,
    pages_walk_every_memory_newest_first_exactly_once,
    a_project_never_reads_or_changes_another_projects_memories,
    a_type_and_tag_filter_reads_the_newest_of_that_type_holding_every_tag,
);

async fn a_created_memory_reads_back_with_every_field(b: Backend) {
    let t = Ctx::new(b).await;
    let content = json!({ "path": "/orders", "methods": ["GET", "POST"], "auth": true,
        "limits": { "rps": 50, "burst": 2.5 }, "deprecated": null, "note": "héllo" });
    let full = MemoryDraft {
        category: Some("http".into()),
        description: Some("how to call orders".into()),
        confidence: 0.75,
        source_role: Some("architect".into()),
        ..with(content, ApiContract, "API", &["zeta", "alpha", "mid"])
    };
    let m = t.create(t.p, &full).await;
    assert_eq!(fields(&m), full, "{b:?}: every field, tags in order");
    assert_eq!((m.project_id, m.usage_count), (t.p, 0), "{b:?}");
    assert_eq!(m.created_at, m.updated_at, "{b:?}: a new memory");
    assert_eq!(t.get(t.p, m.id).await, Some(m), "{b:?}: get");
    let bare = t.create(t.p, &draft("bare", &[])).await;
    let m = t.get(t.p, bare.id).await.expect("stored");
    let empty = (m.category, m.description, m.source_role, m.tags);
    assert_eq!(empty, (None, None, None, vec![]), "{b:?}: empty");
}

async fn a_memory_written_twice_with_the_same_content_is_stored_once(b: Backend) {
    let t = Ctx::new(b).await;
    let json = |text| serde_json::from_str(text).expect("json");
    let one = json(r#"{"a":1,"b":{"x":true,"y":[1,2]}}"#);
    let first = with(one, Rule, "k", &[]);
    let two = json(r#"{"b":{"y":[1,2],"x":true},"a":1}"#);
    let reordered = with(two, Rule, "k", &[]);
    let id = t.create(t.p, &first).await.id;
    let (again, outcome) = t.write(t.p, &reordered).await;
    assert_eq!((outcome, again.id), (Unchanged, id), "{b:?}");
    let other_title = with(first.content.clone(), Rule, "k2", &[]);
    let other_type = with(first.content.clone(), Document, "k", &[]);
    let second = t.create(t.p, &other_title).await.id;
    assert_ne!(second, id, "{b:?}: another title");
    let third = t.create(t.p, &other_type).await.id;
    assert_ne!(third, id, "{b:?}: another type");
    assert_eq!(t.ids(t.p, &filter(9)).await.len(), 3, "{b:?}: rows");
}

async fn an_update_changes_the_fields_and_moves_updated_at_but_not_created_at(b: Backend) {
    let t = Ctx::new(b).await;
    let old = t.create(t.p, &draft("old", &["a"])).await;
    pause().await;
    let new = MemoryDraft {
        category: Some("style".into()),
        confidence: 0.5,
        ..with(json!({ "rule": 1 }), Rule, "new", &["b", "a"])
    };
    let (m, outcome) = t.update(t.p, old.id, &new).await.expect("update");
    assert_eq!((outcome, m.id), (Updated, old.id), "{b:?}: in place");
    assert_eq!(fields(&m), new, "{b:?}: every field changed");
    assert_eq!(m.created_at, old.created_at, "{b:?}: created_at");
    assert!(m.updated_at > old.updated_at, "{b:?}: updated_at");
    assert_eq!(t.get(t.p, m.id).await.as_ref(), Some(&m), "{b:?}");
    pause().await;
    let (same, outcome) = t.update(t.p, m.id, &new).await.expect("update");
    let no_op = (outcome, same.updated_at);
    assert_eq!(no_op, (Unchanged, m.updated_at), "{b:?}: identical");
}

async fn an_update_to_the_content_of_another_memory_is_a_conflict_and_changes_nothing(b: Backend) {
    let t = Ctx::new(b).await;
    t.create(t.p, &draft("taken", &[])).await;
    let mine = t.create(t.p, &draft("mine", &[])).await;
    let clash = t.update(t.p, mine.id, &draft("taken", &["x"])).await;
    assert_eq!(outcome(&clash), "conflict", "{b:?}: same content");
    assert_eq!(t.get(t.p, mine.id).await, Some(mine), "{b:?}: kept");
    let unknown = t.update(t.p, Uuid::new_v4(), &draft("z", &[])).await;
    assert_eq!(outcome(&unknown), "not found", "{b:?}: unknown id");
}

async fn a_deleted_memory_is_hidden_and_its_content_can_be_stored_again(b: Backend) {
    let t = Ctx::new(b).await;
    let gone = draft("gone", &["t"]);
    let id = t.create(t.p, &gone).await.id;
    let kept = t.create(t.p, &draft("kept", &["t"])).await.id;
    let deleted = t.delete(t.p, id).await.expect("delete");
    assert_eq!(deleted.id, id, "{b:?}: the deleted memory");
    assert_eq!(t.get(t.p, id).await, None, "{b:?}: get hides it");
    let ids = t.ids(t.p, &filter(9)).await;
    assert_eq!(ids, [kept], "{b:?}: fetch hides it");
    let again = t.delete(t.p, id).await;
    assert_eq!(outcome(&again), "not found", "{b:?}: twice");
    let update = t.update(t.p, id, &draft("back", &[])).await;
    assert_eq!(outcome(&update), "not found", "{b:?}: update");
    let unknown = t.delete(t.p, Uuid::new_v4()).await;
    assert_eq!(outcome(&unknown), "not found", "{b:?}: unknown");
    let recreated = t.create(t.p, &gone).await.id;
    assert_ne!(recreated, id, "{b:?}: stored again, new id");
}

async fn a_deleted_memory_is_found_by_id_in_its_own_project_only(b: Backend) {
    let t = Ctx::new(b).await;
    let other = t.project("b").await;
    let id = t.create(t.p, &draft("gone", &[])).await.id;
    let live = t.create(t.p, &draft("live", &[])).await.id;
    let store = &t.s;
    let find = |p, id| async move { store.find_deleted(p, id).await.expect("find") };
    assert_eq!(find(t.p, id).await, None, "{b:?}: not deleted yet");
    let deleted = t.delete(t.p, id).await.expect("delete");
    assert_eq!(find(t.p, id).await, Some(deleted), "{b:?}: deleted");
    assert_eq!(find(t.p, live).await, None, "{b:?}: a live memory");
    assert_eq!(find(other, id).await, None, "{b:?}: from another project");
    assert_eq!(find(t.p, Uuid::new_v4()).await, None, "{b:?}: unknown id");
    t.s.restore_deleted(t.p, &actor(), id)
        .await
        .expect("restore");
    assert_eq!(find(t.p, id).await, None, "{b:?}: restored");
}

async fn pages_walk_every_memory_newest_first_exactly_once(b: Backend) {
    let t = Ctx::new(b).await;
    let mut created = Vec::new();
    for n in 0..7 {
        let memory = t.create(t.p, &draft(&format!("m{n}"), &[])).await;
        created.insert(0, memory.id);
        pause().await;
    }
    let newest_first = t.ids(t.p, &filter(9)).await;
    assert_eq!(newest_first, created, "{b:?}: newest first");
    let (mut walked, mut sizes, mut after) = (vec![], vec![], None);
    loop {
        let page = MemoryFilter { after, ..filter(3) };
        let page = t.s.fetch_memories(t.p, &page).await.expect("page");
        sizes.push(page.memories.len());
        walked.extend(page.memories.iter().map(|m| m.id));
        let Some(next) = page.next else { break };
        // Clients hold the cursor as text.
        after = Cursor::parse(&next.encode());
        assert!(after.is_some() && sizes.len() < 9, "{b:?}: {next:?}");
    }
    assert_eq!(sizes, [3, 3, 1], "{b:?}: page sizes, then no next");
    assert_eq!(walked, created, "{b:?}: every row, in order");
    let distinct: HashSet<_> = walked.iter().collect();
    assert_eq!(distinct.len(), 7, "{b:?}: no duplicates");
}

async fn a_project_never_reads_or_changes_another_projects_memories(b: Backend) {
    let t = Ctx::new(b).await;
    let (a, other) = (t.p, t.project("b").await);
    let in_a = t.create(a, &draft("shared", &["x"])).await.id;
    let in_b = t.create(other, &draft("shared", &["x"])).await.id;
    assert_ne!(in_a, in_b, "{b:?}: same content, one per project");
    let b_only = t.create(other, &draft("b only", &["x"])).await.id;
    for id in [in_b, b_only] {
        assert_eq!(t.get(a, id).await, None, "{b:?}: get in A");
        let update = t.update(a, id, &draft("hijack", &[])).await;
        assert_eq!(outcome(&update), "not found", "{b:?}: update in A");
        let delete = t.delete(a, id).await;
        assert_eq!(outcome(&delete), "not found", "{b:?}: delete in A");
    }
    let mut narrow = filter(9);
    narrow.tags = vec!["x".into()];
    narrow.query = Some("b".into());
    for filter in [filter(9), narrow] {
        let ids = t.ids(a, &filter).await;
        assert_eq!(ids, [in_a], "{b:?}: fetch in A, {filter:?}");
    }
    let of_b = t.titles(other, &filter(9)).await;
    assert_eq!(of_b, ["b only", "shared"], "{b:?}: B untouched");
}

async fn a_type_and_tag_filter_reads_the_newest_of_that_type_holding_every_tag(b: Backend) {
    let t = Ctx::new(b).await;
    let rule = |title: &str, tags: &[&str]| {
        let mut d = draft(title, tags);
        d.memory_type = Rule;
        d
    };
    let mut written = Vec::new();
    for (title, tags) in [
        ("r1", &["a", "b"][..]),
        ("r2", &["b"]),
        ("r3", &["b", "a", "c"]),
    ] {
        written.push(t.create(t.p, &rule(title, tags)).await.id);
        pause().await;
    }
    t.create(t.p, &draft("learning", &["a", "b"])).await;
    pause().await;
    let r4 = t.create(t.p, &rule("r4", &["a"])).await.id;
    let (r1, r2, r3) = (written[0], written[1], written[2]);
    let mut wanted = filter(9);
    wanted.memory_type = Some(Rule);
    wanted.tags = vec!["a".into(), "b".into()];
    assert_eq!(t.ids(t.p, &wanted).await, [r3, r1], "{b:?}: newest first");
    // Tags changed by an update and a deletion count at the next read.
    let updated = t.update(t.p, r2, &rule("r2", &["a", "b"])).await;
    assert_eq!(outcome(&updated), "ok", "{b:?}: update r2");
    let updated = t.update(t.p, r4, &rule("r4", &["a", "b"])).await;
    assert_eq!(outcome(&updated), "ok", "{b:?}: update r4");
    t.delete(t.p, r3).await.expect("delete r3");
    assert_eq!(t.ids(t.p, &wanted).await, [r4, r2, r1], "{b:?}: after");
    wanted.limit = 2;
    let page = t.s.fetch_memories(t.p, &wanted).await.expect("page");
    let ids: Vec<Uuid> = page.memories.iter().map(|m| m.id).collect();
    assert_eq!(ids, [r4, r2], "{b:?}: the first page");
    assert!(page.next.is_some(), "{b:?}: a next page");
}
