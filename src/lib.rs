//! Codifier: a remote MCP knowledge server.
//!
//! # Layout
//! Listed from the ground up: each module builds on those above it.
//! - [`domain`]: the records and their enums (projects, memories, roles, sessions, snapshots).
//! - [`allocator`]: giving free memory back to the system when the server goes idle.
//! - [`plural`]: counts with their noun, singular for one.
//! - [`yaml`]: YAML written by others read into JSON within a budget (aliases expanded).
//! - [`remembered`]: a bounded in-memory map of facts that never change (projects, session owners).
//! - [`packer`]: the native repository packer (clone, walk, secrets, tokens, render); sync code.
//! - [`store`]: [`store::Store`] and its capability traits, the SQL both databases share, the
//!   SQLite and Postgres (row-level security) backends and the project cache.
//! - [`metrics`]: counters and timings for `/metrics`, and the store wrapper that times each call.
//! - [`embeddings`]: the [`embeddings::Embedder`] trait (local model, HTTP, none) and its worker.
//! - [`auth`]: who is calling ([`auth::Identity`]), API keys (argon2id) and the verified-key cache.
//! - [`oauth`]: the OAuth authorization server over API keys: settings, codes and tokens
//!   (SHA-256, PKCE S256), clients (registered, or client ID metadata documents).
//! - [`knowledge`]: the project, memory, search and snapshot services; every call takes an identity.
//! - [`playbooks`]: YAML-defined, resumable workflows: format, loader, templates, runner.
//! - [`guardrails`]: the shared skills library and its import, and a project's own guardrails,
//!   put to work for coding agents: checks on code (patterns within a backtracking budget),
//!   telemetry, and the working session (context, sharp edges, getting unstuck, remembering).
//! - [`plans`]: plans of tasks with dependencies, their status flow and "not done" gate,
//!   timeouts and reports, and a project's state (phase, checkpoint, assumptions).
//! - [`events`]: the event log read by callers, live event streams, and webhooks (managing them,
//!   signed deliveries from the outbox, the public-address guard).
//! - [`athena`]: the Athena sidecar, the SELECT-only SQL guard, result caps and rendering.
//! - [`config`]: typed configuration read from the environment and flags.
//! - [`app`]: the application's state ([`app::App`]) and how it is built from the configuration.
//! - [`mcp`]: the one rmcp handler ([`mcp::CodifierServer`]) and its tools.
//! - [`http`]: the axum router and server: auth, host checks, `/health`, Streamable HTTP, SSE.
//! - [`cli`]: the `codifier` command line, one module per command group.

pub mod allocator;
pub mod app;
pub mod athena;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod embeddings;
pub mod events;
pub mod guardrails;
pub mod http;
pub mod knowledge;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod packer;
pub mod plans;
pub mod playbooks;
pub mod plural;
pub mod remembered;
pub mod store;
pub mod yaml;
