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

impl Method {
    /// Above this, attempts measured this way are circular. Shingles: an agent's looping
    /// attempts repeat one error with other line numbers, paths or timestamps, and score 0.73
    /// to 0.93; attempts that try different things (even against the same error) score 0.44 at
    /// most (`realistic_loops_are_circular_by_shingles_and_different_approaches_are_not`), so
    /// 0.6 sits midway, 0.13 from each, where 0.7 left a loop of reworded attempts (0.74) a
    /// hair above it. Embeddings: 0.7, as the design asks (cosine of short texts that say the
    /// same thing is higher; different approaches to one task stay below it).
    pub fn circular_above(self) -> f64 {
        match self {
            Method::Embeddings => 0.7,
            Method::Shingles => 0.6,
        }
    }
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

    /// The same failure three times, as agents report it: the error text repeated with the line,
    /// path or time that changed between attempts, or with the attempt's words around it.
    const LOOPS: [[&str; 3]; 5] = [
        [
            "cargo test failed: error[E0502]: cannot borrow `cache` as mutable because it is also borrowed as immutable --> src/store/cache.rs:42:9",
            "cargo test failed: error[E0502]: cannot borrow `cache` as mutable because it is also borrowed as immutable --> src/store/cache.rs:47:13",
            "cargo test failed: error[E0502]: cannot borrow `cache` as mutable because it is also borrowed as immutable --> src/store/cache.rs:51:9",
        ],
        [
            "tsc: src/features/orders/list.tsx(12,5): error TS2322: Type 'string | undefined' is not assignable to type 'string'.",
            "tsc: src/features/orders/list.tsx(14,7): error TS2322: Type 'string | undefined' is not assignable to type 'string'.",
            "tsc: src/features/orders/detail.tsx(31,9): error TS2322: Type 'string | undefined' is not assignable to type 'string'.",
        ],
        [
            "2026-12-04T03:12:55.120Z ERROR Unhandled rejection: ECONNREFUSED 127.0.0.1:5432 at TCPConnectWrap.afterConnect (node:net:1555:16)",
            "2026-12-04T03:14:02.981Z ERROR Unhandled rejection: ECONNREFUSED 127.0.0.1:5432 at TCPConnectWrap.afterConnect (node:net:1555:16)",
            "2026-12-04T03:15:40.007Z ERROR Unhandled rejection: ECONNREFUSED 127.0.0.1:5432 at TCPConnectWrap.afterConnect (node:net:1555:16)",
        ],
        [
            "pytest: KeyError: 'user_id' in /tmp/pytest-of-root/pytest-41/test_login0/app/views.py line 88, in login",
            "pytest: KeyError: 'user_id' in /tmp/pytest-of-root/pytest-42/test_login0/app/views.py line 91, in login",
            "pytest: KeyError: 'user_id' in /tmp/pytest-of-root/pytest-43/test_login0/app/views.py line 91, in login",
        ],
        [
            "added a null check before reading user.id; still fails: TypeError: Cannot read properties of undefined (reading 'id') at UserCard (UserCard.tsx:14:22)",
            "moved the null check into the parent; still fails: TypeError: Cannot read properties of undefined (reading 'id') at UserCard (UserCard.tsx:16:22)",
            "wrapped user.id in optional chaining; still fails: TypeError: Cannot read properties of undefined (reading 'id') at UserCard (UserCard.tsx:16:23)",
        ],
    ];

    /// Three attempts that each try something else, with or without the error they met.
    const EXPLORING: [[&str; 3]; 2] = [
        [
            "cargo build: error[E0433]: failed to resolve: use of undeclared crate or module `tokio` --> src/main.rs:3:5",
            "cargo test: thread 'store::tests::migrate' panicked at src/store/mod.rs:88:14: database is locked",
            "cargo clippy: warning: this `if` has identical blocks --> src/app/mod.rs:120:9",
        ],
        [
            "switched the HTTP client from axios to fetch; error: ECONNREFUSED 127.0.0.1:5432",
            "moved the data loading into a server component; error: ECONNREFUSED 127.0.0.1:5432",
            "cached the response in redis; error: ECONNREFUSED 127.0.0.1:5432",
        ],
    ];

    #[test]
    fn realistic_loops_are_circular_by_shingles_and_different_approaches_are_not() {
        let threshold = Method::Shingles.circular_above();
        let loops: Vec<f64> = LOOPS.iter().map(|attempts| alike(attempts)).collect();
        let exploring: Vec<f64> = EXPLORING.iter().map(|attempts| alike(attempts)).collect();
        let weakest_loop = loops.iter().copied().fold(1.0, f64::min);
        let closest_exploration = exploring.iter().copied().fold(0.0, f64::max);
        assert!(
            weakest_loop > threshold + 0.1,
            "every loop is circular with room to spare: {loops:?}"
        );
        assert!(
            closest_exploration < threshold - 0.1,
            "no exploration is circular, with room to spare: {exploring:?}"
        );
    }

    #[test]
    fn one_attempt_or_none_is_alike_to_nothing() {
        assert_eq!(alike(&["only one"]), 0.0);
        assert_eq!(alike(&[]), 0.0);
        assert_eq!(jaccard(&HashSet::new(), &HashSet::new()), 0.0);
    }
}
