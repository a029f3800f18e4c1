//! The shared skills library as memories of [`LIBRARY_PROJECT`]: how a skill, sharp edge or
//! validation fills a memory's fields (the drafts the import writes), and reading it back —
//! the skills that fit a stack and a description, and the sharp edges and validations of a
//! skill or a stack — for `find_skills`, `load_context`, `watch_out` and `validate_code`.
//!
//! A skill belongs to a stack name when its `stack`, `tags` or `triggers` hold that name
//! ([`stack::membership`], the one rule every tool uses: any case and spelling, a trigger by
//! one of its words). Every library memory also carries, as tags, its skill's stack, tags and
//! triggers lowercased (at most [`MAX_TAGS`] of them), the tag `skill:<id>` of its skill, and
//! its severity's name where it has one, for `tags` filters and `validate_code`'s
//! `check_types`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::stack::{self, Membership};
use crate::domain::guardrail::{LIBRARY_PROJECT, SharpEdge, Skill, Validation};
use crate::domain::{Memory, MemoryDraft, MemoryFilter, MemoryType};
use crate::knowledge::KnowledgeBase;
use crate::knowledge::KnowledgeError;
use crate::knowledge::search::{self, SearchMode};
use crate::store::Store;

/// The most tags a library memory carries.
pub const MAX_TAGS: usize = 50;
/// The longest tag kept (longer triggers are sentences, not names).
const MAX_TAG_CHARS: usize = 100;

/// The tag every item of skill `id` carries.
pub fn skill_tag(id: &str) -> String {
    format!("skill:{}", id.to_lowercase())
}

/// A stack name as tags hold it.
pub fn stack_tag(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The tags of skill `skill`'s memories (before a severity's name).
pub fn skill_tags(skill: &Skill) -> Vec<String> {
    let mut tags = vec![skill_tag(&skill.id)];
    for name in skill.stack.iter().chain(&skill.tags).chain(&skill.triggers) {
        let tag = stack_tag(name);
        if !tag.is_empty() && tag.chars().count() <= MAX_TAG_CHARS && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_TAGS - 1);
    tags
}

fn draft(kind: MemoryType, title: &str, content: serde_json::Value, skill: &Skill) -> MemoryDraft {
    MemoryDraft {
        memory_type: kind,
        title: title.to_owned(),
        content,
        category: Some(skill.id.clone()),
        description: None,
        confidence: 1.0,
        tags: skill_tags(skill),
        source_role: None,
    }
}

fn with_severity(
    mut tags: Vec<String>,
    severity: Option<crate::domain::guardrail::Severity>,
) -> Vec<String> {
    if let Some(severity) = severity {
        let name = severity.as_str().to_owned();
        if !tags.contains(&name) {
            tags.push(name);
        }
    }
    tags
}

/// The memory a skill is stored as.
pub fn skill_draft(skill: &Skill) -> MemoryDraft {
    let content = serde_json::to_value(skill).unwrap_or_default();
    let description = (!skill.description.is_empty()).then(|| skill.description.clone());
    MemoryDraft {
        description,
        ..draft(MemoryType::Skill, &skill.name, content, skill)
    }
}

/// The memory a sharp edge of `skill` is stored as.
pub fn edge_draft(edge: &SharpEdge, skill: &Skill) -> MemoryDraft {
    let content = serde_json::to_value(edge).unwrap_or_default();
    let base = draft(MemoryType::SharpEdge, &edge.summary, content, skill);
    MemoryDraft {
        description: (!edge.situation.is_empty()).then(|| edge.situation.clone()),
        tags: with_severity(base.tags.clone(), edge.severity),
        ..base
    }
}

/// The memory a validation of `skill` is stored as.
pub fn validation_draft(check: &Validation, skill: &Skill) -> MemoryDraft {
    let content = serde_json::to_value(check).unwrap_or_default();
    let base = draft(MemoryType::Validation, &check.name, content, skill);
    MemoryDraft {
        description: (!check.message.is_empty()).then(|| check.message.clone()),
        tags: with_severity(base.tags.clone(), check.severity),
        ..base
    }
}

/// A library memory with its record read back.
#[derive(Debug, Clone)]
pub struct Item<T> {
    pub memory: Memory,
    pub record: T,
}

fn items<T: DeserializeOwned>(memories: Vec<Memory>) -> Vec<Item<T>> {
    memories
        .into_iter()
        .filter_map(|memory| {
            let record = serde_json::from_value(memory.content.clone()).ok()?;
            Some(Item { memory, record })
        })
        .collect()
}

/// Every live library memory of `kind` carrying all of `tags`, oldest last.
pub async fn all_of(
    store: &Arc<dyn Store>,
    kind: Option<MemoryType>,
    tags: &[String],
) -> Result<Vec<Memory>, KnowledgeError> {
    let mut filter = MemoryFilter {
        memory_type: kind,
        tags: tags.to_vec(),
        limit: 500,
        ..Default::default()
    };
    let mut found = Vec::new();
    loop {
        let page = store.fetch_memories(LIBRARY_PROJECT, &filter).await?;
        found.extend(page.memories);
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return Ok(found),
        }
    }
}

/// The skill with id `id` (its stable id), if the library has it.
pub async fn skill(
    store: &Arc<dyn Store>,
    id: &str,
) -> Result<Option<Item<Skill>>, KnowledgeError> {
    let memory_id = crate::domain::guardrail::library_item_id(
        crate::domain::guardrail::LibraryItem::Skill,
        id,
        "",
    );
    let found = store.get_memory(LIBRARY_PROJECT, memory_id).await?;
    Ok(found
        .filter(|memory| memory.memory_type == MemoryType::Skill)
        .and_then(|memory| items(vec![memory]).pop()))
}

/// The sharp edges of the skill `skill` (by its id), best first: by severity, then summary.
pub async fn sharp_edges(
    store: &Arc<dyn Store>,
    skill: &str,
) -> Result<Vec<Item<SharpEdge>>, KnowledgeError> {
    let scope = [skill_tag(skill)];
    let mut found: Vec<Item<SharpEdge>> =
        items(all_of(store, Some(MemoryType::SharpEdge), &scope).await?);
    found.sort_by(|a, b| {
        rank(a.record.severity)
            .cmp(&rank(b.record.severity))
            .then_with(|| a.record.summary.cmp(&b.record.summary))
    });
    Ok(found)
}

/// The validations of the skill `skill` (by its id), most severe first.
pub async fn validations(
    store: &Arc<dyn Store>,
    skill: &str,
) -> Result<Vec<Item<Validation>>, KnowledgeError> {
    let scope = [skill_tag(skill)];
    let mut found: Vec<Item<Validation>> =
        items(all_of(store, Some(MemoryType::Validation), &scope).await?);
    found.sort_by(|a, b| {
        rank(a.record.severity)
            .cmp(&rank(b.record.severity))
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
    Ok(found)
}

fn rank(severity: Option<crate::domain::guardrail::Severity>) -> usize {
    severity.map_or(crate::domain::guardrail::Severity::ALL.len(), |s| {
        s as usize
    })
}

/// What to look for among the skills: any of the fields may be left out.
#[derive(Debug, Clone, Default)]
pub struct SkillQuery {
    /// Words or a description, ranked by meaning and words.
    pub query: Option<String>,
    /// Stack names: a skill fits when it belongs to any of them.
    pub stacks: Vec<String>,
    /// Tags a skill must all carry (its stack, tags or triggers).
    pub tags: Vec<String>,
    pub limit: u32,
}

/// A skill found, with how well it ranked (the fused search score; `None` without a query).
#[derive(Debug, Clone)]
pub struct FoundSkill {
    pub item: Item<Skill>,
    pub score: Option<f64>,
}

/// The skills that fit a stack and a description: with a query, ranked by meaning and words
/// among the skills of the stacks (all skills without stacks); without one, the stacks' skills
/// by how directly they belong (declared `stack` first, then `tags`, then `triggers`) and name.
/// A skill belongs to a stack as [`stack::membership`] says, for every tool alike.
pub async fn find_skills(
    knowledge: &KnowledgeBase,
    wanted: &SkillQuery,
) -> Result<Vec<FoundSkill>, KnowledgeError> {
    let store = &knowledge.store;
    let tags: Vec<String> = wanted.tags.iter().map(|t| stack_tag(t)).collect();
    let names = stack::parse_names(wanted.stacks.iter().map(String::as_str));
    let membership =
        |skill: &Skill| stack::membership(&names, &skill.stack, &skill.tags, &skill.triggers);
    let fits = |skill: &Skill| names.is_empty() || membership(skill).is_some();
    let limit = wanted.limit.max(1) as usize;
    if let Some(query) = wanted
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        let filter = MemoryFilter {
            memory_type: Some(MemoryType::Skill),
            tags,
            limit: 400,
            ..Default::default()
        };
        let found = search::search(
            store,
            &knowledge.embeddings,
            LIBRARY_PROJECT,
            &filter,
            query,
            SearchMode::Hybrid,
            0,
        )
        .await?;
        let scores: HashMap<Uuid, f64> = found
            .explanations
            .iter()
            .map(|e| (e.id, e.fused_score))
            .collect();
        return Ok(items::<Skill>(found.memories)
            .into_iter()
            .filter(|item| fits(&item.record))
            .take(limit)
            .map(|item| FoundSkill {
                score: scores.get(&item.memory.id).copied(),
                item,
            })
            .collect());
    }
    let mut found: Vec<(Option<Membership>, Item<Skill>)> =
        items::<Skill>(all_of(store, Some(MemoryType::Skill), &tags).await?)
            .into_iter()
            .filter(|item| fits(&item.record))
            .map(|item| (membership(&item.record), item))
            .collect();
    found.sort_by(|(a, a_item), (b, b_item)| {
        b.cmp(a).then_with(|| {
            let name = |item: &Item<Skill>| item.record.name.to_lowercase();
            name(a_item).cmp(&name(b_item))
        })
    });
    Ok(found
        .into_iter()
        .take(limit)
        .map(|(_, item)| FoundSkill { item, score: None })
        .collect())
}
