//! Codifier's integration tests: one binary, one module per area. Each test gets a fresh
//! database; tests that touch the store run on SQLite always and on Postgres when
//! `TEST_DATABASE_URL` is set (CI always sets it: `scripts/test.sh` provisions Postgres 16 + pgvector).

mod athena;
mod auth;
mod backfill_failures;
mod cli;
mod clients;
mod connect;
mod console;
mod discovery;
mod events;
mod fake_embeddings;
mod git_server;
mod guardrails;
mod helpers;
mod hostile;
mod idle_sessions;
mod input_required;
mod interop;
mod mcp;
mod memory_updates;
mod models;
mod oauth;
mod observability;
mod pack;
mod pack_cli;
mod plans;
mod playbooks;
mod playbooks_cli;
mod pool;
mod protocol_2026;
mod quality;
mod reembed;
mod reliability;
mod research;
mod sampling;
mod search;
mod sqlite_word_search;
mod store;
mod word_search;
