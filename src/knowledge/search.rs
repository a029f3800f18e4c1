//! Finding memories by meaning and by words: a vector half and a full-text half, each with every
//! filter applied inside it, fused by reciprocal rank fusion (RRF). `explain` shows each result's
//! rank in each half and its fused score.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::KnowledgeError;
use crate::domain::{Candidate, Memory, MemoryFilter};
use crate::embeddings::service::Embeddings;
use crate::store::Store;

/// The RRF constant: 60, as in the original paper and most hybrid engines.
const RRF_K: f64 = 60.0;
/// The most words of a query the full-text half uses.
const MAX_TERMS: usize = 32;

/// Which halves a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Meaning and words, fused (the default).
    #[default]
    Hybrid,
    /// Meaning only (needs an embedding provider).
    Semantic,
    /// Words only (full-text search).
    Text,
}

/// Why a result ranked where it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Explanation {
    pub id: Uuid,
    /// 1-based rank in the full-text half, if it appeared there.
    pub text_rank: Option<u32>,
    /// 1-based rank in the vector half, if it appeared there.
    pub semantic_rank: Option<u32>,
    /// Cosine similarity to the query, if it appeared in the vector half.
    pub similarity: Option<f64>,
    /// The fused RRF score: the sum of 1/(60 + rank) over the halves it appeared in.
    pub fused_score: f64,
}

/// What a search found, and how.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub memories: Vec<Memory>,
    pub explanations: Vec<Explanation>,
    /// The mode actually used (hybrid falls back to text when no embedder is ready).
    pub mode: SearchMode,
    /// Said plainly when a half could not run.
    pub notice: Option<String>,
    /// How long embedding the query took, in milliseconds.
    pub query_embedding_ms: Option<f64>,
    /// Where the next page starts, if there is one.
    pub next_offset: Option<u32>,
}

/// Common English words that say nothing about what a memory is about. Postgres drops its own
/// list inside `to_tsquery('english', …)`; dropping them here too keeps both stores alike.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "had", "has", "have",
    "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or",
    "our", "should", "so", "some", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "to", "too", "up", "us", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// Splits a query into the words the full-text half looks for: lowercased, without punctuation
/// or stopwords (unless the query is nothing but stopwords).
pub fn terms(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if !words.contains(&word) && words.len() < MAX_TERMS {
            words.push(word);
        }
    }
    let meaningful: Vec<String> = words
        .iter()
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .cloned()
        .collect();
    if meaningful.is_empty() {
        words
    } else {
        meaningful
    }
}

/// Fuses ranked candidate lists: each list contributes 1/(60 + rank) to every id it holds.
pub fn fuse(text: &[Candidate], semantic: &[Candidate]) -> Vec<Explanation> {
    let mut fused: HashMap<Uuid, Explanation> = HashMap::new();
    for (index, candidate) in text.iter().enumerate() {
        let rank = index as u32 + 1;
        let explanation = fused
            .entry(candidate.id)
            .or_insert_with(|| blank(candidate.id));
        explanation.text_rank = Some(rank);
        explanation.fused_score += 1.0 / (RRF_K + f64::from(rank));
    }
    for (index, candidate) in semantic.iter().enumerate() {
        let rank = index as u32 + 1;
        let explanation = fused
            .entry(candidate.id)
            .or_insert_with(|| blank(candidate.id));
        explanation.semantic_rank = Some(rank);
        explanation.similarity = Some(candidate.score);
        explanation.fused_score += 1.0 / (RRF_K + f64::from(rank));
    }
    let mut ranked: Vec<Explanation> = fused.into_values().collect();
    ranked.sort_by(|a, b| {
        b.fused_score
            .total_cmp(&a.fused_score)
            .then_with(|| {
                a.semantic_rank
                    .unwrap_or(u32::MAX)
                    .cmp(&b.semantic_rank.unwrap_or(u32::MAX))
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    ranked
}

fn blank(id: Uuid) -> Explanation {
    Explanation {
        id,
        text_rank: None,
        semantic_rank: None,
        similarity: None,
        fused_score: 0.0,
    }
}

/// Runs a search in one project. `embedder` is `None` when no provider is configured or ready.
pub async fn search(
    store: &Arc<dyn Store>,
    embeddings: &Embeddings,
    project: Uuid,
    filter: &MemoryFilter,
    query: &str,
    mode: SearchMode,
    offset: u32,
) -> Result<SearchResult, KnowledgeError> {
    let wanted = offset + filter.limit;
    // Each half fetches more than a page so fusion has something to work with.
    let pool = (wanted * 2).clamp(50, 400);
    let mut notice = None;
    let mut used = mode;
    let mut query_embedding_ms = None;

    let embedder = embeddings.current();
    // The query's vector first (when meaning is used), then both halves at once: each is its
    // own short transaction on its own connection, so a hybrid search waits for the slower
    // half, not for their sum.
    let query_vector = match (mode, &embedder) {
        (SearchMode::Text, _) => None,
        (_, Some(embedder)) => {
            let started = Instant::now();
            let vector = embedder
                .embed(&[query.to_owned()])
                .await
                .map_err(|error| {
                    KnowledgeError::Unavailable(format!("embedding the query failed: {error}"))
                })?
                .pop()
                .unwrap_or_default();
            query_embedding_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            Some((embedder.model(), vector))
        }
        (SearchMode::Semantic, None) => {
            return Err(KnowledgeError::Unavailable(format!(
                "semantic search is not available: {}. Use `mode: \"text\"` meanwhile",
                embeddings.unavailable_reason()
            )));
        }
        (SearchMode::Hybrid, None) => {
            used = SearchMode::Text;
            notice = Some(format!(
                "Full-text search only: {}.",
                embeddings.unavailable_reason()
            ));
            None
        }
    };
    let semantic_half = async {
        match &query_vector {
            Some((model, vector)) => {
                store
                    .vector_candidates(project, filter, model, vector, pool)
                    .await
            }
            None => Ok(Vec::new()),
        }
    };
    // In hybrid search the word half is precise — a memory must hold every word — and meaning
    // supplies recall; a looser word half only adds noise to the fusion. On its own, the word
    // half falls back to any word when no memory holds them all.
    let words = terms(query);
    let text_half = async {
        match used {
            SearchMode::Semantic => Ok(Vec::new()),
            SearchMode::Hybrid => {
                store
                    .text_candidates(project, filter, &words, true, pool)
                    .await
            }
            SearchMode::Text => {
                let all = store
                    .text_candidates(project, filter, &words, true, pool)
                    .await?;
                if all.is_empty() {
                    store
                        .text_candidates(project, filter, &words, false, pool)
                        .await
                } else {
                    Ok(all)
                }
            }
        }
    };
    let (semantic, text) = tokio::try_join!(semantic_half, text_half)?;

    let ranked = fuse(&text, &semantic);
    let next_offset = (ranked.len() > wanted as usize).then_some(wanted);
    let page: Vec<Explanation> = ranked
        .into_iter()
        .skip(offset as usize)
        .take(filter.limit as usize)
        .collect();
    let ids: Vec<Uuid> = page.iter().map(|e| e.id).collect();
    let mut by_id: HashMap<Uuid, Memory> = store
        .memories_by_ids(project, &ids)
        .await?
        .into_iter()
        .map(|memory| (memory.id, memory))
        .collect();
    let (mut memories, mut explanations) = (Vec::new(), Vec::new());
    for explanation in page {
        if let Some(memory) = by_id.remove(&explanation.id) {
            memories.push(memory);
            explanations.push(explanation);
        }
    }
    Ok(SearchResult {
        memories,
        explanations,
        mode: used,
        notice,
        query_embedding_ms,
        next_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    fn list(ids: &[Uuid]) -> Vec<Candidate> {
        ids.iter()
            .map(|id| Candidate {
                id: *id,
                score: 1.0,
            })
            .collect()
    }

    #[test]
    fn a_result_found_by_both_halves_outranks_one_found_by_either() {
        let [a, b, c] = ids(3)[..] else {
            unreachable!()
        };
        let fused = fuse(&list(&[a, b]), &list(&[c, b]));
        assert_eq!(fused[0].id, b);
        assert_eq!(fused[0].text_rank, Some(2));
        assert_eq!(fused[0].semantic_rank, Some(2));
        assert!((fused[0].fused_score - 2.0 / 62.0).abs() < 1e-12);
    }

    #[test]
    fn query_terms_are_lowercased_words_without_punctuation() {
        assert_eq!(
            terms("Error-handling: WRAP errors, wrap!"),
            ["error", "handling", "wrap", "errors"]
        );
        assert!(terms("  ?! ").is_empty());
    }
}
