//! The caps on what one result keeps: rows (at most the caller's `max_rows`, telling whether
//! more exist), cell length, and bytes of JSON, each with a notice saying what was cut; and the
//! tidying of `DESCRIBE` rows.

use serde_json::{Map, Value};

use super::results::{
    ColumnInfo, MAX_CELL_CHARS, MAX_RESULT_BYTES, MAX_ROWS, MoreRows, TableDescription,
};

/// A table name list that fits the byte budget; says so in `notices` when it had to cut.
pub(super) fn cap_names(names: Vec<String>, notices: &mut Vec<String>) -> (Vec<String>, bool) {
    let total = names.len();
    let mut used = 0;
    let kept: Vec<String> = names
        .into_iter()
        .take_while(|name| {
            used += name.len() + 4;
            used <= MAX_RESULT_BYTES - 4096
        })
        .collect();
    let cut = kept.len() < total;
    if cut {
        notices.push(format!(
            "only the first {} of {total} names fit in {} KB",
            kept.len(),
            MAX_RESULT_BYTES / 1024
        ));
    }
    (kept, cut)
}

/// Tidies `DESCRIBE` rows. Athena returns Hive-style text, one line per column with name, type
/// and comment separated by tabs in a single `col_name` field, followed by a `# Partition
/// Information` section that lists the partition columns again. The sidecar passes such a line
/// whole as the name with an empty type, so split it, drop blank and `#` lines, and keep each
/// column once.
pub(super) fn normalize_columns(columns: Vec<ColumnInfo>) -> Vec<ColumnInfo> {
    let mut seen = std::collections::HashSet::new();
    columns
        .into_iter()
        .map(|column| {
            if !column.data_type.is_empty() || !column.name.contains('\t') {
                return column;
            }
            let mut parts = column.name.split('\t').map(str::trim);
            ColumnInfo {
                name: parts.next().unwrap_or_default().to_owned(),
                data_type: parts.next().unwrap_or_default().to_owned(),
                comment: parts.next().unwrap_or_default().to_owned(),
            }
        })
        .map(|column| ColumnInfo {
            name: column.name.trim().to_owned(),
            ..column
        })
        .filter(|column| !column.name.is_empty() && !column.name.starts_with('#'))
        .filter(|column| seen.insert(column.name.clone()))
        .collect()
}

/// Keeps the descriptions within the byte budget: tables past it lose their columns, and the
/// caller is told which.
pub(super) fn cap_described(described: &mut [TableDescription], notices: &mut Vec<String>) -> bool {
    let budget = MAX_RESULT_BYTES - 8 * 1024;
    let mut used = 0;
    let mut cut = Vec::new();
    for table in described.iter_mut() {
        used += serde_json::to_string(&*table)
            .map(|json| json.len())
            .unwrap_or(0);
        if used > budget {
            table.columns.clear();
            table.error = Some("left out: the descriptions before it filled the 100 KB cap; describe it on its own".into());
            cut.push(table.table.clone());
        }
    }
    if !cut.is_empty() {
        notices.push(format!(
            "the result reached {} KB, so these tables were left out: {}",
            MAX_RESULT_BYTES / 1024,
            cut.join(", ")
        ));
    }
    !cut.is_empty()
}

/// Cuts a long text value to [`MAX_CELL_CHARS`] characters; reports whether it did.
fn cap_cell(value: &mut Value) -> bool {
    if let Value::String(text) = value
        && text.chars().count() > MAX_CELL_CHARS
    {
        let kept: String = text.chars().take(MAX_CELL_CHARS).collect();
        let dropped = text.chars().count() - MAX_CELL_CHARS;
        *text = format!("{kept}… ({dropped} more characters)");
        return true;
    }
    false
}

/// Keeps at most `max_rows` rows, cells of [`MAX_CELL_CHARS`] and [`MAX_RESULT_BYTES`] of JSON.
/// `page_capacity` is how many data rows Athena's page could hold, to tell "possibly more".
pub(super) fn cap_rows(
    mut rows: Vec<Map<String, Value>>,
    max_rows: usize,
    page_capacity: usize,
    notices: &mut Vec<String>,
) -> (Vec<Map<String, Value>>, MoreRows, bool) {
    let received = rows.len();
    let more = if received > max_rows {
        MoreRows::Yes
    } else if received >= page_capacity {
        MoreRows::Possibly
    } else {
        MoreRows::No
    };
    rows.truncate(max_rows);
    let mut cells_cut = false;
    for row in &mut rows {
        for value in row.values_mut() {
            cells_cut |= cap_cell(value);
        }
    }
    let budget = MAX_RESULT_BYTES - 8 * 1024;
    let mut used = 0;
    let mut fit = 0;
    for row in &rows {
        used += serde_json::to_string(row)
            .map(|json| json.len())
            .unwrap_or(0)
            + 1;
        if used > budget {
            break;
        }
        fit += 1;
    }
    let bytes_cut = fit < rows.len();
    rows.truncate(fit);
    if cells_cut {
        notices.push(format!(
            "values longer than {MAX_CELL_CHARS} characters were cut"
        ));
    }
    if bytes_cut {
        notices.push(format!(
            "only the first {fit} rows fit in {} KB: select fewer or narrower columns, or aggregate",
            MAX_RESULT_BYTES / 1024
        ));
    }
    match more {
        MoreRows::Yes => notices.push(format!(
            "the query returned more than {max_rows} rows and only the first {max_rows} were kept: narrow it (WHERE, LIMIT, aggregation) or raise `max_rows` (at most {MAX_ROWS})"
        )),
        MoreRows::Possibly => notices.push(format!(
            "Athena's result page was full ({page_capacity} rows), so there may be more rows: narrow the query (WHERE, LIMIT, aggregation); aws-athena-mcp 1.0.1 cannot page further"
        )),
        MoreRows::No => {}
    }
    let truncated = bytes_cut || cells_cut || more != MoreRows::No;
    (rows, more, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rows_beyond_the_limit_are_cut_and_the_caller_is_told() {
        let mut notices = Vec::new();
        let (kept, more, truncated) = cap_rows(rows(12, 1), 10, 11, &mut notices);
        assert_eq!((kept.len(), more, truncated), (10, MoreRows::Yes, true));
        assert!(notices[0].contains("more than 10 rows"), "{notices:?}");

        let mut notices = Vec::new();
        let (kept, more, _) = cap_rows(rows(999, 1), 1000, 999, &mut notices);
        assert_eq!((kept.len(), more), (999, MoreRows::Possibly));

        let mut notices = Vec::new();
        let (kept, more, truncated) = cap_rows(rows(3, 1), 10, 11, &mut notices);
        assert_eq!((kept.len(), more, truncated), (3, MoreRows::No, false));
        assert!(notices.is_empty());
    }

    #[test]
    fn hive_style_describe_lines_are_split_and_partition_columns_kept_once() {
        let line = |name: &str| ColumnInfo {
            name: name.into(),
            data_type: String::new(),
            comment: String::new(),
        };
        let columns = normalize_columns(vec![
            line("name                \tstring              \tthe user's name    "),
            line("dt                  \tstring              \t                    "),
            line(""),
            line("# Partition Information"),
            line("# col_name            \tdata_type           \tcomment             "),
            line(""),
            line("dt                  \tstring              \t                    "),
            ColumnInfo {
                name: "email".into(),
                data_type: "string".into(),
                comment: String::new(),
            },
        ]);
        let shown: Vec<(&str, &str, &str)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.data_type.as_str(), c.comment.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("name", "string", "the user's name"),
                ("dt", "string", ""),
                ("email", "string", "")
            ]
        );
    }

    #[test]
    fn descriptions_past_the_cap_are_left_out_by_name() {
        let columns: Vec<ColumnInfo> = (0..400)
            .map(|n| ColumnInfo {
                name: format!("column_{n}"),
                data_type: "varchar".into(),
                comment: "c".repeat(40),
            })
            .collect();
        let mut described: Vec<TableDescription> = (0..5)
            .map(|n| TableDescription {
                table: format!("t{n}"),
                columns: columns.clone(),
                error: None,
            })
            .collect();
        let mut notices = Vec::new();
        assert!(cap_described(&mut described, &mut notices));
        assert!(described[0].error.is_none() && described[4].columns.is_empty());
        assert!(notices[0].contains("t4"), "{notices:?}");
        let json = serde_json::to_string(&described).unwrap();
        assert!(json.len() <= MAX_RESULT_BYTES);
    }

    #[test]
    fn a_huge_cell_is_cut_to_2000_characters() {
        let mut row = Map::new();
        row.insert("a".into(), Value::String("y".repeat(10_000)));
        let mut notices = Vec::new();
        let (kept, _, truncated) = cap_rows(vec![row], 10, 11, &mut notices);
        assert!(truncated);
        assert!(
            kept[0]["a"]
                .as_str()
                .unwrap()
                .ends_with("(8000 more characters)")
        );
    }
}
