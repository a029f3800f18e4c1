//! The alternatives `unstick` offers: the fixes of the sharp edges the errors matched, the
//! first patterns and the handoff of each matching skill (those edges' skills, and skills whose
//! name, tags or triggers the task names), and starting again when the attempts are circular.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::index::{LibraryIndex, parsed};
use super::unstick_advice::{KnownPattern, PatternKind};
use crate::domain::guardrail::{LIBRARY_PROJECT, LibraryItem, Skill, library_item_id};
use crate::knowledge::KnowledgeError;
use crate::knowledge::search::terms;
use crate::store::Store;

/// The most alternatives one call offers.
pub const MAX_ALTERNATIVES: usize = 6;
/// The longest text an alternative or a known pattern's fix carries.
const EXCERPT_CHARS: usize = 400;

/// An approach to try instead.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Alternative {
    pub approach: String,
    /// Where it comes from, e.g. "solution of sharp edge `x`" or "pattern of skill `y`".
    pub source: String,
    pub skill: Option<String>,
    /// The skill to hand the problem to, for a handoff.
    pub handoff_to: Option<String>,
}

/// The library skills whose name, tags or triggers name words of the task, best first (at most
/// two): an agent stuck on a task is helped by the skills that own it.
pub fn skills_for_task(index: &LibraryIndex, task: &str) -> Vec<String> {
    let words: Vec<String> = terms(task)
        .into_iter()
        .map(|w| super::stack::normalize(&w))
        .collect();
    let mut scored: Vec<(usize, &str)> = index
        .skills
        .iter()
        .filter_map(|skill| {
            let mut named: HashSet<String> = HashSet::new();
            let lists = [&skill.tags, &skill.triggers, &skill.stack];
            for text in lists.into_iter().flatten().chain([&skill.name, &skill.id]) {
                named.insert(super::stack::normalize(text));
                for word in text.split(|c: char| c.is_whitespace() || c == '-') {
                    named.insert(super::stack::normalize(word));
                }
            }
            let hits = words.iter().filter(|w| named.contains(*w)).count();
            (hits >= 2).then_some((hits, skill.id.as_str()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(2)
        .map(|(_, id)| id.to_owned())
        .collect()
}

/// The alternatives: the fixes of the matched sharp edges, then each matching skill's first
/// patterns and handoff.
pub async fn alternatives(
    store: &Arc<dyn Store>,
    known: &[KnownPattern],
    skills: &[String],
) -> Result<Vec<Alternative>, KnowledgeError> {
    let mut out: Vec<Alternative> = known
        .iter()
        .filter(|k| k.kind == PatternKind::SharpEdge && !k.fix.is_empty())
        .take(2)
        .map(|k| Alternative {
            approach: k.fix.clone(),
            source: format!("solution of sharp edge `{}`", k.title),
            skill: k.skill.clone(),
            handoff_to: None,
        })
        .collect();
    let ids: Vec<Uuid> = skills
        .iter()
        .map(|skill| library_item_id(LibraryItem::Skill, skill, ""))
        .collect();
    let mut whole: HashMap<String, Skill> = HashMap::new();
    for memory in store.memories_by_ids(LIBRARY_PROJECT, &ids).await? {
        if let Some(skill) = parsed::<Skill>(&memory) {
            whole.insert(skill.id.clone(), skill);
        }
    }
    for id in skills {
        let Some(skill) = whole.get(id) else { continue };
        for pattern in skill.patterns.iter().take(2) {
            if let Some(approach) = describe(pattern) {
                out.push(Alternative {
                    approach,
                    source: format!("pattern of skill `{id}`"),
                    skill: Some(id.clone()),
                    handoff_to: None,
                });
            }
        }
        if let Some((to, when)) = skill.handoffs.iter().find_map(handoff) {
            let approach = match when {
                Some(when) => format!("Hand this to the `{to}` skill: {when}"),
                None => format!("Hand this to the `{to}` skill"),
            };
            out.push(Alternative {
                approach,
                source: format!("handoff of skill `{id}`"),
                skill: Some(id.clone()),
                handoff_to: Some(to),
            });
        }
    }
    Ok(out)
}

/// The alternative of starting again.
pub fn reset_alternative() -> Alternative {
    Alternative {
        approach: "Start again from the last version that worked, and choose one approach before changing code".into(),
        source: "circular attempts".into(),
        skill: None,
        handoff_to: None,
    }
}

/// A pack's pattern (text, or a map with a name and a description) as one line.
fn describe(pattern: &Value) -> Option<String> {
    let field = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| pattern.get(*key).and_then(Value::as_str))
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let text = match pattern {
        Value::String(text) => text.trim().to_owned(),
        Value::Object(_) => {
            let head = field(&["name", "title", "id", "pattern"]);
            let body = field(&["description", "summary", "when", "approach", "why"]);
            match (head, body) {
                (Some(head), Some(body)) => format!("{head}: {body}"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => return None,
            }
        }
        _ => return None,
    };
    (!text.is_empty()).then(|| excerpt(&text))
}

/// A pack's handoff as (skill to hand to, when), from text or a map.
fn handoff(value: &Value) -> Option<(String, Option<String>)> {
    let field = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| value.get(*key).and_then(Value::as_str))
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    match value {
        Value::String(to) if !to.trim().is_empty() => Some((to.trim().to_owned(), None)),
        Value::Object(_) => {
            let to = field(&["to", "skill", "target", "handoff_to"])?;
            let when = field(&["when", "context", "trigger", "condition"]).map(|w| excerpt(&w));
            Some((to, when))
        }
        _ => None,
    }
}

/// The start of a text, at most [`EXCERPT_CHARS`] characters, cut at a line end when one is
/// near.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(EXCERPT_CHARS).collect();
    let cut = match cut.rfind('\n') {
        Some(end) if end > EXCERPT_CHARS / 2 => cut[..end].to_owned(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_handoffs_read_from_text_or_maps() {
        let map = serde_json::json!({"name": "Single flight", "description": "one fetch per key"});
        assert_eq!(
            describe(&map).as_deref(),
            Some("Single flight: one fetch per key")
        );
        assert_eq!(
            describe(&Value::from("Use a lock")).as_deref(),
            Some("Use a lock")
        );
        let to = serde_json::json!({"to": "database-architect", "when": "the schema is wrong"});
        assert_eq!(
            handoff(&to),
            Some((
                "database-architect".into(),
                Some("the schema is wrong".into())
            ))
        );
        assert_eq!(handoff(&serde_json::json!({"when": "x"})), None);
    }
}
