//! The MCP tools, one file per group. Each tool takes its raw arguments (so a malformed call
//! becomes a readable tool error rather than a protocol error), declares its input and output
//! schemas and annotations, and returns Markdown plus structured content.
//!
//! Every schema goes through [`input_schema`] or [`output_schema`], which keep it to standard
//! JSON Schema: schemars marks Rust number types with formats such as `uint32` or `double` that
//! strict validators (the TypeScript SDK's Ajv) do not know and warn about on every connection.

mod events;
mod guardrails_agent;
mod guardrails_library;
mod guardrails_validate;
mod memories;
// Plans and project state (issue 18, plans half).
mod plans;
mod plans_render;
mod playbooks;
mod projects;
mod query_data;
mod revisions;
mod snapshots;

pub(crate) use memories::{DeleteMemoryOutput, FetchContextOutput, UpdateMemoryOutput};
pub(crate) use playbooks::PlaybookSessionsOutput;
pub(crate) use projects::{ManageProjectsOutput, ProjectOperation};
pub(crate) use revisions::{MemoryHistoryOutput, RestoreMemoryOutput};

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use rmcp::model::JsonObject;
use serde_json::Value;

/// The formats JSON Schema 2020-12 defines; any other `format` is dropped from our schemas.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The input schema of a parameter struct.
pub(crate) fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    standard::<T>(false, rmcp::handler::server::common::schema_for_type::<T>)
}

/// The output schema of a result struct.
pub(crate) fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    standard::<T>(true, rmcp::handler::server::common::schema_for_output::<T>)
}

/// Schemas already made, by type and direction (`true` for output).
type Made = Mutex<HashMap<(TypeId, bool), Arc<JsonObject>>>;

/// The schema `generate` makes, in standard JSON Schema; made once per type and direction, as
/// every session builds its tool list.
fn standard<T: 'static>(output: bool, generate: fn() -> Arc<JsonObject>) -> Arc<JsonObject> {
    static MADE: LazyLock<Made> = LazyLock::new(Default::default);
    let key = (TypeId::of::<T>(), output);
    if let Some(schema) = MADE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return schema.clone();
    }
    let mut schema = Value::Object(generate().as_ref().clone());
    standard_formats_only(&mut schema);
    let Value::Object(schema) = schema else {
        unreachable!("a schema object stays an object")
    };
    let schema = Arc::new(schema);
    MADE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, schema.clone());
    schema
}

/// Drops every `format` that JSON Schema does not define (`uint32`, `int64`, `double` …); an
/// unsigned integer keeps its bound as `minimum: 0`.
fn standard_formats_only(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let unknown = object
                .get("format")
                .and_then(Value::as_str)
                .filter(|format| !STANDARD_FORMATS.contains(format))
                .map(str::to_owned);
            if let Some(format) = unknown {
                object.remove("format");
                if format.starts_with("uint") && !object.contains_key("minimum") {
                    object.insert("minimum".into(), Value::from(0));
                }
            }
            // `properties` maps names to schemas: a property called `format` is not a keyword.
            object.values_mut().for_each(standard_formats_only);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_formats_only),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rust_number_formats_become_standard_bounds() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer", "format": "uint64", "minimum": 0},
                "rank": {"type": ["integer", "null"], "format": "uint32"},
                "score": {"type": "number", "format": "double"},
                "at": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "format": "uuid"}
            }
        });
        standard_formats_only(&mut schema);
        assert_eq!(
            schema["properties"],
            json!({
                "count": {"type": "integer", "minimum": 0},
                "rank": {"type": ["integer", "null"], "minimum": 0},
                "score": {"type": "number"},
                "at": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "format": "uuid"}
            })
        );
    }
}
