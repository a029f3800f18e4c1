//! Store conformance: every check runs through the `Store` trait on every backend this run can
//! reach (SQLite always, Postgres when `TEST_DATABASE_URL` is set), plus the Postgres-only proof
//! that row-level security confines a scoped transaction to its project.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use codifier::auth::Role;
use codifier::knowledge::MemoryType::{self, *};
use codifier::store::WriteOutcome::{self, *};
use codifier::store::postgres::PgStore;
use codifier::store::{Actor, Cursor, Memory, MemoryDraft, MemoryFilter, NewApiKey};
use codifier::store::{Store, StoreError, StoreResult};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{Backend, TestDatabase, backends, fresh_store};

fn actor() -> Actor {
    let (label, tool) = ("key:cdf_tester".into(), "remember".into());
    Actor { label, tool }
}

/// A learning whose content names its title.
fn draft(title: &str, tags: &[&str]) -> MemoryDraft {
    MemoryDraft {
        memory_type: Learning,
        title: title.into(),
        content: json!({ "note": format!("body of {title}") }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        source_role: None,
    }
}

fn with(content: Value, kind: MemoryType, title: &str, tags: &[&str]) -> MemoryDraft {
    let mut draft = draft(title, tags);
    (draft.content, draft.memory_type) = (content, kind);
    draft
}

fn filter(limit: u32) -> MemoryFilter {
    MemoryFilter {
        limit,
        ..Default::default()
    }
}

/// What a call did, in a word: `ok`, `not found`, `conflict`, or the error itself.
fn outcome<T: Debug>(result: &StoreResult<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(StoreError::NotFound(_)) => "not found".into(),
        Err(StoreError::Conflict(_)) => "conflict".into(),
        Err(other) => other.to_string(),
    }
}

/// The writable fields of a stored memory, to compare with what was written.
fn fields(m: &Memory) -> MemoryDraft {
    let m = m.clone();
    MemoryDraft {
        memory_type: m.memory_type,
        title: m.title,
        content: m.content,
        category: m.category,
        description: m.description,
        confidence: m.confidence,
        tags: m.tags,
        source_role: m.source_role,
    }
}

type Written = StoreResult<(Memory, WriteOutcome)>;

async fn pause() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// A fresh store on one backend with one project `p` in it.
struct Ctx {
    s: Arc<dyn Store>,
    b: Backend,
    p: Uuid,
    db: TestDatabase,
}

impl Ctx {
    async fn new(b: Backend) -> Self {
        let (s, db) = fresh_store(b).await;
        let p = s.create_project(&actor(), "p", None).await.expect("p").id;
        Self { s, b, p, db }
    }

    async fn project(&self, name: &str) -> Uuid {
        let project = self.s.create_project(&actor(), name, None).await;
        project.expect("create project").id
    }

    async fn write(&self, p: Uuid, draft: &MemoryDraft) -> (Memory, WriteOutcome) {
        let written = self.s.create_memory(p, &actor(), draft).await;
        written.expect("create memory")
    }

    async fn create(&self, p: Uuid, draft: &MemoryDraft) -> Memory {
        let (memory, outcome) = self.write(p, draft).await;
        assert_eq!(outcome, Created, "{:?}: {}", self.b, draft.title);
        memory
    }

    async fn update(&self, p: Uuid, id: Uuid, d: &MemoryDraft) -> Written {
        self.s.update_memory(p, &actor(), id, d).await
    }

    async fn delete(&self, p: Uuid, id: Uuid) -> StoreResult<Memory> {
        self.s.delete_memory(p, &actor(), id).await
    }

    async fn get(&self, p: Uuid, id: Uuid) -> Option<Memory> {
        self.s.get_memory(p, id).await.expect("get memory")
    }

    async fn fetch(&self, p: Uuid, filter: &MemoryFilter) -> Vec<Memory> {
        let page = self.s.fetch_memories(p, filter).await;
        page.expect("fetch memories").memories
    }

    async fn ids(&self, p: Uuid, filter: &MemoryFilter) -> Vec<Uuid> {
        let memories = self.fetch(p, filter).await;
        memories.into_iter().map(|m| m.id).collect()
    }

    /// The titles a filter returns, sorted.
    async fn titles(&self, p: Uuid, filter: &MemoryFilter) -> Vec<String> {
        let memories = self.fetch(p, filter).await;
        let mut titles: Vec<_> = memories.into_iter().map(|m| m.title).collect();
        titles.sort();
        titles
    }
}

#[tokio::test]
async fn projects_are_found_by_id_and_by_name_listed_by_name_and_unique_by_name() {
    for b in backends() {
        let (t, a) = (Ctx::new(b).await, actor());
        let zebra = t.s.create_project(&a, "zebra", Some("acme")).await;
        let zebra = zebra.expect("zebra");
        assert_eq!(zebra.org.as_deref(), Some("acme"), "{b:?}: org");
        let by_id = t.s.find_project(&zebra.id.to_string()).await;
        assert_eq!(by_id.expect("find"), Some(zebra), "{b:?}: by id");
        let by_name = t.s.find_project("p").await.expect("find");
        assert_eq!(by_name.map(|p| p.id), Some(t.p), "{b:?}: by name");
        let unknown = t.s.find_project("pear").await.expect("find");
        assert_eq!(unknown, None, "{b:?}: unknown name");
        let unknown = t.s.find_project(&Uuid::new_v4().to_string()).await;
        assert_eq!(unknown.expect("find"), None, "{b:?}: unknown id");
        t.project("apple").await;
        let again = t.s.create_project(&a, "apple", Some("other")).await;
        assert_eq!(outcome(&again), "conflict", "{b:?}: same name");
        let projects = t.s.list_projects().await.expect("list");
        let names: Vec<_> = projects.into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["apple", "p", "zebra"], "{b:?}: by name");
    }
}

#[tokio::test]
async fn a_created_memory_reads_back_with_every_field() {
    for b in backends() {
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
}

#[tokio::test]
async fn a_memory_written_twice_with_the_same_content_is_stored_once() {
    for b in backends() {
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
}

#[tokio::test]
async fn an_update_changes_the_fields_and_moves_updated_at_but_not_created_at() {
    for b in backends() {
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
}

#[tokio::test]
async fn an_update_to_the_content_of_another_memory_is_a_conflict_and_changes_nothing() {
    for b in backends() {
        let t = Ctx::new(b).await;
        t.create(t.p, &draft("taken", &[])).await;
        let mine = t.create(t.p, &draft("mine", &[])).await;
        let clash = t.update(t.p, mine.id, &draft("taken", &["x"])).await;
        assert_eq!(outcome(&clash), "conflict", "{b:?}: same content");
        assert_eq!(t.get(t.p, mine.id).await, Some(mine), "{b:?}: kept");
        let unknown = t.update(t.p, Uuid::new_v4(), &draft("z", &[])).await;
        assert_eq!(outcome(&unknown), "not found", "{b:?}: unknown id");
    }
}

#[tokio::test]
async fn a_deleted_memory_is_hidden_and_its_content_can_be_stored_again() {
    for b in backends() {
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
}

#[tokio::test]
async fn fetch_filters_by_type_by_every_tag_and_by_text_in_any_case() {
    for b in backends() {
        let t = Ctx::new(b).await;
        let (tabs, retry, terms) = ("Use Tabs", "Retry policy", "Glossary ÉCOLE");
        let text = |text: &str| json!({ "text": text });
        let memories = [
            with(text("Tabs always"), Rule, tabs, &["a", "b"]),
            with(text("Back off SLOWLY"), Learning, retry, &["a", "c"]),
            with(json!(["Widget"]), Document, terms, &[]),
        ];
        for memory in &memories {
            t.create(t.p, memory).await;
        }
        let by = |kind, tags: &[&str], query: Option<&str>| {
            let mut by = filter(9);
            by.memory_type = kind;
            by.tags = tags.iter().map(|tag| tag.to_string()).collect();
            by.query = query.map(str::to_owned);
            by
        };
        let (rule, learning) = (Some(Rule), Some(Learning));
        let cases: [(MemoryFilter, &[&str]); 15] = [
            (by(rule, &[], None), &[tabs]),
            (by(Some(ApiContract), &[], None), &[]),
            (by(None, &[], None), &[terms, retry, tabs]),
            (by(None, &["a"], None), &[retry, tabs]),
            (by(None, &["a", "b"], None), &[tabs]),
            (by(None, &["a", "c"], None), &[retry]),
            (by(None, &["b", "c"], None), &[]),
            (by(None, &["A"], None), &[]),
            (by(None, &[], Some("use tABS")), &[tabs]),
            (by(None, &[], Some("slowly")), &[retry]),
            (by(None, &[], Some("WIDGET")), &[terms]),
            (by(None, &[], Some("ÉCOLE")), &[terms]),
            (by(None, &[], Some("nowhere")), &[]),
            (by(learning, &["a"], Some("back off")), &[retry]),
            (by(rule, &["a"], Some("retry")), &[]),
        ];
        for (filter, want) in cases {
            let found = t.titles(t.p, &filter).await;
            assert_eq!(found, want, "{b:?}: {filter:?}");
        }
    }
}

#[tokio::test]
async fn full_text_candidates_follow_updates_deletes_and_restores_within_the_project() {
    for b in backends() {
        let t = Ctx::new(b).await;
        let other = t.project("other").await;
        let text = |text: &str| json!({ "text": text });
        let zebra = with(
            text("zebra crossing near the school"),
            Rule,
            "Crossing",
            &["x"],
        );
        let id = t.create(t.p, &zebra).await.id;
        let note = with(text("zebra sightings"), Document, "Zoo notes", &[]);
        let doc = t.create(t.p, &note).await.id;
        t.create(other, &with(text("zebra elsewhere"), Rule, "Other", &[]))
            .await;
        let found = |words: &'static [&'static str], all: bool, kind: Option<MemoryType>| {
            let (s, p) = (t.s.clone(), t.p);
            async move {
                let mut by = filter(10);
                by.memory_type = kind;
                let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
                let found = s.text_candidates(p, &by, &words, all, 10).await;
                let mut ids: Vec<Uuid> = found
                    .expect("text candidates")
                    .iter()
                    .map(|c| c.id)
                    .collect();
                ids.sort();
                ids
            }
        };
        let mut both = vec![id, doc];
        both.sort();
        assert_eq!(
            found(&["zebra"], false, None).await,
            both,
            "{b:?}: own project only"
        );
        assert_eq!(
            found(&["zebra"], false, Some(Document)).await,
            [doc],
            "{b:?}: by type"
        );
        assert_eq!(
            found(&["zebra", "school"], true, None).await,
            [id],
            "{b:?}: every word"
        );
        assert_eq!(
            found(&["zebra", "school"], false, None).await,
            both,
            "{b:?}: any word"
        );
        let giraffe = with(text("giraffe crossing"), Rule, "Crossing", &["x"]);
        t.update(t.p, id, &giraffe).await.expect("update");
        let none: [Uuid; 0] = [];
        assert_eq!(
            found(&["school"], false, None).await,
            none,
            "{b:?}: old words gone"
        );
        assert_eq!(
            found(&["giraffe"], false, None).await,
            [id],
            "{b:?}: new words"
        );
        t.delete(t.p, id).await.expect("delete");
        assert_eq!(
            found(&["giraffe"], false, None).await,
            [] as [Uuid; 0],
            "{b:?}: deleted"
        );
        t.s.restore_deleted(t.p, &actor(), id)
            .await
            .expect("restore");
        assert_eq!(
            found(&["giraffe"], false, None).await,
            [id],
            "{b:?}: restored"
        );
    }
}

#[tokio::test]
async fn pages_walk_every_memory_newest_first_exactly_once() {
    for b in backends() {
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
}

#[tokio::test]
async fn a_project_never_reads_or_changes_another_projects_memories() {
    for b in backends() {
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
}

#[tokio::test]
async fn every_memory_write_leaves_an_audit_entry_in_its_own_project() {
    for b in backends() {
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
        assert_eq!(update["before"]["title"], "before", "{b:?}: detail");
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
}

#[tokio::test]
async fn api_keys_are_found_by_prefix_listed_revoked_and_touched() {
    for b in backends() {
        let (t, a) = (&Ctx::new(b).await, actor());
        let other = t.project("b").await;
        let new = |project_id, prefix: &str, role| NewApiKey {
            project_id,
            prefix: prefix.into(),
            hash: format!("$argon2id$hash-of-{prefix}"),
            role,
            label: Some(format!("label {prefix}")),
        };
        let key = |project, prefix: &str, role| {
            let key = new(project, prefix, role);
            async move { t.s.create_api_key(&actor(), &key).await.expect("key") }
        };
        let one = key(t.p, "cdf_one", Role::Admin).await;
        let two = key(t.p, "cdf_two", Role::Read).await;
        let oth = key(other, "cdf_oth", Role::Write).await;
        let times = (one.last_used_at, one.revoked_at);
        assert_eq!(times, (None, None), "{b:?}: a new key");
        let find = |prefix| async move {
            let found = t.s.find_api_key(prefix).await.expect("find");
            found.expect("stored")
        };
        let found = find("cdf_one").await;
        let hash = "$argon2id$hash-of-cdf_one";
        assert_eq!((found.hash.as_str(), &found.key), (hash, &one), "{b:?}");
        let none = t.s.find_api_key("cdf_none").await.expect("find");
        assert!(none.is_none(), "{b:?}: unknown prefix");
        let prefixes = |project| async move {
            let keys = t.s.list_api_keys(project).await.expect("list");
            let mut prefixes: Vec<_> = keys.into_iter().map(|k| k.prefix).collect();
            prefixes.sort();
            prefixes
        };
        let of_a = prefixes(Some(t.p)).await;
        assert_eq!(of_a, ["cdf_one", "cdf_two"], "{b:?}: A's keys");
        let every = prefixes(None).await;
        assert_eq!(every, ["cdf_one", "cdf_oth", "cdf_two"], "{b:?}");
        let revoked = t.s.revoke_api_key(&a, "cdf_one").await.expect("revoke");
        assert!(revoked.revoked_at.is_some(), "{b:?}: by prefix");
        let twice = t.s.revoke_api_key(&a, "cdf_one").await.expect("again");
        let at = revoked.revoked_at;
        assert_eq!(twice.revoked_at, at, "{b:?}: revoking twice is fine");
        let by_id = t.s.revoke_api_key(&a, &two.id.to_string()).await;
        let by_id = by_id.expect("revoke by id");
        assert_eq!(by_id.id, two.id, "{b:?}: by id");
        let stored = find("cdf_two").await.key.revoked_at;
        assert!(stored.is_some(), "{b:?}: the revocation is stored");
        for unknown in ["cdf_none".into(), Uuid::new_v4().to_string()] {
            let result = t.s.revoke_api_key(&a, &unknown).await;
            assert_eq!(outcome(&result), "not found", "{b:?}: {unknown}");
        }
        t.s.touch_api_key(oth.id).await.expect("touch");
        let touched = find("cdf_oth").await.key;
        assert!(touched.last_used_at.is_some(), "{b:?}: touched");
        assert!(touched.revoked_at.is_none(), "{b:?}: not revoked");
        let upper = oth.id.to_string().to_uppercase();
        let upper = t.s.revoke_api_key(&a, &upper).await;
        assert_eq!(outcome(&upper), "ok", "{b:?}: an upper-case id");
    }
}

#[tokio::test]
async fn an_mcp_session_keeps_its_first_owner_its_params_and_its_project() {
    for b in backends() {
        let t = Ctx::new(b).await;
        let s = &*t.s;
        let load = |id| async move { s.load_mcp_session(id).await.expect("load") };
        assert!(load("s1").await.is_none(), "{b:?}: unknown");
        s.claim_mcp_session("s1", "one").await.expect("claim");
        s.claim_mcp_session("s1", "two").await.expect("claim");
        let params = json!({ "protocolVersion": "2025-06-18" });
        s.save_mcp_session_params("s1", &params).await.unwrap();
        s.set_mcp_session_project("s1", t.p).await.expect("set");
        let session = load("s1").await.expect("stored");
        let owner = session.owner.as_deref();
        assert_eq!(owner, Some("one"), "{b:?}: the first owner stays");
        let params = Some(params);
        assert_eq!(session.initialize_params, params, "{b:?}: params");
        let project = session.active_project_id;
        assert_eq!(project, Some(t.p), "{b:?}: active project");
        s.save_mcp_session_params("s2", &json!({})).await.unwrap();
        let s2 = load("s2").await.expect("stored");
        let unset = (s2.owner, s2.active_project_id);
        assert_eq!(unset, (None, None), "{b:?}: nothing else set");
        s.delete_mcp_session("s1").await.expect("delete");
        assert!(load("s1").await.is_none(), "{b:?}: deleted");
        assert!(load("s2").await.is_some(), "{b:?}: others stay");
    }
}

const MEMORIES: &str = "SELECT count(*) FROM memories";
const MEMORIES_OF: &str = "SELECT count(*) FROM memories WHERE project_id = $1";
const AUDIT: &str = "SELECT count(*) FROM audit_log";
const TERMS_OF: &str = "SELECT count(*) FROM memory_terms WHERE project_id = $1";
const TAGS_OF: &str = "SELECT count(*) FROM memory_tags WHERE project_id = $1";
const AUDIT_OF: &str = "SELECT count(*) FROM audit_log WHERE project_id = $1";

/// A count, with `project` bound to `$1` when given.
async fn count(db: &mut PgConnection, sql: &str, project: Option<Uuid>) -> i64 {
    let query = sqlx::query_scalar(sql);
    let query = if let Some(p) = project {
        query.bind(p)
    } else {
        query
    };
    query.fetch_one(db).await.expect(sql)
}

async fn text(db: &mut PgConnection, sql: &str) -> String {
    sqlx::query_scalar(sql).fetch_one(db).await.expect(sql)
}

#[tokio::test]
async fn postgres_row_level_security_confines_a_scoped_transaction_to_its_project() {
    let postgres = backends().into_iter().filter(|b| *b == Backend::Postgres);
    for backend in postgres {
        let t = Ctx::new(backend).await;
        let pg = PgStore::connect(&t.db.url).await.expect("connect");
        pg.migrate().await.expect("migrate");
        let (a, b) = (t.p, t.project("b").await);
        for (p, n) in [(a, 0), (a, 1), (b, 0), (b, 1), (b, 2)] {
            t.create(p, &draft(&format!("m{n}"), &["shared"])).await;
        }
        let admin = PgConnection::connect(&t.db.url).await;
        let admin = &mut admin.expect("connect");
        let su = text(admin, "SHOW is_superuser").await;
        assert_eq!(su, "on", "TEST_DATABASE_URL names a superuser");
        let every = count(admin, MEMORIES, None).await;
        assert_eq!(every, 5, "outside a scope every row is visible");
        let (of_a, audit) = (
            count(admin, AUDIT_OF, Some(a)).await,
            count(admin, AUDIT, None).await,
        );
        assert!(of_a >= 3 && of_a < audit, "A and B both have entries");

        let mut tx = pg.scoped(a).await.expect("scope A");
        let user = text(&mut tx, "SELECT current_user::text").await;
        assert_eq!(user, "codifier_tenant", "the scope runs as the tenant role");
        let rows = count(&mut tx, MEMORIES, None).await;
        assert_eq!(rows, 2, "no filter, only A's memories");
        let of_b = count(&mut tx, MEMORIES_OF, Some(b)).await;
        assert_eq!(of_b, 0, "B's memories are invisible in A");
        let terms_of_b = count(&mut tx, TERMS_OF, Some(b)).await;
        assert_eq!(terms_of_b, 0, "B's search terms are invisible in A");
        assert!(
            count(admin, TERMS_OF, Some(b)).await > 0,
            "B has search terms"
        );
        let tags_of_b = count(&mut tx, TAGS_OF, Some(b)).await;
        assert_eq!(tags_of_b, 0, "B's tags are invisible in A");
        assert_eq!(
            count(admin, TAGS_OF, Some(b)).await,
            3,
            "B's tags are indexed"
        );
        let audit = count(&mut tx, AUDIT, None).await;
        assert_eq!(audit, of_a, "no filter, only A's audit entries");
        let hijack = "UPDATE memories SET title = 'x' WHERE project_id = $1";
        let hijack = sqlx::query(hijack).bind(b).execute(&mut *tx).await;
        let hijacked = hijack.expect("update").rows_affected();
        assert_eq!(hijacked, 0, "B's rows cannot be updated from A");
        let insert = |project: Uuid| {
            let sql = "INSERT INTO memories (id, project_id, memory_type, title, content, \
                content_hash, created_at, updated_at) \
                VALUES ($1, $2, 'rule', 'smuggled', '{}', $3, now(), now())";
            let id = Uuid::new_v4();
            sqlx::query(sql).bind(id).bind(project).bind(id.to_string())
        };
        insert(a).execute(&mut *tx).await.expect("A's own row");
        let smuggled = insert(b).execute(&mut *tx).await;
        let smuggled = smuggled.expect_err("RLS WITH CHECK refuses B's row");
        let code = smuggled.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "RLS refused: {smuggled}");
        drop(tx);

        let mut tx = pg.scoped(b).await.expect("scope B");
        let titles = "SELECT string_agg(title, ',' ORDER BY title) FROM memories";
        let titles = text(&mut tx, titles).await;
        assert_eq!(titles, "m0,m1,m2", "B's rows, untouched");
        drop(tx);

        let role = sqlx::query("SET ROLE codifier_tenant")
            .execute(&mut *admin)
            .await;
        role.expect("set role");
        for sql in [MEMORIES, AUDIT] {
            let rows = count(admin, sql, None).await;
            assert_eq!(rows, 0, "the tenant role, no project: {sql}");
        }
    }
}

#[tokio::test]
async fn a_tag_filter_follows_tag_changes_deletes_and_restores() {
    for b in backends() {
        let t = Ctx::new(b).await;
        let other = t.project("other").await;
        let by_tags = |tags: &[&str]| {
            let mut by = filter(10);
            by.tags = tags.iter().map(|tag| tag.to_string()).collect();
            by
        };
        let first = draft("first", &["rare", "common"]);
        let id = t.create(t.p, &first).await.id;
        t.create(t.p, &draft("second", &["common"])).await;
        t.create(other, &draft("elsewhere", &["rare"])).await;
        assert_eq!(t.ids(t.p, &by_tags(&["rare"])).await, [id], "{b:?}");
        let both = by_tags(&["common", "rare", "rare"]);
        assert_eq!(
            t.ids(t.p, &both).await,
            [id],
            "{b:?}: every tag, repeats ignored"
        );
        assert_eq!(t.ids(t.p, &by_tags(&["common"])).await.len(), 2, "{b:?}");

        t.update(t.p, id, &draft("first", &["common"]))
            .await
            .expect("update");
        assert!(
            t.ids(t.p, &by_tags(&["rare"])).await.is_empty(),
            "{b:?}: tag removed"
        );
        t.update(t.p, id, &draft("first", &["rare"]))
            .await
            .expect("update");
        assert_eq!(
            t.ids(t.p, &by_tags(&["rare"])).await,
            [id],
            "{b:?}: tag back"
        );
        t.delete(t.p, id).await.expect("delete");
        assert!(
            t.ids(t.p, &by_tags(&["rare"])).await.is_empty(),
            "{b:?}: deleted"
        );
        t.s.restore_deleted(t.p, &actor(), id)
            .await
            .expect("restore");
        assert_eq!(
            t.ids(t.p, &by_tags(&["rare"])).await,
            [id],
            "{b:?}: restored"
        );
    }
}
