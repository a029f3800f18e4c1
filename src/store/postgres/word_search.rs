//! The text half of a search on Postgres: tsvector lexemes looked up through `memory_terms`,
//! planned by how common each word is in the project (see [`PgStore::text_candidates`]).

use sqlx::{Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::{PgStore, end_read, push_filters};
use crate::store::{Candidate, MemoryFilter, StoreResult};

/// In how many memories of a project a word is common for the text half: the memories of
/// rarer words are cheap to intersect; a word this common only ranks what rarer words found.
pub const COMMON_TERM: i64 = 4096;
/// The most words a text lookup intersects through memory_terms; a query with more distinct
/// rare words has the rest checked on the ranked candidates only.
const MAX_JOINED_WORDS: usize = 8;

/// Lexemes (already normalized by `to_tsvector`) as a tsquery in its text form, joined by
/// `operator` (` & ` or ` | `); each is quoted, so no lexeme is normalized again or read as
/// query syntax.
fn tsquery(lexemes: &[String], operator: &str) -> String {
    let quoted: Vec<String> = lexemes
        .iter()
        .map(|lexeme| format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    quoted.join(operator)
}

/// Which lexemes find memories and which only rank them.
struct Plan {
    finding: Vec<String>,
    ranking_only: Vec<String>,
}

impl Plan {
    /// The tsquery that finds, and the one that ranks (every word).
    fn queries(&self, match_all: bool) -> (String, String) {
        let find = tsquery(&self.finding, if match_all { " & " } else { " | " });
        let rank = if self.ranking_only.is_empty() {
            find.clone()
        } else {
            format!("({find}) | {}", tsquery(&self.ranking_only, " | "))
        };
        (find, rank)
    }
}

impl PgStore {
    /// Counts each lexeme's memories up to the common-word threshold (a bounded index-only
    /// probe, ~1 ms) and decides which words find: as in Elasticsearch's common-terms query,
    /// words at least that common do not find unless every word is common. `None` when nothing
    /// can match (only stop words, or a word no memory holds while every word must match).
    async fn plan(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        project: Uuid,
        words: &[String],
        match_all: bool,
    ) -> StoreResult<Option<Plan>> {
        let mut lexemes: Vec<(String, i64)> = sqlx::query_as(
            "SELECT x.term, (SELECT count(*) FROM (SELECT 1 FROM memory_terms t \
             WHERE t.project_id = $1 AND t.term = x.term LIMIT $3) s) \
             FROM unnest(tsvector_to_array(to_tsvector('english', $2))) AS x(term)",
        )
        .bind(project)
        .bind(words.join(" "))
        .bind(self.common_term)
        .fetch_all(&mut **tx)
        .await?;
        lexemes.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let (rare, common): (Vec<_>, Vec<_>) = lexemes
            .into_iter()
            .partition(|(_, memories)| *memories < self.common_term);
        let missing = rare.iter().any(|(_, memories)| *memories == 0);
        if (rare.is_empty() && common.is_empty()) || (match_all && missing) {
            return Ok(None);
        }
        let (finding, ranking_only) = if rare.is_empty() {
            (common, Vec::new())
        } else {
            (rare, common)
        };
        let terms = |list: Vec<(String, i64)>| list.into_iter().map(|(term, _)| term).collect();
        Ok(Some(Plan {
            finding: terms(finding),
            ranking_only: terms(ranking_only),
        }))
    }

    /// Full-text candidates. Matches come from memory_terms through its btree: under row-level
    /// security the GIN index on `search` is never used (`@@` is not leakproof; see migration
    /// 0003), and a scan of every memory of the project costs ~100 ms at 100,000. A lookup
    /// costs in proportion to how many memories hold its words, so [`plan`](Self::plan) picks
    /// the finding words; the best-covered matches (by their weights, after the filters) are
    /// ranked by ts_rank_cd.
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
            .map(|term| term.chars().filter(|c| c.is_alphanumeric()).collect())
            .filter(|term: &String| !term.is_empty())
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(project).await?;
        let Some(plan) = self.plan(&mut tx, project, &words, match_all).await? else {
            end_read(tx);
            return Ok(Vec::new());
        };
        let (find_query, rank_query) = plan.queries(match_all);
        let mut sql = QueryBuilder::<Postgres>::new("WITH hits AS (");
        if match_all {
            push_all_hits(&mut sql, project, filter, &plan.finding);
        } else {
            push_any_hits(&mut sql, project, filter, &plan.finding);
        }
        sql.push_bind(i64::from(k) * 2)
            .push(") SELECT m.id, ts_rank_cd(m.search, ")
            .push_bind(rank_query)
            .push(
                "::tsquery)::float8 AS rank FROM hits JOIN memories m ON m.id = hits.memory_id \
                   WHERE m.search @@ ",
            )
            .push_bind(find_query)
            .push("::tsquery AND ");
        push_filters(&mut sql, project, filter);
        sql.push(" ORDER BY rank DESC, m.id LIMIT ")
            .push_bind(i64::from(k));
        let rows: Vec<(Uuid, f64)> = sql.build_query_as().fetch_all(&mut *tx).await?;
        end_read(tx);
        Ok(rows
            .into_iter()
            .map(|(id, score)| Candidate { id, score })
            .collect())
    }
}

/// Whether the filter narrows beyond the project (then the hits join memories to apply it).
fn narrows(filter: &MemoryFilter) -> bool {
    filter.memory_type.is_some()
        || !filter.tags.is_empty()
        || filter.since.is_some()
        || filter.until.is_some()
}

/// Hits holding every finding word: one join per word over memory_terms_sorted, whose postings
/// come in memory order, so the planner merges or probes them instead of hashing all of them
/// (3× cheaper on three common words). The rarest word comes first. Ends at `LIMIT `.
fn push_all_hits(
    sql: &mut QueryBuilder<'static, Postgres>,
    project: Uuid,
    filter: &MemoryFilter,
    finding: &[String],
) {
    let filtered = narrows(filter);
    let joined_words = &finding[..finding.len().min(MAX_JOINED_WORDS)];
    sql.push("SELECT t0.memory_id, ");
    for n in 0..joined_words.len() {
        sql.push(if n == 0 { "" } else { " + " })
            .push(format!("t{n}.weight"));
    }
    sql.push(" AS score FROM memory_terms t0");
    for (n, word) in joined_words.iter().enumerate().skip(1) {
        sql.push(format!(
            " JOIN memory_terms t{n} ON t{n}.memory_id = t0.memory_id AND t{n}.project_id = "
        ))
        .push_bind(project)
        .push(format!(" AND t{n}.term = "))
        .push_bind(word.clone());
    }
    if filtered {
        sql.push(" JOIN memories m ON m.id = t0.memory_id");
    }
    sql.push(" WHERE t0.project_id = ")
        .push_bind(project)
        .push(" AND t0.term = ")
        .push_bind(joined_words[0].clone());
    if filtered {
        sql.push(" AND ");
        push_filters(sql, project, filter);
    }
    sql.push(" ORDER BY score DESC, t0.memory_id LIMIT ");
}

/// Hits holding any finding word, best covered first. Ends at `LIMIT `.
fn push_any_hits(
    sql: &mut QueryBuilder<'static, Postgres>,
    project: Uuid,
    filter: &MemoryFilter,
    finding: &[String],
) {
    sql.push(
        "SELECT matched.memory_id, matched.score FROM (SELECT t.memory_id, \
         sum(t.weight) AS score FROM memory_terms t WHERE t.project_id = ",
    )
    .push_bind(project)
    .push(" AND t.term = ANY(")
    .push_bind(finding.to_vec())
    .push(") GROUP BY t.memory_id) matched");
    if narrows(filter) {
        sql.push(" JOIN memories m ON m.id = matched.memory_id WHERE ");
        push_filters(sql, project, filter);
    }
    sql.push(" ORDER BY matched.score DESC, matched.memory_id LIMIT ");
}
