//! Guardrails through a real MCP client, one file per part: the skills library (`library.rs`),
//! validating code and its telemetry (`validate.rs`), the working-session tools (`agent.rs`,
//! `agent_watch.rs`, sharing `agent_pack.rs`).

mod agent;
mod agent_pack;
mod agent_watch;
mod library;
mod validate;
