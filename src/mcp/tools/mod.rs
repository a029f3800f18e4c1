//! The MCP tools, one file per group. Each tool takes its raw arguments (so a malformed call
//! becomes a readable tool error rather than a protocol error), declares its input and output
//! schemas and annotations, and returns Markdown plus structured content.

mod memories;
mod playbooks;
mod projects;
mod query_data;
mod revisions;
mod snapshots;

pub(crate) use memories::{DeleteMemoryOutput, FetchContextOutput, UpdateMemoryOutput};
pub(crate) use playbooks::PlaybookSessionsOutput;
pub(crate) use projects::{ManageProjectsOutput, ProjectOperation};
pub(crate) use revisions::{MemoryHistoryOutput, RestoreMemoryOutput};

use std::sync::Arc;

use rmcp::model::JsonObject;

/// The input schema of a parameter struct.
pub(crate) fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_type::<T>()
}

/// The output schema of a result struct.
pub(crate) fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_output::<T>()
}
