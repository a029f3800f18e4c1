//! The library skills that fit a session: those of its stack (named in a skill's `stack`,
//! `tags` or `triggers`), best fitting the description first, then those outside the stack
//! that the description matches by meaning and words.

use std::collections::HashMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::edges::Ranker;
use super::index::LibraryIndex;
use super::stack::Membership;
use crate::domain::MemoryType;
use crate::domain::guardrail::LIBRARY_PROJECT;
use crate::store::{Store, StoreResult};

/// The most skills a context shows.
pub const SKILLS: usize = 5;

/// A skill as a context shows it (`find_skills` with its `id` gives the whole skill).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkillView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// How it belongs to the stack (`stack`, `tag` or `trigger`); absent when only the
    /// description brought it.
    pub membership: Option<Membership>,
}

/// The skills that fit the stack `names` and the text `ranker` ranks by, best first.
pub async fn fitting(
    store: &Arc<dyn Store>,
    index: &LibraryIndex,
    names: &[String],
    ranker: Option<&Ranker>,
) -> StoreResult<Vec<SkillView>> {
    let relevance: HashMap<Uuid, f64> = match ranker {
        Some(ranker) => {
            ranker
                .scores(store, LIBRARY_PROJECT, MemoryType::Skill)
                .await?
        }
        None => HashMap::new(),
    };
    let score = |memory_id: &Uuid| relevance.get(memory_id).copied().unwrap_or(0.0);
    let mut chosen: Vec<(Option<Membership>, f64, &super::index::SkillEntry)> = index
        .skills
        .iter()
        .filter_map(|skill| {
            let membership = index.membership(skill, names);
            let relevance = score(&skill.memory_id);
            (membership.is_some() || relevance > 0.0).then_some((membership, relevance, skill))
        })
        .collect();
    chosen.sort_by(|a, b| {
        b.0.is_some()
            .cmp(&a.0.is_some())
            .then_with(|| b.1.total_cmp(&a.1))
            .then_with(|| b.0.cmp(&a.0))
            .then_with(|| a.2.id.cmp(&b.2.id))
    });
    Ok(chosen
        .into_iter()
        .take(SKILLS)
        .map(|(membership, _, skill)| SkillView {
            id: skill.id.clone(),
            name: skill.name.clone(),
            description: skill.description.clone(),
            membership,
        })
        .collect())
}
