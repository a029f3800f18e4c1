//! The known patterns `unstick` finds for an agent's errors: sharp edges (library and project)
//! whose symptoms the errors show, and the project's learnings that speak of them.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::edges::{self, Candidate, EdgeSource, Ranker};
use super::index::LibraryIndex;
use super::pattern::Pattern;
use super::stack::Membership;
use crate::domain::MemoryType;
use crate::domain::guardrail::Severity;
use crate::knowledge::search::terms;
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use crate::store::content_text;

/// The most known patterns one call reports: sharp edges, then learnings.
const MAX_EDGES: usize = 5;
const MAX_LEARNINGS: usize = 3;
/// A symptom matches an error when at least this share of its words are in the error.
const SYMPTOM_MATCH: f64 = 0.6;

/// What kind of known pattern matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    SharpEdge,
    Learning,
}

impl PatternKind {
    pub fn noun(self) -> &'static str {
        match self {
            PatternKind::SharpEdge => "sharp edge",
            PatternKind::Learning => "learning of this project",
        }
    }
}

/// A sharp edge or a learning that the errors match.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KnownPattern {
    pub kind: PatternKind,
    pub memory_id: Uuid,
    pub source: EdgeSource,
    pub skill: Option<String>,
    /// A sharp edge's summary, a learning's title.
    pub title: String,
    pub severity: Option<Severity>,
    /// The symptom that matched (sharp edges).
    pub matched_symptom: Option<String>,
    /// The error it matched.
    pub matched_error: String,
    /// From 0 to 1: the share of the symptom's words (a learning: of the error's) found.
    pub score: f64,
    /// A sharp edge's solution, a learning's text (shortened).
    pub fix: String,
    /// Whether a sharp edge's detection pattern matches `current_code`.
    pub matches_current_code: bool,
    #[serde(skip)]
    #[schemars(skip)]
    detection: Option<(Option<usize>, String)>,
}

/// The share of `symptom`'s words found in `error` (at least two of them, or all of a
/// one-word symptom); 0 when fewer.
fn symptom_score(symptom: &HashSet<String>, error: &HashSet<String>) -> f64 {
    if symptom.is_empty() {
        return 0.0;
    }
    let common = symptom.intersection(error).count();
    if common < symptom.len().min(2) {
        return 0.0;
    }
    common as f64 / symptom.len() as f64
}

fn word_set(text: &str) -> HashSet<String> {
    terms(text).into_iter().collect()
}

/// The best match of a candidate's symptoms against the errors: (score, symptom, error).
fn best_symptom(
    candidate: &Candidate,
    errors: &[(String, HashSet<String>)],
) -> Option<(f64, String, String)> {
    let mut best: Option<(f64, String, String)> = None;
    for symptom in &candidate.edge.symptoms {
        let words = word_set(symptom);
        for (error, error_words) in errors {
            let score = symptom_score(&words, error_words);
            if score >= SYMPTOM_MATCH && best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, symptom.clone(), error.clone()));
            }
        }
    }
    best
}

/// Sharp edges (library and project) whose symptoms the errors show, then the project's
/// learnings that speak of the errors; best first.
pub async fn known_patterns(
    knowledge: &KnowledgeBase,
    index: &LibraryIndex,
    project: Option<Uuid>,
    errors: &[String],
) -> Result<Vec<KnownPattern>, KnowledgeError> {
    if errors.is_empty() {
        return Ok(Vec::new());
    }
    let store = &knowledge.store;
    let error_words: Vec<(String, HashSet<String>)> =
        errors.iter().map(|e| (e.clone(), word_set(e))).collect();
    let mut candidates: Vec<Candidate> = (0..index.edges.len())
        .filter(|at| !index.edges[*at].edge.symptoms.is_empty())
        .map(|at| edges::library_candidate(index, at, Membership::Trigger))
        .collect();
    if let Some(project) = project {
        candidates.extend(edges::project_candidates(store, project, &[]).await?);
    }
    let mut matched: Vec<(Candidate, (f64, String, String))> = candidates
        .into_iter()
        .filter_map(|c| {
            let best = best_symptom(&c, &error_words)?;
            Some((c, best))
        })
        .collect();
    matched.sort_by(|(a, (sa, _, _)), (b, (sb, _, _))| {
        sb.total_cmp(sa)
            .then_with(|| {
                edges::severity_rank(a.edge.severity).cmp(&edges::severity_rank(b.edge.severity))
            })
            .then_with(|| edges::tie_break(a, b))
    });
    matched.truncate(MAX_EDGES);
    let (chosen, matches): (Vec<Candidate>, Vec<_>) = matched.into_iter().unzip();
    let detection: Vec<_> = chosen
        .iter()
        .map(|c| {
            c.edge
                .detection_pattern
                .clone()
                .map(|p| (c.library_edge, p))
        })
        .collect();
    let views = edges::views(store, chosen).await?;
    let mut known: Vec<KnownPattern> = views
        .into_iter()
        .zip(matches)
        .zip(detection)
        .map(
            |((view, (score, symptom, error)), detection)| KnownPattern {
                kind: PatternKind::SharpEdge,
                memory_id: view.memory_id,
                source: view.source,
                skill: view.edge.skill,
                title: view.edge.summary,
                severity: view.edge.severity,
                matched_symptom: Some(symptom),
                matched_error: error,
                score,
                fix: super::alternatives::excerpt(&view.edge.solution),
                matches_current_code: false,
                detection,
            },
        )
        .collect();
    if let Some(project) = project {
        known.extend(learnings(knowledge, project, &error_words).await?);
    }
    Ok(known)
}

/// The project's learnings the word and meaning halves find for the errors, kept when they
/// hold at least half of one error's words (and at least two).
async fn learnings(
    knowledge: &KnowledgeBase,
    project: Uuid,
    errors: &[(String, HashSet<String>)],
) -> Result<Vec<KnownPattern>, KnowledgeError> {
    let store = &knowledge.store;
    let query: String = errors
        .iter()
        .map(|(e, _)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .take(crate::knowledge::MAX_QUERY_CHARS)
        .collect();
    let ranker = Ranker::new(&knowledge.embeddings, &query).await;
    let mut scored: Vec<(Uuid, f64)> = ranker
        .scores(store, project, MemoryType::Learning)
        .await?
        .into_iter()
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scored.truncate(20);
    let ids: Vec<Uuid> = scored.iter().map(|(id, _)| *id).collect();
    let mut by_id: HashMap<Uuid, _> = store
        .memories_by_ids(project, &ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let mut found = Vec::new();
    for id in ids {
        let Some(memory) = by_id.remove(&id) else {
            continue;
        };
        let text = format!("{}\n{}", memory.title, content_text(&memory.content));
        let words = word_set(&text);
        let best = errors
            .iter()
            .map(|(error, error_words)| {
                let common = error_words.intersection(&words).count();
                let share = common as f64 / error_words.len().max(1) as f64;
                (if common >= 2 { share } else { 0.0 }, error)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((score, error)) = best.filter(|(score, _)| *score >= 0.5) {
            found.push(KnownPattern {
                kind: PatternKind::Learning,
                memory_id: memory.id,
                source: EdgeSource::Project,
                skill: None,
                title: memory.title.clone(),
                severity: None,
                matched_symptom: None,
                matched_error: error.clone(),
                score,
                fix: super::alternatives::excerpt(&content_text(&memory.content)),
                matches_current_code: false,
                detection: None,
            });
        }
        if found.len() == MAX_LEARNINGS {
            break;
        }
    }
    Ok(found)
}

/// Marks the known sharp edges whose detection pattern matches `code`.
pub fn mark_code(index: &LibraryIndex, known: &mut [KnownPattern], code: &str) {
    for pattern in known.iter_mut() {
        let Some((library_edge, source)) = &pattern.detection else {
            continue;
        };
        let own;
        let compiled = match library_edge {
            Some(at) => index.edge_pattern(*at),
            None => {
                own = Pattern::compile(source).ok();
                own.as_ref()
            }
        };
        pattern.matches_current_code =
            compiled.is_some_and(|compiled| compiled.is_match(code).unwrap_or(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symptom_matches_an_error_that_holds_most_of_its_words() {
        let symptom = word_set("Cannot read properties of undefined");
        let error = word_set("TypeError: Cannot read properties of undefined (reading 'map')");
        assert_eq!(symptom_score(&symptom, &error), 1.0);
        let other = word_set("connection refused on port 5432");
        assert_eq!(symptom_score(&symptom, &other), 0.0);
        let one = word_set("undefined variable");
        assert_eq!(symptom_score(&word_set("undefined"), &one), 1.0);
    }
}
