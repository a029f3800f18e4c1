//! What `query_data` returns: typed results (capped by [`super::caps`]: at most [`MAX_ROWS`]
//! rows, cells of [`MAX_CELL_CHARS`], [`MAX_RESULT_BYTES`] of JSON and of Markdown, each with a
//! notice saying what was cut) and their Markdown rendering.

use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Athena returns at most this many rows per page; more are never asked for.
pub const MAX_ROWS: usize = 1000;
/// The most bytes of JSON data, and of Markdown text, one result keeps.
pub const MAX_RESULT_BYTES: usize = 100 * 1024;
/// Longer cell values are cut to this many characters.
pub const MAX_CELL_CHARS: usize = 2000;

/// The operations of `query_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// List the tables of a database.
    ListTables,
    /// Show the columns of one or more tables.
    DescribeTables,
    /// Run one read-only SELECT.
    ExecuteQuery,
}

/// Whether rows exist beyond those returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MoreRows {
    /// Every row of the result is here.
    No,
    /// There are more rows than were returned.
    Yes,
    /// Athena's page was full, so there may be more.
    Possibly,
}

/// The columns of one table (or why it could not be described).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TableDescription {
    pub table: String,
    pub columns: Vec<ColumnInfo>,
    /// Set when this table could not be described; the other tables still were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One column as `DESCRIBE` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// The rows of a query.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QueryRows {
    /// The SQL sent to Athena: the caller's query re-rendered by the guard.
    pub sql: String,
    pub query_execution_id: Option<String>,
    pub columns: Vec<String>,
    /// The rows kept, each an object of column name to value (Athena returns text or null).
    pub rows: Vec<Map<String, Value>>,
    /// How many rows are in `rows`.
    pub row_count: usize,
    /// How many rows the sidecar returned before the caps.
    pub rows_received: usize,
    pub more_rows: MoreRows,
    pub bytes_scanned: Option<u64>,
    pub execution_time_ms: Option<u64>,
}

/// The outcome of one `query_data` operation, ready for a tool result or a playbook session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QueryOutcome {
    pub operation: Operation,
    pub database: String,
    /// The tables found (`list-tables`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
    /// The tables described (`describe-tables`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub described: Option<Vec<TableDescription>>,
    /// The query's rows (`execute-query`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<QueryRows>,
    /// True when anything was cut to fit the caps (see `notices`).
    pub truncated: bool,
    /// What the caller should know: caps applied, more rows, known defects of the sidecar.
    pub notices: Vec<String>,
    /// The Markdown rendering (at most [`MAX_RESULT_BYTES`]).
    #[serde(skip)]
    pub markdown: String,
}

impl QueryOutcome {
    /// The outcome as JSON (at most about [`MAX_RESULT_BYTES`]), for a session's collected data.
    pub fn data(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub(super) fn new(operation: Operation, database: &str) -> Self {
        Self {
            operation,
            database: database.to_owned(),
            tables: None,
            described: None,
            result: None,
            truncated: false,
            notices: Vec::new(),
            markdown: String::new(),
        }
    }

    /// Renders the Markdown, cut at [`MAX_RESULT_BYTES`] on a line boundary with a notice.
    pub(super) fn render(mut self) -> Self {
        let mut text = String::new();
        match (&self.tables, &self.described, &self.result) {
            (Some(tables), _, _) => render_tables(&mut text, &self.database, tables),
            (_, Some(described), _) => render_described(&mut text, &self.database, described),
            (_, _, Some(result)) => render_rows(&mut text, &self.database, result),
            _ => text.push_str("Nothing to show.\n"),
        }
        if !self.notices.is_empty() {
            text.push_str("\n**Notes**\n");
            for notice in &self.notices {
                let _ = writeln!(text, "- {notice}");
            }
        }
        if text.len() > MAX_RESULT_BYTES {
            let notice = format!(
                "\n… the text was cut at {} KB; the structured content holds the data kept.\n",
                MAX_RESULT_BYTES / 1024
            );
            let mut end = MAX_RESULT_BYTES - notice.len();
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let end = text[..end].rfind('\n').map(|at| at + 1).unwrap_or(end);
            text.truncate(end);
            text.push_str(&notice);
            self.truncated = true;
        }
        self.markdown = text;
        self
    }
}

/// A Markdown table cell: one line, no pipes breaking the table.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "NULL".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn render_tables(out: &mut String, database: &str, tables: &[String]) {
    let _ = writeln!(out, "## Tables in `{database}` ({})\n", tables.len());
    if tables.is_empty() {
        out.push_str("No tables.\n");
    }
    for table in tables {
        let _ = writeln!(out, "- `{table}`");
    }
}

fn render_described(out: &mut String, database: &str, described: &[TableDescription]) {
    for table in described {
        let _ = writeln!(out, "## `{database}.{}`\n", table.table);
        if let Some(error) = &table.error {
            let _ = writeln!(out, "Could not describe it: {error}\n");
            continue;
        }
        out.push_str("| column | type | comment |\n|---|---|---|\n");
        for column in &table.columns {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                column.name.replace('|', "\\|"),
                column.data_type.replace('|', "\\|"),
                column.comment.replace('|', "\\|").replace('\n', " ")
            );
        }
        out.push('\n');
    }
}

fn render_rows(out: &mut String, database: &str, result: &QueryRows) {
    let _ = writeln!(
        out,
        "## Query result: {} row{} from `{database}`\n",
        result.row_count,
        if result.row_count == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "```sql\n{}\n```\n", result.sql);
    if result.columns.is_empty() {
        out.push_str("The query returned no columns.\n");
        return;
    }
    let header: Vec<String> = result
        .columns
        .iter()
        .map(|column| cell(&Value::String(column.clone())))
        .collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in &result.rows {
        let cells: Vec<String> = result
            .columns
            .iter()
            .map(|column| cell(row.get(column).unwrap_or(&Value::Null)))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if let Some(id) = &result.query_execution_id {
        let _ = write!(out, "\nAthena query id `{id}`");
        if let Some(bytes) = result.bytes_scanned {
            let _ = write!(out, ", {bytes} bytes scanned");
        }
        if let Some(ms) = result.execution_time_ms {
            let _ = write!(out, ", {ms} ms");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::athena::caps::cap_rows;

    fn rows(count: usize, width: usize) -> Vec<Map<String, Value>> {
        (0..count)
            .map(|n| {
                let mut row = Map::new();
                row.insert("id".into(), Value::String(n.to_string()));
                row.insert("text".into(), Value::String("x".repeat(width)));
                row
            })
            .collect()
    }

    #[test]
    fn a_large_result_stays_within_100_kb_as_data_and_as_text() {
        let mut outcome = QueryOutcome::new(Operation::ExecuteQuery, "db");
        let (kept, more, truncated) = cap_rows(rows(1000, 500), 1000, 1001, &mut outcome.notices);
        outcome.truncated = truncated;
        outcome.result = Some(QueryRows {
            sql: "SELECT * FROM t".into(),
            query_execution_id: Some("q".into()),
            columns: vec!["id".into(), "text".into()],
            row_count: kept.len(),
            rows: kept,
            rows_received: 1000,
            more_rows: more,
            bytes_scanned: None,
            execution_time_ms: None,
        });
        let outcome = outcome.render();
        let data = serde_json::to_string(&outcome.data()).expect("json");
        assert!(
            data.len() <= MAX_RESULT_BYTES,
            "{} bytes of data",
            data.len()
        );
        assert!(outcome.markdown.len() <= MAX_RESULT_BYTES);
        assert!(outcome.truncated);
        assert!(outcome.notices.iter().any(|n| n.contains("fit in 100 KB")));
    }

    #[test]
    fn markdown_that_grows_past_100_kb_is_cut_with_a_notice() {
        let mut outcome = QueryOutcome::new(Operation::ExecuteQuery, "db");
        let mut row = Map::new();
        row.insert("a".into(), Value::String("|".repeat(MAX_CELL_CHARS)));
        let (kept, more, _) = cap_rows(vec![row; 80], 1000, 1001, &mut outcome.notices);
        outcome.result = Some(QueryRows {
            sql: "SELECT a FROM t".into(),
            query_execution_id: None,
            columns: vec!["a".into()],
            row_count: kept.len(),
            rows: kept,
            rows_received: 80,
            more_rows: more,
            bytes_scanned: None,
            execution_time_ms: None,
        });
        let outcome = outcome.render();
        assert!(outcome.markdown.len() <= MAX_RESULT_BYTES);
        assert!(outcome.markdown.contains("the text was cut at 100 KB"));
        assert!(outcome.truncated);
    }

    #[test]
    fn pipes_and_newlines_cannot_break_the_markdown_table() {
        assert_eq!(cell(&Value::String("a|b\nc".into())), "a\\|b c");
    }
}
