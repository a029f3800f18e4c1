//! The shared skills library as memories of [`LIBRARY_PROJECT`]: how a skill, sharp edge or
//! validation fills a memory's fields (the drafts the import writes), and reading it back —
//! the skills that fit a stack and a description, and the sharp edges and validations of a
//! skill or a stack — for `find_skills`, `load_context`, `watch_out` and `validate_code`.
//!
//! A skill belongs to a stack name when its `stack`, `tags` or `triggers` hold that name (any
//! case): real packs use all three. So every library memory carries, as tags, its skill's
//! stack, tags and triggers lowercased (at most [`MAX_TAGS`] of them), the tag `skill:<id>` of
//! its skill, and its severity's name where it has one; a stack's skills, edges and checks are
//! then one tag filter away in either store.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

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

/// The sharp edges of the skill `skill` (by its id), or of every skill of a stack
/// (`stack: Some`), best first: by severity, then summary.
pub async fn sharp_edges(
    store: &Arc<dyn Store>,
    skill: Option<&str>,
    stack: Option<&str>,
) -> Result<Vec<Item<SharpEdge>>, KnowledgeError> {
    let mut found: Vec<Item<SharpEdge>> =
        items(all_of(store, Some(MemoryType::SharpEdge), &scope(skill, stack)).await?);
    found.sort_by(|a, b| {
        rank(a.record.severity)
            .cmp(&rank(b.record.severity))
            .then_with(|| a.record.summary.cmp(&b.record.summary))
    });
    Ok(found)
}

/// The validations of a skill or a stack, as [`sharp_edges`] finds them, most severe first.
pub async fn validations(
    store: &Arc<dyn Store>,
    skill: Option<&str>,
    stack: Option<&str>,
) -> Result<Vec<Item<Validation>>, KnowledgeError> {
    let mut found: Vec<Item<Validation>> =
        items(all_of(store, Some(MemoryType::Validation), &scope(skill, stack)).await?);
    found.sort_by(|a, b| {
        rank(a.record.severity)
            .cmp(&rank(b.record.severity))
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
    Ok(found)
}

fn scope(skill: Option<&str>, stack: Option<&str>) -> Vec<String> {
    skill
        .map(skill_tag)
        .into_iter()
        .chain(stack.map(stack_tag))
        .collect()
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
pub async fn find_skills(
    knowledge: &KnowledgeBase,
    wanted: &SkillQuery,
) -> Result<Vec<FoundSkill>, KnowledgeError> {
    let store = &knowledge.store;
    let tags: Vec<String> = wanted.tags.iter().map(|t| stack_tag(t)).collect();
    let stacks: Vec<String> = wanted
        .stacks
        .iter()
        .map(|s| stack_tag(s))
        .filter(|s| !s.is_empty())
        .collect();
    let fits = |memory: &Memory| {
        stacks.is_empty() || stacks.iter().any(|stack| memory.tags.contains(stack))
    };
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
        let kept: Vec<Memory> = found
            .memories
            .into_iter()
            .filter(|m| fits(m))
            .take(limit)
            .collect();
        return Ok(items::<Skill>(kept)
            .into_iter()
            .map(|item| FoundSkill {
                score: scores.get(&item.memory.id).copied(),
                item,
            })
            .collect());
    }
    let mut found: Vec<Item<Skill>> = Vec::new();
    if stacks.is_empty() {
        found = items(all_of(store, Some(MemoryType::Skill), &tags).await?);
    } else {
        for stack in &stacks {
            let mut scope = tags.clone();
            scope.push(stack.clone());
            for item in items::<Skill>(all_of(store, Some(MemoryType::Skill), &scope).await?) {
                if !found.iter().any(|f| f.memory.id == item.memory.id) {
                    found.push(item);
                }
            }
        }
    }
    let closeness = |skill: &Skill| {
        let holds = |names: &[String]| names.iter().any(|n| stacks.contains(&stack_tag(n)));
        if holds(&skill.stack) {
            0
        } else if holds(&skill.tags) {
            1
        } else {
            2
        }
    };
    found.sort_by(|a, b| {
        closeness(&a.record)
            .cmp(&closeness(&b.record))
            .then_with(|| {
                a.record
                    .name
                    .to_lowercase()
                    .cmp(&b.record.name.to_lowercase())
            })
    });
    found.truncate(limit);
    Ok(found
        .into_iter()
        .map(|item| FoundSkill { item, score: None })
        .collect())
}
