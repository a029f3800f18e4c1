//! Guardrails through a real MCP client, one file per part: the skills library (`library.rs`),
//! validating code and its telemetry (`validate.rs`).

mod library;
mod validate;
