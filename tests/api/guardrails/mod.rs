//! Guardrails through a real MCP client: the skills library (`library.rs`).

mod library;
