//! Reading a pack's YAML into JSON and picking fields out of it the way real packs write them:
//! text that may be a number, lists that may be one string or a map, and the first of several
//! names a field goes by.

use serde_json::{Map, Value};

/// Parses YAML text into JSON (see [`crate::yaml::to_json`]: aliases expanded within a budget,
/// so a small file cannot grow into gigabytes).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    crate::yaml::to_json(text, crate::yaml::Limits::DEFAULT).map_err(|error| error.to_string())
}

/// A scalar as text (numbers and booleans written out); `None` for null, empty text, lists
/// and maps.
pub fn scalar(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The first of `names` that `item` has as non-empty text.
pub fn text(item: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| item.get(*name).and_then(scalar))
}

/// The first of `names` that `item` has, as a list of texts: a list's scalar items (a map item
/// gives its `name`, else its first key), or one text as a list of one.
pub fn texts(item: &Map<String, Value>, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| item.get(*name))
        .map(strings)
        .find(|found| !found.is_empty())
        .unwrap_or_default()
}

/// The texts a value holds: itself, a list's items, a map's values (keys whose name speaks of
/// files or patterns aside: those are globs, not words); map items of a list give their `name`
/// or else their first key (`{typescript: ">=4"}`).
pub fn strings(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(value, &mut out);
    out.dedup();
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(map) => {
                        let named =
                            text(map, &["name", "id"]).or_else(|| map.keys().next().cloned());
                        out.extend(named);
                    }
                    other => collect(other, out),
                }
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                if !(key.contains("file") || key.contains("pattern")) {
                    collect(value, out);
                }
            }
        }
        other => out.extend(scalar(other)),
    }
}

/// A list as written, or a map turned into a list of its entries (each a map carrying its key
/// as `name`), or one scalar as a list of one.
pub fn entries(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Object(fields) => {
                    let mut fields = fields.clone();
                    fields
                        .entry("name")
                        .or_insert_with(|| Value::String(key.clone()));
                    Value::Object(fields)
                }
                other => serde_json::json!({ "name": key, "value": other }),
            })
            .collect(),
        Some(other) => vec![other.clone()],
    }
}

/// The items of a file's list (`sharp_edges`, `validations`, …) under the first of `names`
/// present: a list as written, or a map of id to item (the id put in as `id` where missing).
pub fn items(document: &Value, names: &[&str]) -> Vec<Value> {
    let Some(found) = names.iter().find_map(|name| document.get(*name)) else {
        return Vec::new();
    };
    match found {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Object(fields) => {
                    let mut fields = fields.clone();
                    fields
                        .entry("id")
                        .or_insert_with(|| Value::String(key.clone()));
                    Value::Object(fields)
                }
                other => other.clone(),
            })
            .collect(),
        other => entries(Some(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_with_numeric_keys_and_an_empty_file_read_as_json() {
        assert_eq!(parse_yaml("").unwrap(), Value::Null);
        assert_eq!(parse_yaml("# only a comment\n").unwrap(), Value::Null);
        let value = parse_yaml("1: one\ntrue: yes\nlist: [a, 2]\n").unwrap();
        assert_eq!(value, json!({"1": "one", "true": "yes", "list": ["a", 2]}));
        assert!(parse_yaml("a: [unclosed").is_err());
    }

    #[test]
    fn lists_are_read_from_one_string_a_list_or_a_map_of_lists() {
        let item = json!({
            "one": "react",
            "list": ["a", {"name": "b"}, {"typescript": ">=4"}],
            "map": {"frameworks": ["x", "y"], "file_patterns": ["**/*.ts"]},
        });
        let item = item.as_object().unwrap();
        assert_eq!(texts(item, &["missing", "one"]), ["react"]);
        assert_eq!(texts(item, &["list"]), ["a", "b", "typescript"]);
        assert_eq!(texts(item, &["map"]), ["x", "y"]);
    }

    #[test]
    fn a_map_of_items_becomes_a_list_carrying_each_key() {
        let document = json!({"edges": {"first": {"title": "T"}, "second": {"id": "own"}}});
        let found = items(&document, &["sharp_edges", "edges"]);
        assert_eq!(
            found,
            [json!({"id": "first", "title": "T"}), json!({"id": "own"})]
        );
        let listed = entries(Some(&json!({"p": {"when": "w"}, "q": "text"})));
        assert_eq!(listed[0], json!({"name": "p", "when": "w"}));
        assert_eq!(listed[1], json!({"name": "q", "value": "text"}));
    }
}
