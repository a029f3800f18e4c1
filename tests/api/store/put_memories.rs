//! Memories written with ids the caller chose, several in one transaction (`put_memories`):
//! inserted, updated in place, left alone or brought back, with revisions and audit entries as
//! `update_memory` writes, and nothing written when one of them fails.

use codifier::domain::MemoryType::Rule;
use codifier::store::WriteOutcome::{Created, Unchanged, Updated};
use codifier::store::*;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{Ctx, actor, draft, fields, filter, outcome, with};
use crate::helpers::Backend;

store_cases!(
    put_memories_inserts_with_the_callers_ids_and_a_second_put_changes_nothing,
    a_changed_item_is_updated_in_place_with_a_revision_and_an_audit_entry,
    a_deleted_item_put_again_comes_back_under_its_id,
    when_one_item_fails_no_item_of_the_batch_is_written,
    an_id_taken_in_another_project_is_a_conflict_and_reveals_nothing,
);

impl Ctx {
    async fn put(&self, p: Uuid, items: &[(Uuid, MemoryDraft)]) -> Vec<(Memory, WriteOutcome)> {
        self.s.put_memories(p, &actor(), items).await.expect("put")
    }
}

fn outcomes(written: &[(Memory, WriteOutcome)]) -> Vec<WriteOutcome> {
    written.iter().map(|(_, outcome)| *outcome).collect()
}

async fn put_memories_inserts_with_the_callers_ids_and_a_second_put_changes_nothing(b: Backend) {
    let t = Ctx::new(b).await;
    let items = vec![
        (Uuid::new_v4(), draft("one", &["a"])),
        (Uuid::new_v4(), draft("two", &[])),
    ];
    let written = t.put(t.p, &items).await;
    assert_eq!(outcomes(&written), [Created, Created], "{b:?}");
    for ((id, want), (memory, _)) in items.iter().zip(&written) {
        assert_eq!((memory.id, fields(memory)), (*id, want.clone()), "{b:?}");
        assert_eq!(
            t.get(t.p, *id).await.as_ref(),
            Some(memory),
            "{b:?}: read back"
        );
    }
    let again = t.put(t.p, &items).await;
    assert_eq!(outcomes(&again), [Unchanged, Unchanged], "{b:?}: again");
    assert_eq!(again[0].0, written[0].0, "{b:?}: untouched");
    let audit = t.s.list_audit(t.p, 20).await.expect("audit");
    let creates = audit.iter().filter(|e| e.action == "memory.create").count();
    assert_eq!(creates, 2, "{b:?}: one audit entry per insert");
    let same = (Uuid::new_v4(), draft("one", &["a"]));
    let existing = t.put(t.p, &[same]).await;
    assert_eq!(
        (existing[0].0.id, existing[0].1),
        (items[0].0, Unchanged),
        "{b:?}"
    );
}

async fn a_changed_item_is_updated_in_place_with_a_revision_and_an_audit_entry(b: Backend) {
    let t = Ctx::new(b).await;
    let (id, keep) = (Uuid::new_v4(), Uuid::new_v4());
    let first = t
        .put(t.p, &[(id, draft("v1", &[])), (keep, draft("k", &[]))])
        .await;
    let v2 = with(json!({ "rule": "v2" }), Rule, "v2", &["new"]);
    let second = t
        .put(t.p, &[(id, v2.clone()), (keep, draft("k", &[]))])
        .await;
    assert_eq!(outcomes(&second), [Updated, Unchanged], "{b:?}");
    let m = &second[0].0;
    assert_eq!((m.id, fields(m)), (id, v2), "{b:?}: in place");
    assert_eq!(
        m.created_at, first[0].0.created_at,
        "{b:?}: created_at kept"
    );
    let history = t.s.memory_history(t.p, id).await.expect("history");
    let old: Vec<_> = history
        .iter()
        .map(|r| (r.revision, r.memory.title.as_str()))
        .collect();
    assert_eq!(old, [(1, "v1")], "{b:?}: the replaced version");
    let audit = t.s.list_audit(t.p, 20).await.expect("audit");
    let updates: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "memory.update")
        .collect();
    assert_eq!(updates.len(), 1, "{b:?}: one update entry");
    assert_eq!(updates[0].target_id, Some(id.to_string()), "{b:?}");
    let clash =
        t.s.put_memories(t.p, &actor(), &[(id, draft("k", &[]))])
            .await;
    assert_eq!(outcome(&clash), "conflict", "{b:?}: another's content");
}

async fn a_deleted_item_put_again_comes_back_under_its_id(b: Backend) {
    let t = Ctx::new(b).await;
    let id = Uuid::new_v4();
    t.put(t.p, &[(id, draft("was", &[]))]).await;
    t.delete(t.p, id).await.expect("delete");
    let back = t.put(t.p, &[(id, draft("is", &[]))]).await;
    assert_eq!((back[0].0.id, back[0].1), (id, Created), "{b:?}");
    assert_eq!(
        t.get(t.p, id).await.map(|m| m.title),
        Some("is".into()),
        "{b:?}"
    );
    let deleted = t.s.list_deleted(t.p, 9).await.expect("deleted");
    assert!(deleted.is_empty(), "{b:?}: no longer deleted");
    let history = t.s.memory_history(t.p, id).await.expect("history");
    assert_eq!(history.len(), 1, "{b:?}: the deleted version kept");
}

async fn when_one_item_fails_no_item_of_the_batch_is_written(b: Backend) {
    let t = Ctx::new(b).await;
    let taken = t.create(t.p, &draft("taken", &[])).await;
    let mine = t.create(t.p, &draft("mine", &[])).await;
    let fresh = Uuid::new_v4();
    let items = [
        (fresh, draft("fresh", &[])),
        (mine.id, draft("taken", &["x"])),
    ];
    let failed = t.s.put_memories(t.p, &actor(), &items).await;
    assert_eq!(outcome(&failed), "conflict", "{b:?}");
    assert_eq!(t.get(t.p, fresh).await, None, "{b:?}: rolled back");
    assert_eq!(t.get(t.p, mine.id).await, Some(mine), "{b:?}: unchanged");
    assert_eq!(t.ids(t.p, &filter(9)).await.len(), 2, "{b:?}: {taken:?}");
}

async fn an_id_taken_in_another_project_is_a_conflict_and_reveals_nothing(b: Backend) {
    let t = Ctx::new(b).await;
    let other = t.project("other").await;
    let id = Uuid::new_v4();
    t.put(other, &[(id, draft("theirs", &[]))]).await;
    let mine =
        t.s.put_memories(t.p, &actor(), &[(id, draft("mine", &[]))])
            .await;
    assert_eq!(outcome(&mine), "conflict", "{b:?}");
    assert_eq!(t.get(t.p, id).await, None, "{b:?}: not readable here");
    let theirs = t.get(other, id).await.map(|m| m.title);
    assert_eq!(theirs, Some("theirs".into()), "{b:?}: untouched");
}
