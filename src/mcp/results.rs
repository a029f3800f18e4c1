//! What a tool call answers: a success as Markdown plus structured content, a failure as a
//! tool error the model can act on, and the shortened, redacted error text for the log line.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

use crate::knowledge::KnowledgeError;

/// The longest error message a tool-call log line carries.
const LOGGED_ERROR_CHARS: usize = 300;

/// The text of a failed call's result, shortened for the log, with anything shaped like a
/// credential (a token pasted into an argument and echoed back) replaced.
pub(super) fn error_text(result: &CallToolResult) -> String {
    let text = result
        .content
        .iter()
        .find_map(|block| block.as_text().map(|text| text.text.as_str()))
        .unwrap_or("");
    let text = crate::packer::secrets::redact(text);
    match text.char_indices().nth(LOGGED_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A tool result with `isError: true` and a message the model can act on.
pub(crate) fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// Maps a service error to a tool result; store failures are logged and reported opaquely.
pub(crate) fn knowledge_error(error: KnowledgeError) -> CallToolResult {
    match error {
        KnowledgeError::Invalid(message) => tool_error(format!("Invalid input: {message}")),
        KnowledgeError::Forbidden(message) => tool_error(format!("Not allowed: {message}")),
        KnowledgeError::NotFound(message) => tool_error(format!("Not found: {message}")),
        KnowledgeError::Conflict(message) => tool_error(format!("Conflict: {message}")),
        KnowledgeError::Unavailable(message) => tool_error(format!("Unavailable: {message}")),
        KnowledgeError::Store(error) => {
            tracing::error!(%error, "store error during a tool call");
            tool_error("Store unavailable: the server could not reach its database. Retry shortly.")
        }
    }
}

/// A successful result: Markdown for people and structured content for programs.
pub(crate) fn tool_success(markdown: String, structured: &impl Serialize) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(markdown)]);
    result.structured_content = Some(serde_json::to_value(structured).unwrap_or_default());
    result
}

/// Reads a tool's arguments into its parameter struct, naming the field that does not fit.
pub(crate) fn parse_args<T: serde::de::DeserializeOwned>(
    tool: &str,
    arguments: rmcp::model::JsonObject,
) -> Result<T, CallToolResult> {
    serde_path_to_error::deserialize(serde_json::Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." { String::new() } else { format!(" at `{path}`") };
        tool_error(format!(
            "Invalid arguments for `{tool}`{at}: {}. Check the tool's input schema and send the field with the right name and type.",
            error.into_inner()
        ))
    })
}
