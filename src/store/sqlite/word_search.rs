//! The SQLite text half: FTS5 lookups whose cost stays nearly flat as a project grows.
//!
//! FTS5's `bm25()` costs in proportion to the memories a query matches, and it weighs each
//! word by reading every memory that holds it. A word held by thousands of memories would make
//! each search read them all. So, as on Postgres (see `COMMON_TERM` there) and as in
//! Elasticsearch's *common terms* query, each word's memories are counted first, up to
//! [`COMMON_TERM`] (a bounded probe), and words at least that common do not find: the rarer
//! words find — every one of them with `match_all` — and only when every word is common do they
//! all find. Unlike Postgres, a common word does not rank either (weighing it is the cost being
//! avoided); its weight in bm25 is small precisely because it is common. The counts are
//! remembered until the next write to the file ([`TermCounts`]).
//!
//! Ranking then runs inside FTS5 alone, and only the best-ranked window of matches is joined
//! with `memories` for the project and the caller's filters — first only its best `k` (and any
//! tied with the `k`-th), then the whole window when the filters drop some of those; when the
//! filters leave too few of the window, the lookup runs again over every match. bm25 costs about a microsecond per match it
//! ranks, so the first lookup ranks at most [`RANKED_MATCHES`] matches: the newest (FTS5 reads
//! matches by descending row id and stops there). At 100,000 memories a query whose rarer words
//! each sit in a few thousand memories matched up to ~3,600 of them, and ranking them all was
//! most of a text search's cost (README, Benchmark); the bound keeps that cost flat as a
//! project grows, and among that many memories holding every word the newest are a fair pick.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::{SqliteStore, parse_uuid, push_filters};
use crate::store::{Candidate, MemoryFilter, StoreResult};

/// In how many memories of the file a word is common for the text half (as on Postgres).
pub const COMMON_TERM: i64 = 4096;

/// The most matches the first lookup ranks (the newest ones); see the module documentation.
pub const RANKED_MATCHES: i64 = 500;

/// One word as an FTS5 phrase: quoted, so nothing in it is read as query syntax.
fn phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', ""))
}

/// The most words [`TermCounts`] remembers; past it, it starts over.
const CACHED_TERMS: usize = 4096;

/// Each word's count (see [`SqliteStore::term_counts`]), remembered while the file's
/// `memory_changes` log stays at the number they were counted at. That log takes a row for
/// every insert, delete and change of a memory's title or text (migration 0020), by this
/// process or another on the same file, so a count is never used after a write that could
/// change it. Counting a word walks its FTS5 doclist, up to [`COMMON_TERM`] entries: at
/// 100,000 memories that was the largest part of a text search's SQL (README, Benchmark).
#[derive(Default)]
pub(super) struct TermCounts {
    state: std::sync::Mutex<(i64, HashMap<String, i64>)>,
}

impl TermCounts {
    /// The log number the remembered counts hold at, and each term's count if remembered.
    fn known(&self, terms: &[String]) -> (i64, Vec<Option<i64>>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let counts = terms
            .iter()
            .map(|term| state.1.get(term).copied())
            .collect();
        (state.0, counts)
    }

    /// Remembers `counts` as of log number `seen`, forgetting whatever was counted before it.
    fn remember(&self, seen: i64, counts: impl Iterator<Item = (String, i64)>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 != seen || state.1.len() >= CACHED_TERMS {
            *state = (seen, HashMap::new());
        }
        state.1.extend(counts);
    }
}

impl SqliteStore {
    /// How many memories (of any project, live or deleted: an upper bound, counted in FTS5
    /// alone) hold each term, counting each only up to the common-word threshold; remembered
    /// until the next write (see [`TermCounts`]).
    async fn term_counts(&self, terms: &[String]) -> StoreResult<Vec<(String, i64)>> {
        loop {
            let (seen, mut counts) = self.term_counts.known(terms);
            let missing: Vec<usize> = (0..terms.len()).filter(|&n| counts[n].is_none()).collect();
            // One statement reads the log's number and counts the words not known: one snapshot.
            let mut sql = QueryBuilder::<Sqlite>::new(
                "SELECT COALESCE((SELECT MAX(seq) FROM memory_changes), 0)",
            );
            for &n in &missing {
                sql.push(
                    ", (SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ",
                )
                .push_bind(phrase(&terms[n]))
                .push(" LIMIT ")
                .push_bind(self.common_term)
                .push("))");
            }
            let row = sql.build().fetch_one(&self.pool).await?;
            let now: i64 = sqlx::Row::try_get(&row, 0)?;
            if now != seen && missing.len() < terms.len() {
                // Written since those were counted: forget them and count every word.
                self.term_counts.remember(now, std::iter::empty());
                continue;
            }
            for (column, &n) in missing.iter().enumerate() {
                counts[n] = Some(sqlx::Row::try_get::<i64, _>(&row, column + 1)?);
            }
            let counted: Vec<(String, i64)> = terms
                .iter()
                .cloned()
                .zip(counts.into_iter().map(|count| count.unwrap_or(0)))
                .collect();
            self.term_counts
                .remember(now, missing.iter().map(|&n| counted[n].clone()));
            return Ok(counted);
        }
    }

    /// The text half: see the module documentation.
    pub(super) async fn word_candidates(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        terms: &[String],
        match_all: bool,
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        let words: Vec<String> = terms
            .iter()
            .map(|term| term.replace('"', ""))
            .filter(|term| !term.trim().is_empty())
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut counted = self.term_counts(&words).await?;
        counted.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        // A word FTS5 reads as no token at all (punctuation only) counts 0 and finds nothing.
        let (rare, common): (Vec<_>, Vec<_>) = counted
            .into_iter()
            .partition(|(_, memories)| *memories < self.common_term);
        if match_all && rare.iter().any(|(_, memories)| *memories == 0) {
            return Ok(Vec::new());
        }
        let finding = if rare.is_empty() { common } else { rare };
        let expression = finding
            .iter()
            .filter(|(_, memories)| *memories > 0)
            .map(|(term, _)| phrase(term))
            .collect::<Vec<_>>()
            .join(if match_all { " AND " } else { " OR " });
        if expression.is_empty() {
            return Ok(Vec::new());
        }
        let window = i64::from(k) * 4;
        let found = match self
            .best_of_window(project, filter, &expression, window, k)
            .await?
        {
            Some(found) => found,
            None => {
                self.ranked(project, filter, &expression, Some(window), k)
                    .await?
            }
        };
        if found.len() < k as usize && self.matches(&expression, window).await? >= window {
            // The filters kept too few of the best window: rank every match.
            return self.ranked(project, filter, &expression, None, k).await;
        }
        Ok(found)
    }

    /// How many memories of the file match `expression`, counted up to `limit`.
    async fn matches(&self, expression: &str, limit: i64) -> StoreResult<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)",
        )
        .bind(expression)
        .bind(limit)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// What [`ranked`](Self::ranked) finds in the window, when the window's best `k` (with
    /// every match tied with the `k`-th) hold `k` that pass the filters, or when that is the
    /// whole window; `None` when the filters leave too few of them. Only those rows are read
    /// from `memories`: each is a seek into a table of large rows, nearly always a page read,
    /// and reading every row of a window four times `k` was a seventh of a text call's CPU at
    /// 100,000 memories (README, Benchmark). The results are the same: every match ranked
    /// below the `k`-th sorts after all of these.
    async fn best_of_window(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        expression: &str,
        window: i64,
        k: u32,
    ) -> StoreResult<Option<Vec<Candidate>>> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "WITH ranked AS MATERIALIZED (SELECT rowid, rank FROM (SELECT rowid, \
             bm25(memories_fts, 2.0, 1.0) AS rank FROM memories_fts WHERE memories_fts MATCH ",
        );
        sql.push_bind(expression.to_owned())
            .push(" ORDER BY rowid DESC LIMIT ")
            .push_bind(self.ranked_matches)
            .push(") ORDER BY rank LIMIT ")
            .push_bind(window)
            .push(
                ") SELECT m.id, ranked.rank, (SELECT count(*) FROM ranked) FROM ranked \
                 LEFT JOIN memories m ON m.rowid = ranked.rowid AND ",
            );
        push_filters(&mut sql, project, filter);
        sql.push(
            " WHERE ranked.rank <= coalesce((SELECT rank FROM ranked ORDER BY rank LIMIT 1 \
             OFFSET ",
        )
        .push_bind(i64::from(k) - 1)
        .push("), ranked.rank)");
        let rows: Vec<(Option<String>, f64, i64)> =
            sql.build_query_as().fetch_all(&self.pool).await?;
        let whole_window = rows.first().is_none_or(|row| row.2 == rows.len() as i64);
        let mut passing = Vec::new();
        for (id, rank, _) in rows {
            if let Some(id) = id {
                passing.push((rank, id));
            }
        }
        if passing.len() < k as usize && !whole_window {
            return Ok(None);
        }
        // As the full lookup orders them: by rank, then by id.
        passing.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.1.cmp(&b.1))
        });
        passing.truncate(k as usize);
        passing
            .into_iter()
            .map(|(rank, id)| {
                Ok(Candidate {
                    id: parse_uuid(&id)?,
                    score: -rank,
                })
            })
            .collect::<StoreResult<_>>()
            .map(Some)
    }

    /// The best `k` matches of `expression` that pass the filters, ranked by bm25 (title
    /// weighted twice), among the best `window` of the newest [`RANKED_MATCHES`] matches of the
    /// whole file (or among all of them).
    async fn ranked(
        &self,
        project: Uuid,
        filter: &MemoryFilter,
        expression: &str,
        window: Option<i64>,
        k: u32,
    ) -> StoreResult<Vec<Candidate>> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "WITH ranked AS MATERIALIZED (SELECT rowid, rank FROM (SELECT rowid, \
             bm25(memories_fts, 2.0, 1.0) AS rank FROM memories_fts WHERE memories_fts MATCH ",
        );
        sql.push_bind(expression.to_owned());
        match window {
            // A subquery with its own LIMIT is not flattened: bm25 runs on the newest matches only.
            Some(window) => sql
                .push(" ORDER BY rowid DESC LIMIT ")
                .push_bind(self.ranked_matches)
                .push(") ORDER BY rank LIMIT ")
                .push_bind(window),
            None => sql.push(")"),
        };
        // CROSS JOIN keeps the matches as the outer loop: the planner must never walk the
        // project's memories and probe the index for each.
        sql.push(
            ") SELECT m.id, ranked.rank FROM ranked \
             CROSS JOIN memories m ON m.rowid = ranked.rowid WHERE ",
        );
        push_filters(&mut sql, project, filter);
        sql.push(" ORDER BY ranked.rank, m.id LIMIT ")
            .push_bind(i64::from(k));
        let rows: Vec<(String, f64)> = sql.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|(id, rank)| {
                Ok(Candidate {
                    id: parse_uuid(&id)?,
                    score: -rank,
                })
            })
            .collect()
    }
}
