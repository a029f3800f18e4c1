//! Store conformance, one file per capability of the store. Each case is an
//! `async fn case(backend: Backend)` run through the store's traits, and [`store_cases!`] turns
//! it into one test per backend, `sqlite::case` and `postgres::case`, so a failure on one backend
//! never hides the other's result (`cargo test --test api postgres::` runs one backend's half).
//!
//! SQLite cases always run. Postgres cases run when `TEST_DATABASE_URL` is set, as
//! `scripts/test.sh` does in CI; without it they return at once (a fresh checkout's `cargo test`
//! needs no database), except under `CI=true`, where a missing URL fails them.
//!
//! Embedding claims have their case here (`embedding_claims.rs`); the rest of the embedding
//! jobs are tested through what uses them (`reembed.rs`, `search.rs`, `models.rs`,
//! `backfill_failures.rs`), and snapshots through `pack.rs`.

use crate::helpers::{Backend, backends};

/// Declares the cases of one file: `store_cases!(a, b)` makes `sqlite::a`, `sqlite::b`,
/// `postgres::a` and `postgres::b`; `store_cases!(postgres only: c)` makes `postgres::c` alone,
/// for what only Postgres has. A case defined but not listed is dead code, which clippy refuses.
macro_rules! store_cases {
    (postgres only: $($case:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if $crate::store::postgres_is_reachable() {
                        super::$case($crate::helpers::Backend::Postgres).await;
                    }
                }
            )+
        }
    };
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::helpers::Backend::Sqlite).await;
                }
            )+
        }
        store_cases!(postgres only: $($case),+);
    };
}

mod audit;
mod embedding_claims;
mod fixtures;
mod keys;
mod mcp_sessions;
mod memories;
mod playbook_sessions;
mod projects;
mod put_memories;
mod row_level_security;
mod search;
mod telemetry;
mod telemetry_rls;

/// Whether this run has a Postgres to test on: `TEST_DATABASE_URL` is set (under `CI=true` an
/// unset one panics, so CI never passes a Postgres case it did not run).
pub fn postgres_is_reachable() -> bool {
    backends().contains(&Backend::Postgres)
}
