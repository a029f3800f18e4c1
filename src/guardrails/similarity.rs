//! How alike a few short texts are (an agent's attempts at one task): by the cosine of their
//! embeddings when a model is ready, else by shingles — the Jaccard similarity of their sets of
//! character trigrams, taken within each meaningful word (padded, as Postgres's `pg_trgm` does),
//! so `refresh the token` and `refreshing tokens` share most of theirs.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::cosine;
use crate::embeddings::service::Embeddings;
use crate::knowledge::search::terms;

/// How similarity was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Cosine similarity of the texts' embeddings.
    Embeddings,
    /// Jaccard similarity of the texts' word trigrams.
    Shingles,
}

/// The trigrams of a text's meaningful words (stopwords dropped), each word padded with two
/// spaces before and one after.
pub fn shingles(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for word in terms(text) {
        let padded: Vec<char> = format!("  {word} ").chars().collect();
        for window in padded.windows(3) {
            out.insert(window.iter().collect());
        }
    }
    out
}

/// |a ∩ b| / |a ∪ b|; 0 for two empty sets.
pub fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// On average, how alike each item is to the other item most like it: circling attempts each
/// repeat some other attempt, even when the first and the last differ. 0 for fewer than two.
pub fn mean_best(count: usize, pair: impl Fn(usize, usize) -> f64) -> f64 {
    if count < 2 {
        return 0.0;
    }
    let best = |i: usize| {
        (0..count)
            .filter(|j| *j != i)
            .map(|j| pair(i, j))
            .fold(0.0, f64::max)
    };
    (0..count).map(best).sum::<f64>() / count as f64
}

/// How alike the attempts are, and how that was measured: by embeddings when a model is ready
/// and embedding them works, else by shingles.
pub async fn of_attempts(embeddings: &Embeddings, attempts: &[String]) -> (f64, Method) {
    if attempts.len() >= 2
        && let Some(embedder) = embeddings.current()
    {
        match embedder.embed(attempts).await {
            Ok(vectors) if vectors.len() == attempts.len() => {
                let score = mean_best(vectors.len(), |i, j| {
                    f64::from(cosine(&vectors[i], &vectors[j])).clamp(0.0, 1.0)
                });
                return (score, Method::Embeddings);
            }
            Ok(_) => tracing::warn!(
                "the embedder returned the wrong number of vectors; comparing attempts by shingles"
            ),
            Err(error) => {
                tracing::warn!(%error, "embedding attempts failed; comparing them by shingles")
            }
        }
    }
    let sets: Vec<HashSet<String>> = attempts.iter().map(|a| shingles(a)).collect();
    (
        mean_best(sets.len(), |i, j| jaccard(&sets[i], &sets[j])),
        Method::Shingles,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alike(texts: &[&str]) -> f64 {
        let sets: Vec<_> = texts.iter().map(|t| shingles(t)).collect();
        mean_best(sets.len(), |i, j| jaccard(&sets[i], &sets[j]))
    }

    #[test]
    fn rewordings_of_one_fix_are_alike_and_different_fixes_are_not() {
        let circling = alike(&[
            "retry the request with a new token",
            "retry the request after refreshing the token",
            "refresh the token and retry the request",
        ]);
        assert!(circling > 0.7, "{circling}");
        let exploring = alike(&[
            "switched the HTTP client from axios to fetch",
            "moved the data loading into a server component",
            "cached the response in redis",
        ]);
        assert!(exploring < 0.2, "{exploring}");
    }

    #[test]
    fn one_attempt_or_none_is_alike_to_nothing() {
        assert_eq!(alike(&["only one"]), 0.0);
        assert_eq!(alike(&[]), 0.0);
        assert_eq!(jaccard(&HashSet::new(), &HashSet::new()), 0.0);
    }
}
