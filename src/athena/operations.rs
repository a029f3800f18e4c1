//! The three operations on the sidecar's tools (`list_tables`, `describe_table`, `run_query`):
//! argument checks, reading the JSON-in-text answers and `error` objects, and the caps.

use serde_json::{Map, Value, json};

use super::caps;
use super::results::{ColumnInfo, QueryRows, TableDescription};
use super::{
    Athena, AthenaError, MAX_DESCRIBED_TABLES, MAX_ROWS, Operation, QueryOutcome, SelectQuery,
    validate_name,
};

impl Athena {
    pub(super) async fn list_tables(&self, database: &str) -> Result<QueryOutcome, AthenaError> {
        let answer = self
            .call("list_tables", json!({ "database": database }))
            .await?;
        let names: Vec<String> = answer
            .get("tables")
            .and_then(Value::as_array)
            .map(|tables| {
                tables
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| unexpected("list_tables", "no `tables` list"))?;
        let mut outcome = QueryOutcome::new(Operation::ListTables, database);
        let (names, cut) = caps::cap_names(names, &mut outcome.notices);
        outcome.truncated = cut;
        outcome.notices.push(
            "aws-athena-mcp 1.0.1 treats the first row of SHOW TABLES output as a header and drops it, so one table may be missing from this list".into(),
        );
        outcome.tables = Some(names);
        Ok(outcome)
    }

    pub(super) async fn describe(
        &self,
        database: &str,
        tables: Vec<String>,
    ) -> Result<QueryOutcome, AthenaError> {
        if tables.is_empty() {
            return Err(AthenaError::Invalid(
                "`table_names` is needed for describe-tables: send one or more table names".into(),
            ));
        }
        if tables.len() > MAX_DESCRIBED_TABLES {
            return Err(AthenaError::Invalid(format!(
                "{} tables were named; describe at most {MAX_DESCRIBED_TABLES} per call",
                tables.len()
            )));
        }
        let tables = tables
            .iter()
            .map(|table| validate_name("table_names", table))
            .collect::<Result<Vec<_>, _>>()?;
        let mut described = Vec::with_capacity(tables.len());
        for table in tables {
            let arguments = json!({ "database": database, "table_name": table });
            let entry = match self.call("describe_table", arguments).await {
                Ok(answer) => TableDescription {
                    columns: answer
                        .get("columns")
                        .cloned()
                        .and_then(|columns| serde_json::from_value::<Vec<ColumnInfo>>(columns).ok())
                        .map(caps::normalize_columns)
                        .ok_or_else(|| unexpected("describe_table", "no `columns` list"))?,
                    table,
                    error: None,
                },
                // One missing table does not spoil the others.
                Err(AthenaError::Athena { message, code }) => TableDescription {
                    error: Some(
                        AthenaError::Athena { message, code }
                            .to_string()
                            .chars()
                            .take(1000)
                            .collect(),
                    ),
                    table,
                    columns: Vec::new(),
                },
                Err(other) => return Err(other),
            };
            described.push(entry);
        }
        let mut outcome = QueryOutcome::new(Operation::DescribeTables, database);
        outcome.truncated = caps::cap_described(&mut described, &mut outcome.notices);
        outcome.notices.push(
            "aws-athena-mcp 1.0.1 treats the first row of DESCRIBE output as a header and drops it, so each table's first column may be missing".into(),
        );
        outcome.described = Some(described);
        Ok(outcome)
    }

    pub(super) async fn execute(
        &self,
        database: &str,
        query: &SelectQuery,
        max_rows: usize,
    ) -> Result<QueryOutcome, AthenaError> {
        let max_rows = max_rows.clamp(1, MAX_ROWS);
        // Athena's first page holds the header row plus data rows, and the sidecar drops the
        // header: asking for two more than wanted tells "more rows" apart from "exactly enough".
        let page = (max_rows + 2).min(MAX_ROWS);
        let arguments = json!({ "database": database, "query": query.as_sql(), "max_rows": page });
        let answer = self.call("run_query", arguments).await?;
        if answer.get("status").and_then(Value::as_str) == Some("timeout") {
            let id = answer
                .get("query_execution_id")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            return Err(AthenaError::Unavailable(format!(
                "Athena did not finish the query within the sidecar's ATHENA_TIMEOUT_SECONDS (query id {id}): make it cheaper (partition filters, LIMIT) or ask the operator to raise the timeout"
            )));
        }
        let columns: Vec<String> = answer
            .get("columns")
            .and_then(Value::as_array)
            .map(|columns| {
                columns
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| unexpected("run_query", "no `columns` list"))?;
        let rows: Vec<Map<String, Value>> = answer
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row.as_object().cloned())
                    .collect()
            })
            .ok_or_else(|| unexpected("run_query", "no `rows` list"))?;
        let mut outcome = QueryOutcome::new(Operation::ExecuteQuery, database);
        let received = rows.len();
        let (rows, more_rows, truncated) =
            caps::cap_rows(rows, max_rows, page - 1, &mut outcome.notices);
        outcome.truncated = truncated;
        outcome.result = Some(QueryRows {
            sql: query.as_sql().to_owned(),
            query_execution_id: answer
                .get("query_execution_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            columns,
            row_count: rows.len(),
            rows,
            rows_received: received,
            more_rows,
            bytes_scanned: answer.get("bytes_scanned").and_then(Value::as_u64),
            execution_time_ms: answer.get("execution_time_ms").and_then(Value::as_u64),
        });
        Ok(outcome)
    }
}

/// Reads a sidecar answer: JSON text, where an object with an `error` key is a failure (the
/// sidecar never sets `isError`).
pub(super) fn read_answer(tool: &str, text: &str) -> Result<Value, AthenaError> {
    let value: Value = serde_json::from_str(text).map_err(|_| {
        unexpected(
            tool,
            &format!("not JSON: {}", text.chars().take(200).collect::<String>()),
        )
    })?;
    if let Some(error) = value.get("error") {
        let mut message = error
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        if message.contains("dangerous pattern") {
            message.push_str(
                ". aws-athena-mcp 1.0.1 refuses some read-only SQL by its own text patterns (UNION … SELECT, information_schema, `sys.`): rewrite the query without them",
            );
        }
        return Err(AthenaError::Athena {
            message: message.chars().take(2000).collect(),
            code: value.get("code").and_then(Value::as_str).map(str::to_owned),
        });
    }
    Ok(value)
}

fn unexpected(tool: &str, what: &str) -> AthenaError {
    AthenaError::Unavailable(format!(
        "the Athena sidecar's {tool} answered in an unexpected shape ({what}); is it aws-athena-mcp 1.0.1?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_object_without_is_error_becomes_an_athena_error() {
        let error = read_answer(
            "run_query",
            r#"{"error": "Table not found", "code": "QUERY_FAILED"}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Athena could not run it: Table not found (QUERY_FAILED)"
        );
        assert!(matches!(
            read_answer("run_query", "not json"),
            Err(AthenaError::Unavailable(_))
        ));
        assert_eq!(
            read_answer("x", r#"{"tables": []}"#).unwrap()["tables"],
            json!([])
        );
    }

    #[test]
    fn names_with_dots_quotes_or_spaces_are_refused() {
        assert_eq!(
            validate_name("database", " sales_2024 ").unwrap(),
            "sales_2024"
        );
        for bad in ["", "a.b", "a b", "x\"", "t;drop", &"a".repeat(256)] {
            assert!(validate_name("database", bad).is_err(), "{bad}");
        }
    }
}
