//! The audit log: every memory write leaves an entry, listed newest first in its own project.

use codifier::store::WriteOutcome::Unchanged;

use super::fixtures::{Ctx, actor, draft};
use crate::helpers::Backend;

store_cases!(every_memory_write_leaves_an_audit_entry_in_its_own_project);

async fn every_memory_write_leaves_an_audit_entry_in_its_own_project(b: Backend) {
    let t = Ctx::new(b).await;
    let (a, other) = (t.p, t.project("b").await);
    let id = t.create(a, &draft("before", &[])).await.id;
    let (_, same) = t.write(a, &draft("before", &[])).await;
    assert_eq!(same, Unchanged, "{b:?}: written again");
    t.update(a, id, &draft("after", &[])).await.expect("update");
    t.delete(a, id).await.expect("delete");
    let in_b = t.create(other, &draft("secret", &[])).await.id;
    let (entries, me) = (t.s.list_audit(a, 100).await, actor());
    let entries = entries.expect("audit");
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    let want = ["memory.delete", "memory.update", "memory.create"];
    assert_eq!(actions[..3], want, "{b:?}: newest first, no no-op");
    assert_eq!(actions[3..], ["project.create"], "{b:?}: the rest");
    for e in &entries[..3] {
        let who = (e.target_id.clone(), e.actor.as_str(), e.tool.clone());
        let want = (Some(id.to_string()), me.label.as_str());
        assert_eq!(who, (want.0, want.1, Some(me.tool.clone())), "{b:?}");
    }
    let update = &entries[1].detail;
    let small = (
        &update["changed"],
        &update["revision"],
        update.get("before"),
    );
    let want = (
        &serde_json::json!(["title", "content"]),
        &serde_json::json!(1),
        None,
    );
    assert_eq!(
        small, want,
        "{b:?}: the changed fields and the kept revision, not the memory"
    );
    assert_eq!(update["title"], "after", "{b:?}: detail");
    let only_a = entries.iter().all(|e| e.project_id == Some(a));
    assert!(only_a, "{b:?}: only A's entries in A");
    let two = t.s.list_audit(a, 2).await.expect("audit");
    assert_eq!(two.len(), 2, "{b:?}: limit");
    let of_b = t.s.list_audit(other, 100).await.expect("audit");
    let only_b = of_b.iter().all(|e| e.project_id == Some(other));
    assert!(only_b, "{b:?}: only B's entries in B");
    let target = Some(in_b.to_string());
    let listed = of_b.iter().any(|e| e.target_id == target);
    assert!(listed, "{b:?}: B's memory.create is in B");
}
