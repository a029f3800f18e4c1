//! What the store cases share: an actor, memory drafts and filters, and [`Ctx`], a fresh store
//! on one backend with one project in it.

use std::fmt::Debug;
use std::sync::Arc;

use codifier::domain::MemoryType::{self, Learning};
use codifier::store::WriteOutcome::{self, Created};
use codifier::store::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestDatabase, fresh_store};

pub(super) fn actor() -> Actor {
    let (label, tool) = ("key:cdf_tester".into(), "remember".into());
    Actor { label, tool }
}

/// A learning whose content names its title.
pub(super) fn draft(title: &str, tags: &[&str]) -> MemoryDraft {
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

pub(super) fn with(content: Value, kind: MemoryType, title: &str, tags: &[&str]) -> MemoryDraft {
    let mut draft = draft(title, tags);
    (draft.content, draft.memory_type) = (content, kind);
    draft
}

pub(super) fn filter(limit: u32) -> MemoryFilter {
    MemoryFilter {
        limit,
        ..Default::default()
    }
}

/// What a call did, in a word: `ok`, `not found`, `conflict`, or the error itself.
pub(super) fn outcome<T: Debug>(result: &StoreResult<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(StoreError::NotFound(_)) => "not found".into(),
        Err(StoreError::Conflict(_)) => "conflict".into(),
        Err(other) => other.to_string(),
    }
}

/// The writable fields of a stored memory, to compare with what was written.
pub(super) fn fields(m: &Memory) -> MemoryDraft {
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

pub(super) type Written = StoreResult<(Memory, WriteOutcome)>;

pub(super) async fn pause() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// A fresh store on one backend with one project `p` in it.
pub(super) struct Ctx {
    pub(super) s: Arc<dyn Store>,
    pub(super) b: Backend,
    pub(super) p: Uuid,
    pub(super) db: TestDatabase,
}

impl Ctx {
    pub(super) async fn new(b: Backend) -> Self {
        let (s, db) = fresh_store(b).await;
        let p = s.create_project(&actor(), "p", None).await.expect("p").id;
        Self { s, b, p, db }
    }

    pub(super) async fn project(&self, name: &str) -> Uuid {
        let project = self.s.create_project(&actor(), name, None).await;
        project.expect("create project").id
    }

    pub(super) async fn write(&self, p: Uuid, draft: &MemoryDraft) -> (Memory, WriteOutcome) {
        let written = self.s.create_memory(p, &actor(), draft).await;
        written.expect("create memory")
    }

    pub(super) async fn create(&self, p: Uuid, draft: &MemoryDraft) -> Memory {
        let (memory, outcome) = self.write(p, draft).await;
        assert_eq!(outcome, Created, "{:?}: {}", self.b, draft.title);
        memory
    }

    pub(super) async fn update(&self, p: Uuid, id: Uuid, d: &MemoryDraft) -> Written {
        self.s.update_memory(p, &actor(), id, d).await
    }

    pub(super) async fn delete(&self, p: Uuid, id: Uuid) -> StoreResult<Memory> {
        self.s.delete_memory(p, &actor(), id).await
    }

    pub(super) async fn get(&self, p: Uuid, id: Uuid) -> Option<Memory> {
        self.s.get_memory(p, id).await.expect("get memory")
    }

    pub(super) async fn fetch(&self, p: Uuid, filter: &MemoryFilter) -> Vec<Memory> {
        let page = self.s.fetch_memories(p, filter).await;
        page.expect("fetch memories").memories
    }

    pub(super) async fn ids(&self, p: Uuid, filter: &MemoryFilter) -> Vec<Uuid> {
        let memories = self.fetch(p, filter).await;
        memories.into_iter().map(|m| m.id).collect()
    }

    /// The titles a filter returns, sorted.
    pub(super) async fn titles(&self, p: Uuid, filter: &MemoryFilter) -> Vec<String> {
        let memories = self.fetch(p, filter).await;
        let mut titles: Vec<_> = memories.into_iter().map(|m| m.title).collect();
        titles.sort();
        titles
    }
}
