//! The SELECT-only guard: decides, with a real SQL parser and before anything reaches the
//! sidecar, whether a caller's SQL is one read-only query. A [`SelectQuery`] can only be made by
//! [`SelectQuery::parse`], so code that runs SQL on Athena cannot be handed unchecked text.
//!
//! Rules (deny by default):
//! - exactly one statement, and it is a query: `SELECT`, `WITH … SELECT`, `VALUES` or `TABLE t`,
//!   combined with `UNION` / `INTERSECT` / `EXCEPT`; `SHOW`, `DESCRIBE` and `EXPLAIN` are refused
//!   (use the `list-tables` and `describe-tables` operations, which know the sidecar's defects);
//! - no other statement anywhere inside it (a CTE or subquery wrapping `INSERT`, `UPDATE`,
//!   `DELETE` or `MERGE`), no `SELECT … INTO`, no locking clause (`FOR UPDATE`), no table
//!   function in `FROM` (Athena's `TABLE(system.query(...))` passes raw SQL to a federated
//!   source), except `UNNEST`;
//! - unparseable SQL is refused.
//!
//! The dialect is sqlparser's `GenericDialect`: Athena's DML is Trino's, which sqlparser has no
//! dialect for, and the generic one accepts Trino's double-quoted identifiers, `ARRAY[...]`,
//! `ROW`, `TRY_CAST`, `UNNEST … WITH ORDINALITY`, typed literals and window functions, as well as
//! the backtick identifiers people bring from Athena's Hive DDL. Safety does not rest on the
//! dialect: whatever it parses is walked node by node, and the text sent to Athena is the
//! statement re-rendered from the checked tree (no comments, nothing the parser skipped), so
//! what was checked is what runs.

use std::ops::ControlFlow;

use sqlparser::ast::{Query, Select, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

/// The longest SQL accepted, in bytes (the sidecar's own limit too).
pub const MAX_SQL_BYTES: usize = 100_000;

/// How deeply expressions and subqueries may nest before the parser gives up.
const RECURSION_LIMIT: usize = 64;

/// One read-only query, checked by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectQuery {
    sql: String,
}

/// Why the guard refused some SQL; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GuardError(String);

impl GuardError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl SelectQuery {
    /// Parses `sql` and accepts it only when it is exactly one read-only query.
    pub fn parse(sql: &str) -> Result<Self, GuardError> {
        if sql.trim().is_empty() {
            return Err(GuardError::new(
                "the query is empty: send one SELECT (or WITH … SELECT) statement",
            ));
        }
        if sql.len() > MAX_SQL_BYTES {
            return Err(GuardError::new(format!(
                "the query is {} bytes; at most {MAX_SQL_BYTES} are accepted",
                sql.len()
            )));
        }
        let statements = Parser::new(&GenericDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(sql)
            .and_then(|mut parser| parser.parse_statements())
            .map_err(|error| {
                GuardError::new(format!(
                    "the query could not be parsed as SQL ({error}); only a single read-only SELECT is accepted"
                ))
            })?;
        let statement = match statements.as_slice() {
            [one] => one,
            [] => {
                return Err(GuardError::new(
                    "the query has no statement: send one SELECT (or WITH … SELECT)",
                ));
            }
            many => {
                return Err(GuardError::new(format!(
                    "the query holds {} statements; send exactly one SELECT (no `;` between statements)",
                    many.len()
                )));
            }
        };
        if !matches!(statement, Statement::Query(_)) {
            return Err(GuardError::new(format!(
                "only a read-only query is allowed (SELECT, or WITH … SELECT), not {}; to see tables and columns use the `list-tables` or `describe-tables` operation",
                statement_kind(statement)
            )));
        }
        if let ControlFlow::Break(error) = statement.visit(&mut ReadOnly { statements: 0 }) {
            return Err(error);
        }
        Ok(Self {
            sql: statement.to_string(),
        })
    }

    /// The query as it will be sent: re-rendered from the checked syntax tree.
    pub fn as_sql(&self) -> &str {
        &self.sql
    }
}

/// Walks the whole tree and stops at the first thing that is not read-only.
struct ReadOnly {
    statements: usize,
}

impl Visitor for ReadOnly {
    type Break = GuardError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<GuardError> {
        self.statements += 1;
        if self.statements > 1 {
            return ControlFlow::Break(GuardError::new(format!(
                "the query contains {} inside it; only reading is allowed",
                statement_kind(statement)
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<GuardError> {
        if !query.locks.is_empty() {
            return refuse("a locking clause (FOR UPDATE / FOR SHARE) is not allowed");
        }
        if query.for_clause.is_some() {
            return refuse("a FOR XML / FOR JSON / FOR BROWSE clause is not allowed");
        }
        if query.settings.is_some() || query.format_clause.is_some() {
            return refuse("SETTINGS and FORMAT clauses are not allowed");
        }
        if !query.pipe_operators.is_empty() {
            return refuse("pipe operators (|>) are not allowed");
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<GuardError> {
        if select.into.is_some() {
            return refuse("SELECT … INTO creates a table and is not allowed");
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<GuardError> {
        match factor {
            TableFactor::Table { args: None, .. }
            | TableFactor::Derived { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::MatchRecognize { .. } => ControlFlow::Continue(()),
            _ => refuse(
                "table functions in FROM are not allowed (only tables, subqueries and UNNEST): \
                 TABLE(system.query(...)) would pass raw SQL to a federated source",
            ),
        }
    }
}

fn refuse(message: &str) -> ControlFlow<GuardError> {
    ControlFlow::Break(GuardError::new(message))
}

/// A short name for a statement, for error messages: its leading keywords.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take(2)
        .map(|word| word.trim_end_matches(['(', ';']))
        .collect();
    let kind = match words.as_slice() {
        [first, second] if second.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{first} {second}")
        }
        [first, ..] => (*first).to_owned(),
        [] => "an empty statement".to_owned(),
    };
    format!("a {} statement", kind.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

    /// One entry of `tests/fixtures/sql_guard.sql`.
    struct Case {
        hostile: bool,
        label: String,
        sql: String,
    }

    /// Reads the corpus: entries start with `#### hostile: …` or `#### legitimate: …`, and the
    /// SQL is every line up to the next entry.
    fn corpus() -> Vec<Case> {
        let text = include_str!("../../tests/fixtures/sql_guard.sql");
        let mut cases: Vec<Case> = Vec::new();
        for line in text.lines() {
            if let Some(header) = line.strip_prefix("#### ") {
                let (kind, label) = header.split_once(':').expect("`#### kind: label`");
                let hostile = match kind.trim() {
                    "hostile" => true,
                    "legitimate" => false,
                    other => panic!("unknown corpus kind {other:?}"),
                };
                cases.push(Case {
                    hostile,
                    label: label.trim().to_owned(),
                    sql: String::new(),
                });
            } else if let Some(case) = cases.last_mut() {
                case.sql.push_str(line);
                case.sql.push('\n');
            }
        }
        cases
    }

    #[test]
    fn the_corpus_lets_no_hostile_query_through_and_every_legitimate_one() {
        let cases = corpus();
        let hostile = cases.iter().filter(|case| case.hostile).count();
        let legitimate = cases.len() - hostile;
        assert!(hostile >= 150, "only {hostile} hostile cases");
        assert!(legitimate >= 50, "only {legitimate} legitimate cases");
        let mut failures = Vec::new();
        for case in &cases {
            match (case.hostile, SelectQuery::parse(&case.sql)) {
                (true, Ok(accepted)) => failures.push(format!(
                    "hostile case passed: {} => {}",
                    case.label,
                    accepted.as_sql()
                )),
                (false, Err(error)) => {
                    failures.push(format!("legitimate case refused: {} ({error})", case.label))
                }
                _ => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_accepted_query_is_sent_as_a_stable_rendering_without_comments() {
        for case in corpus().iter().filter(|case| !case.hostile) {
            let first = SelectQuery::parse(&case.sql).expect("legitimate");
            let again = SelectQuery::parse(first.as_sql()).unwrap_or_else(|error| {
                panic!(
                    "{}: the rendering does not parse again: {error}",
                    case.label
                )
            });
            assert_eq!(first, again, "{}: the rendering is not stable", case.label);
            let tokens = Tokenizer::new(&GenericDialect {}, first.as_sql())
                .tokenize()
                .expect("the rendering tokenizes");
            let comment = tokens.iter().any(|token| {
                matches!(
                    token,
                    Token::Whitespace(
                        Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)
                    )
                )
            });
            assert!(
                !comment,
                "{}: a comment reached the rendering: {}",
                case.label,
                first.as_sql()
            );
        }
    }

    #[test]
    fn a_refusal_names_what_to_change() {
        let error = SelectQuery::parse("DROP TABLE users").unwrap_err();
        assert!(error.to_string().contains("DROP TABLE"), "{error}");
        assert!(error.to_string().contains("SELECT"), "{error}");
        let error = SelectQuery::parse("SELECT 1; SELECT 2").unwrap_err();
        assert!(error.to_string().contains("2 statements"), "{error}");
        let error = SelectQuery::parse("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x")
            .unwrap_err();
        assert!(error.to_string().contains("DELETE"), "{error}");
        let error = SelectQuery::parse("SELEC 1").unwrap_err();
        assert!(error.to_string().contains("could not be parsed"), "{error}");
    }

    #[test]
    fn deeply_nested_sql_is_refused_rather_than_overflowing_the_stack() {
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(SelectQuery::parse(&sql).is_err());
        let too_long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert!(SelectQuery::parse(&too_long).is_err());
    }
}
