//! Codifier: a remote MCP knowledge server.
//!
//! # Layout
//! - [`cli`]: the `codifier` command line (serve, stdio, migrate, keys, projects, bench).
//! - [`config`]: typed configuration read from the environment and flags.
//! - [`allocator`]: giving free memory back to the system when the server goes idle.
//! - [`app`]: builds the shared state and runs the HTTP server or the stdio server.
//! - [`athena`]: the Athena sidecar (a long-lived `aws-athena-mcp` child), the SELECT-only SQL guard,
//!   result caps and rendering.
//! - [`auth`]: who is calling ([`auth::Identity`]), API keys (argon2id) and the verified-key cache.
//! - [`embeddings`]: the [`embeddings::Embedder`] trait: local model, OpenAI-compatible HTTP, or none.
//! - [`knowledge`]: domain types and services for projects and memories; every call takes an identity.
//! - [`store`]: the [`store::Store`] trait and its SQLite and Postgres (row-level security) backends.
//! - [`packer`]: the native repository packer (clone, walk, secrets, tokens, render); sync code.
//! - [`mcp`]: the one rmcp handler ([`mcp::CodifierServer`]) and its tools.
//! - [`playbooks`]: YAML-defined, resumable workflows: format, loader, templates, runner.
//! - [`http`]: the axum router: auth, host checks, `/health`, Streamable HTTP and legacy SSE.
//! - [`bench`]: `codifier bench`, the load and recall benchmark.
//! - [`plural`]: counts with their noun, singular for one.
//! - [`remembered`]: a bounded in-memory map of facts that never change (projects, session owners).

pub mod allocator;
pub mod app;
pub mod athena;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connect;
pub mod embeddings;
pub mod http;
pub mod knowledge;
pub mod mcp;
pub mod metrics;
pub mod packer;
pub mod playbooks;
pub mod plural;
pub mod remembered;
pub mod store;
