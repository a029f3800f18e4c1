//! [`LibraryIndex`]: the shared library as the agent tools read it, kept in memory — each
//! skill's name, description and where it belongs (stack, tags, triggers), and each sharp edge
//! without its long `why` and `solution` (read from the store for the few a call shows).
//!
//! [`LibraryCache`] is the server's one copy of the library, for the agent tools and for
//! `validate_code` alike, built once per import: each call asks the store for the library's
//! newest audit entry (one short query; every import that changes something writes one) and
//! rebuilds only when that moved, so an import run by `codifier skills import` in another
//! process is seen at the next call. Only the library, which every key may read, is kept here; a project's own
//! records are always read from the store within that project's scope.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use super::checks::CheckSet;
use super::pattern::Pattern;
use super::stack::{self, Membership};
use crate::domain::guardrail::{LIBRARY_PROJECT, SharpEdge, Skill};
use crate::domain::{Cursor, Memory, MemoryFilter, MemoryType};
use crate::store::{Store, StoreResult};

/// A library skill, without its patterns, handoffs and identity.
#[derive(Debug, Clone)]
pub struct SkillEntry {
    pub memory_id: Uuid,
    pub id: String,
    pub name: String,
    pub description: String,
    pub stack: Vec<String>,
    pub tags: Vec<String>,
    pub triggers: Vec<String>,
}

/// A library sharp edge: its record without `why` and `solution` (empty here), under the id
/// of its skill.
#[derive(Debug, Clone)]
pub struct EdgeEntry {
    pub memory_id: Uuid,
    pub skill: String,
    pub edge: SharpEdge,
}

/// The library's skills and sharp edges.
#[derive(Debug, Default)]
pub struct LibraryIndex {
    pub skills: Vec<SkillEntry>,
    pub edges: Vec<EdgeEntry>,
    /// Position in `skills` of each skill id.
    by_id: HashMap<String, usize>,
    /// Each edge's compiled detection pattern, once a call needed it.
    patterns: Vec<OnceLock<Option<Pattern>>>,
}

impl LibraryIndex {
    fn new(skills: Vec<SkillEntry>, edges: Vec<EdgeEntry>) -> Self {
        let by_id = skills
            .iter()
            .enumerate()
            .map(|(index, skill)| (skill.id.clone(), index))
            .collect();
        let patterns = edges.iter().map(|_| OnceLock::new()).collect();
        Self {
            skills,
            edges,
            by_id,
            patterns,
        }
    }

    pub fn skill(&self, id: &str) -> Option<&SkillEntry> {
        self.by_id.get(id).map(|index| &self.skills[*index])
    }

    /// How strongly a skill belongs to any of the (normalized) stack `names`.
    pub fn membership(&self, skill: &SkillEntry, names: &[String]) -> Option<Membership> {
        stack::membership(names, &skill.stack, &skill.tags, &skill.triggers)
    }

    /// The skills of the stack `names`, each with how strongly it belongs.
    pub fn skills_in(&self, names: &[String]) -> Vec<(&SkillEntry, Membership)> {
        self.skills
            .iter()
            .filter_map(|skill| Some((skill, self.membership(skill, names)?)))
            .collect()
    }

    /// The sharp edges (by position in `edges`) of the skills of the stack `names`, each with
    /// its skill's membership.
    pub fn edges_in(&self, names: &[String]) -> Vec<(usize, Membership)> {
        let skills: HashMap<&str, Membership> = self
            .skills_in(names)
            .into_iter()
            .map(|(skill, membership)| (skill.id.as_str(), membership))
            .collect();
        self.edges
            .iter()
            .enumerate()
            .filter_map(|(at, edge)| Some((at, *skills.get(edge.skill.as_str())?)))
            .collect()
    }

    /// The compiled `detection_pattern` of the edge at `at` (compiled on first use and kept);
    /// `None` when it has none or it does not compile.
    pub fn edge_pattern(&self, at: usize) -> Option<&Pattern> {
        let edge = self.edges.get(at)?;
        self.patterns[at]
            .get_or_init(|| {
                let source = edge.edge.detection_pattern.as_deref()?;
                Pattern::compile(source).ok()
            })
            .as_ref()
    }
}

/// The library as one import left it: the index and the compiled checks, each read on first use.
#[derive(Default)]
struct Version {
    index: tokio::sync::OnceCell<Arc<LibraryIndex>>,
    checks: tokio::sync::OnceCell<Arc<CheckSet>>,
}

/// The one in-memory copy of the library for every tool of a server — [`LibraryIndex`] for the
/// agent tools, the compiled [`CheckSet`] for `validate_code` — under the id of the library's
/// newest audit entry, and read again when that moved.
#[derive(Default)]
pub struct LibraryCache {
    /// The newest library audit entry when the version was made, and the version.
    built: std::sync::Mutex<Option<(Option<i64>, Arc<Version>)>>,
}

/// Memories read per page while building the index.
const PAGE: u32 = 500;

/// The id of `project`'s newest audit entry: every memory write, import, restore or delete
/// writes one, so it moves whenever the project's memories change.
pub async fn newest_audit(store: &dyn Store, project: Uuid) -> StoreResult<Option<i64>> {
    Ok(store
        .list_audit(project, 1)
        .await?
        .first()
        .map(|entry| entry.id))
}

impl LibraryCache {
    /// The library as it is now (one short query when nothing changed).
    async fn version(&self, store: &dyn Store) -> StoreResult<Arc<Version>> {
        let newest = newest_audit(store, LIBRARY_PROJECT).await?;
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, version)) = built.as_ref()
            && *at == newest
        {
            return Ok(version.clone());
        }
        let version = Arc::new(Version::default());
        *built = Some((newest, version.clone()));
        Ok(version)
    }

    /// The index of the library as it is now.
    pub async fn current(&self, store: &dyn Store) -> StoreResult<Arc<LibraryIndex>> {
        let version = self.version(store).await?;
        let index = version
            .index
            .get_or_try_init(|| async { build(store).await.map(Arc::new) })
            .await?;
        Ok(index.clone())
    }

    /// The library's runnable validations, compiled (each pattern on first use).
    pub async fn checks(&self, store: &dyn Store) -> StoreResult<Arc<CheckSet>> {
        let version = self.version(store).await?;
        let checks = version
            .checks
            .get_or_try_init(|| async { super::validate::compile(store, LIBRARY_PROJECT).await })
            .await?;
        Ok(checks.clone())
    }
}

/// Reads every library skill and sharp edge. A record that does not parse is left out (the
/// import wrote it, so it should not happen; it is logged).
async fn build(store: &dyn Store) -> StoreResult<LibraryIndex> {
    let started = std::time::Instant::now();
    let skills: Vec<SkillEntry> = every(store, MemoryType::Skill)
        .await?
        .into_iter()
        .filter_map(|memory| {
            let skill: Skill = parsed(&memory)?;
            Some(SkillEntry {
                memory_id: memory.id,
                id: skill.id,
                name: skill.name,
                description: skill.description,
                stack: skill.stack,
                tags: skill.tags,
                triggers: skill.triggers,
            })
        })
        .collect();
    let edges: Vec<EdgeEntry> = every(store, MemoryType::SharpEdge)
        .await?
        .into_iter()
        .filter_map(|memory| {
            let mut edge: SharpEdge = parsed(&memory)?;
            let skill = edge.skill.clone().or(memory.category)?;
            edge.skill = Some(skill.clone());
            edge.why = String::new();
            edge.solution = String::new();
            Some(EdgeEntry {
                memory_id: memory.id,
                skill,
                edge,
            })
        })
        .collect();
    tracing::info!(
        skills = skills.len(),
        sharp_edges = edges.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "read the skills library"
    );
    Ok(LibraryIndex::new(skills, edges))
}

/// Every live library memory of one type.
async fn every(store: &dyn Store, kind: MemoryType) -> StoreResult<Vec<Memory>> {
    let mut all = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let filter = MemoryFilter {
            memory_type: Some(kind),
            limit: PAGE,
            after,
            ..MemoryFilter::default()
        };
        let page = store.fetch_memories(LIBRARY_PROJECT, &filter).await?;
        all.extend(page.memories);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// A memory's record, or `None` (logged) when its content is not one.
pub fn parsed<T: serde::de::DeserializeOwned>(memory: &Memory) -> Option<T> {
    match serde_json::from_value(memory.content.clone()) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(memory = %memory.id, kind = %memory.memory_type, %error, "a guardrail memory does not hold its record");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::guardrails::import::{self, Options};
    use crate::store::scratch::ScratchStore;

    fn skill(dir: &Path, pattern: &str) {
        let folder = dir.join("web/forms");
        std::fs::create_dir_all(&folder).unwrap();
        let write = |name: &str, text: &str| std::fs::write(folder.join(name), text).unwrap();
        write("skill.yaml", "id: forms\nname: Forms\nstack: [react]\n");
        write(
            "sharp-edges.yaml",
            "sharp_edges:\n  - id: lost-input\n    summary: A reload loses what was typed\n    severity: high\n",
        );
        let check = format!(
            "validations:\n  - id: no-alert\n    name: No alert\n    severity: error\n    pattern: '{pattern}'\n    message: Show errors inline.\n"
        );
        write("validations.yaml", &check);
    }

    #[tokio::test]
    async fn the_index_and_the_checks_are_read_once_per_import_and_again_after_one() {
        // The library is a project of its own; the scratch store's "p" plays no part.
        let ScratchStore {
            store, actor, dir, ..
        } = ScratchStore::new().await;
        let tree = dir.path().join("pack");
        skill(&tree, "alert\\(");
        import::import(&store, &actor, &tree, Options::default())
            .await
            .unwrap();
        let cache = LibraryCache::default();
        let (index, checks) = (
            cache.current(store.as_ref()).await.unwrap(),
            cache.checks(store.as_ref()).await.unwrap(),
        );
        assert_eq!((index.skills.len(), index.edges.len()), (1, 1));
        assert_eq!(checks.checks()[0].validation.patterns, ["alert\\("]);
        let again = (
            cache.current(store.as_ref()).await.unwrap(),
            cache.checks(store.as_ref()).await.unwrap(),
        );
        assert!(
            Arc::ptr_eq(&index, &again.0) && Arc::ptr_eq(&checks, &again.1),
            "kept while nothing changed"
        );

        skill(&tree, "confirm\\(");
        import::import(&store, &actor, &tree, Options::default())
            .await
            .unwrap();
        let checks = cache.checks(store.as_ref()).await.unwrap();
        assert_eq!(
            checks.checks()[0].validation.patterns,
            ["confirm\\("],
            "the import is seen"
        );
        let index = cache.current(store.as_ref()).await.unwrap();
        assert!(
            !Arc::ptr_eq(&index, &again.0),
            "the index is read again for the same import"
        );
        let once_more = cache.current(store.as_ref()).await.unwrap();
        assert!(Arc::ptr_eq(&index, &once_more), "and kept again");
    }
}
