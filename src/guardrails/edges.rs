//! Sharp edges as the agent tools gather and rank them: the library's (through its skills'
//! stack, tags and triggers) and a project's own, scored against a text by meaning and words
//! with the same two search halves `fetch_context` fuses, then shown whole.

use std::collections::HashMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::index::{LibraryIndex, parsed};
use super::pattern::Pattern;
use super::stack::{self, Membership};
use crate::domain::guardrail::{LIBRARY_PROJECT, Severity, SharpEdge};
use crate::domain::{EmbeddingModel, Memory, MemoryFilter, MemoryType};
use crate::embeddings::service::Embeddings;
use crate::knowledge::search::{fuse, terms};
use crate::store::{Store, StoreResult};

/// Where a sharp edge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EdgeSource {
    /// The shared skills library.
    Library,
    /// The project's own sharp edges.
    Project,
}

/// A sharp edge, whole, as a tool shows it: the stored record's fields, and where it comes from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EdgeView {
    /// The memory holding it (`fetch_context` or `find_skills` show more).
    pub memory_id: Uuid,
    pub source: EdgeSource,
    #[serde(flatten)]
    pub edge: SharpEdge,
    /// Whether `detection_pattern` matches the code sent with the call.
    pub matches_current_code: bool,
}

/// A sharp edge that may be shown, with what its ranking needs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub memory_id: Uuid,
    pub source: EdgeSource,
    /// The record; a library edge's comes from the index, without `why` and `solution` until
    /// it is shown (`whole` false).
    pub edge: SharpEdge,
    /// Whether `edge` holds every field (a project's own edge, read from the store).
    pub whole: bool,
    /// Its position in the library index (library edges).
    pub library_edge: Option<usize>,
    /// How its skill (or, for a project's edge, its tags) ties it to the stack.
    pub membership: Membership,
    /// Fused search score against the call's text (0 when neither half found it).
    pub relevance: f64,
    pub matches_current_code: bool,
}

/// The library's sharp edges of the stack `names`.
pub fn library_candidates(index: &LibraryIndex, names: &[String]) -> Vec<Candidate> {
    index
        .edges_in(names)
        .into_iter()
        .map(|(at, membership)| library_candidate(index, at, membership))
        .collect()
}

/// The library edge at position `at` of the index as a candidate.
pub fn library_candidate(index: &LibraryIndex, at: usize, membership: Membership) -> Candidate {
    let entry = &index.edges[at];
    Candidate {
        memory_id: entry.memory_id,
        source: EdgeSource::Library,
        edge: entry.edge.clone(),
        whole: false,
        library_edge: Some(at),
        membership,
        relevance: 0.0,
        matches_current_code: false,
    }
}

/// The most of a project's own sharp edges a call reads.
const PROJECT_EDGES: u32 = 500;

/// A project's own sharp edges that apply to the stack `names` (all of them when `names` is
/// empty): those tagged with one of the names, and those tagged with no stack at all (only a
/// severity, or nothing), which apply to the whole project.
pub async fn project_candidates(
    store: &Arc<dyn Store>,
    project: Uuid,
    names: &[String],
) -> StoreResult<Vec<Candidate>> {
    let filter = MemoryFilter {
        memory_type: Some(MemoryType::SharpEdge),
        limit: PROJECT_EDGES,
        ..MemoryFilter::default()
    };
    let memories = store.fetch_memories(project, &filter).await?.memories;
    Ok(memories
        .iter()
        .filter_map(|memory| {
            let stack_tags: Vec<String> = memory
                .tags
                .iter()
                .filter(|tag| Severity::parse(tag).is_none())
                .cloned()
                .collect();
            let membership = match stack::membership(names, &[], &stack_tags, &[]) {
                Some(membership) => membership,
                None if names.is_empty() || stack_tags.is_empty() => Membership::Trigger,
                None => return None,
            };
            Some(project_candidate(memory, membership))
        })
        .collect())
}

/// A project's sharp edge memory as a candidate; a memory written by hand without the record's
/// fields falls back on its title and description.
pub fn project_candidate(memory: &Memory, membership: Membership) -> Candidate {
    let mut edge: SharpEdge = parsed(memory).unwrap_or_default();
    if edge.summary.trim().is_empty() {
        edge.summary = memory.title.clone();
    }
    if edge.situation.trim().is_empty() {
        edge.situation = memory.description.clone().unwrap_or_default();
    }
    if edge.id.trim().is_empty() {
        edge.id = memory.id.to_string();
    }
    if edge.severity.is_none() {
        edge.severity = memory.tags.iter().find_map(|tag| Severity::parse(tag));
    }
    edge.skill = None;
    Candidate {
        memory_id: memory.id,
        source: EdgeSource::Project,
        edge,
        whole: true,
        library_edge: None,
        membership,
        relevance: 0.0,
        matches_current_code: false,
    }
}

/// A text to rank memories against, by words and (when a model is ready) by meaning.
pub struct Ranker {
    words: Vec<String>,
    vector: Option<(EmbeddingModel, Vec<f32>)>,
}

/// How many candidates each half of a ranking fetches.
const POOL: u32 = 400;

impl Ranker {
    /// Embeds `text` once for every ranking that follows; if embedding fails the ranking uses
    /// words alone (and says so in the log).
    pub async fn new(embeddings: &Embeddings, text: &str) -> Self {
        let words = terms(text);
        let mut vector = None;
        if let Some(embedder) = embeddings.current() {
            match embedder.embed(&[text.to_owned()]).await {
                Ok(mut vectors) => {
                    vector = vectors.pop().map(|v| (embedder.model().clone(), v));
                }
                Err(error) => {
                    tracing::warn!(%error, "embedding a guardrail query failed; ranking by words only")
                }
            }
        }
        Self { words, vector }
    }

    /// Whether meaning takes part in the ranking.
    pub fn by_meaning(&self) -> bool {
        self.vector.is_some()
    }

    /// Each memory of `kind` in `project` the two halves found, with its fused score.
    pub async fn scores(
        &self,
        store: &Arc<dyn Store>,
        project: Uuid,
        kind: MemoryType,
    ) -> StoreResult<HashMap<Uuid, f64>> {
        let filter = MemoryFilter {
            memory_type: Some(kind),
            limit: POOL,
            ..MemoryFilter::default()
        };
        let text = async {
            if self.words.is_empty() {
                return Ok(Vec::new());
            }
            store
                .text_candidates(project, &filter, &self.words, false, POOL)
                .await
        };
        let meaning = async {
            match &self.vector {
                Some((model, vector)) => {
                    store
                        .vector_candidates(project, &filter, model, vector, POOL)
                        .await
                }
                None => Ok(Vec::new()),
            }
        };
        let (text, meaning) = tokio::try_join!(text, meaning)?;
        Ok(fuse(&text, &meaning)
            .into_iter()
            .map(|explained| (explained.id, explained.fused_score))
            .collect())
    }

    /// Sets each candidate's relevance from the rankings of the library and of `project`.
    pub async fn score_edges(
        &self,
        store: &Arc<dyn Store>,
        project: Option<Uuid>,
        candidates: &mut [Candidate],
    ) -> StoreResult<()> {
        let library = self.scores(store, LIBRARY_PROJECT, MemoryType::SharpEdge);
        let own = async {
            match project {
                Some(project) => self.scores(store, project, MemoryType::SharpEdge).await,
                None => Ok(HashMap::new()),
            }
        };
        let (library, own) = tokio::try_join!(library, own)?;
        for candidate in candidates {
            let scores = match candidate.source {
                EdgeSource::Library => &library,
                EdgeSource::Project => &own,
            };
            candidate.relevance = scores.get(&candidate.memory_id).copied().unwrap_or(0.0);
        }
        Ok(())
    }
}

/// Severity as a rank: critical first, an edge without one last.
pub fn severity_rank(severity: Option<Severity>) -> usize {
    severity.map_or(Severity::ALL.len(), |s| s as usize)
}

/// Orders by what ties the edge to the stack last: a project's own edge before the library's,
/// a stronger membership first, then by summary, so equal edges keep one order.
pub fn tie_break(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let own = |c: &Candidate| c.source == EdgeSource::Library;
    own(a)
        .cmp(&own(b))
        .then_with(|| b.membership.cmp(&a.membership))
        .then_with(|| a.edge.summary.cmp(&b.edge.summary))
        .then_with(|| a.memory_id.cmp(&b.memory_id))
}

/// The chosen candidates, whole: a library edge's `why` and `solution` are read from the store.
pub async fn views(store: &Arc<dyn Store>, chosen: Vec<Candidate>) -> StoreResult<Vec<EdgeView>> {
    let library_ids: Vec<Uuid> = chosen
        .iter()
        .filter(|c| !c.whole)
        .map(|c| c.memory_id)
        .collect();
    let mut whole: HashMap<Uuid, SharpEdge> = HashMap::new();
    if !library_ids.is_empty() {
        for memory in store.memories_by_ids(LIBRARY_PROJECT, &library_ids).await? {
            if let Some(edge) = parsed::<SharpEdge>(&memory) {
                whole.insert(memory.id, edge);
            }
        }
    }
    Ok(chosen
        .into_iter()
        .map(|mut candidate| {
            if let Some(stored) = whole.remove(&candidate.memory_id) {
                candidate.edge.why = stored.why;
                candidate.edge.solution = stored.solution;
            }
            EdgeView {
                memory_id: candidate.memory_id,
                source: candidate.source,
                edge: candidate.edge,
                matches_current_code: candidate.matches_current_code,
            }
        })
        .collect())
}

/// How matching detection patterns against code went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CodeCheck {
    /// Patterns run against the code.
    pub patterns_run: usize,
    /// Patterns that matched.
    pub matched: usize,
    /// Patterns that did not finish within their backtracking budget (counted as no match).
    pub over_budget: usize,
}

/// Marks each candidate whose detection pattern matches `code`. Library patterns are compiled
/// once per import (kept in the index); a project's are compiled for the call; a pattern that
/// does not compile never matches.
pub fn match_code(index: &LibraryIndex, candidates: &mut [Candidate], code: &str) -> CodeCheck {
    let mut check = CodeCheck::default();
    for candidate in candidates {
        let own;
        let pattern = match candidate.library_edge {
            Some(at) => index.edge_pattern(at),
            None => {
                own = candidate
                    .edge
                    .detection_pattern
                    .as_deref()
                    .and_then(|source| Pattern::compile(source).ok());
                own.as_ref()
            }
        };
        let Some(pattern) = pattern else { continue };
        check.patterns_run += 1;
        match pattern.is_match(code) {
            Ok(matched) => candidate.matches_current_code = matched,
            Err(_) => check.over_budget += 1,
        }
        check.matched += usize::from(candidate.matches_current_code);
    }
    check
}
