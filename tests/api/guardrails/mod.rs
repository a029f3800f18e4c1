//! Guardrails through a real MCP client, one file per part: the skills library (`library.rs`),
//! validating code and its telemetry (`validate.rs`), the working-session tools (`agent.rs`,
//! `agent_watch.rs`, sharing `agent_pack.rs`), `find_skills` by meaning with the real model
//! (`library_meaning.rs`), and a project's stack as two server processes see it
//! (`sessions_across.rs`), one reading of stack names for every tool (`stacks.rs`).

mod agent;
pub(crate) mod agent_pack;
mod agent_watch;
mod library;
mod library_meaning;
mod sessions_across;
mod stacks;
mod validate;
