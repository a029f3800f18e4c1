//! The capabilities steps call but do not own, behind traits the app wires to the real
//! implementations: [`Skills`] for `skill-invoke` (the packer), [`DataQuery`] for `data-query`
//! (the Athena sidecar), [`Sampler`] for generating through the client's model. Until the packer
//! and the sidecar are in a build, [`NoSkills`] and [`NoDataSource`] fail honestly, saying so.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Identity;

/// The most a step result (or a `query_data` result recorded in a session) may take, in bytes
/// of JSON, before it is cut with a notice.
pub const MAX_RESULT_BYTES: usize = 100 * 1024;

/// What a `pack_repo` skill step asks for, once per repository.
#[derive(Debug, Clone)]
pub struct PackRequest {
    pub project_id: Uuid,
    /// The caller, so the packer applies the same rules as its own tool (remote callers may only
    /// pack remote repositories).
    pub identity: Identity,
    pub url: String,
    pub version_label: Option<String>,
}

/// What later steps can read about a packed repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PackedRepository {
    pub url: String,
    /// The stored snapshot.
    pub snapshot_id: Option<Uuid>,
    pub version: Option<i64>,
    pub commit: Option<String>,
    pub file_count: u64,
    pub token_count: u64,
    /// The directory tree, for generators to read.
    pub file_tree: String,
    /// A short description of the snapshot (languages, notable files), when the packer gives one.
    pub summary: Option<String>,
}

/// Server capabilities a `skill-invoke` step can run. Errors are messages for the user.
#[async_trait]
pub trait Skills: Send + Sync {
    /// Whether `identity` may pack `url` (the same rules `pack_repo` applies before cloning);
    /// the error says why not and what to send instead.
    async fn check_url(&self, identity: &Identity, url: &str) -> Result<(), String>;
    async fn pack_repo(&self, request: PackRequest) -> Result<PackedRepository, String>;
}

/// The Athena operations a `data-query` step can run. Results are JSON as the sidecar gives
/// them; errors are messages for the user.
#[async_trait]
pub trait DataQuery: Send + Sync {
    async fn list_tables(&self, project: Uuid, database: Option<&str>) -> Result<Value, String>;
    async fn describe_tables(
        &self,
        project: Uuid,
        tables: &[String],
        database: Option<&str>,
    ) -> Result<Value, String>;
    async fn execute_query(
        &self,
        project: Uuid,
        sql: &str,
        database: Option<&str>,
    ) -> Result<Value, String>;
}

/// Generates text with the client's model (MCP sampling). Errors (no support, refusal, timeout)
/// send the runner back to returning the generate request to the client.
#[async_trait]
pub trait Sampler: Send + Sync {
    async fn generate(&self, system: &str, prompt: &str) -> Result<String, String>;
}

/// The skills of a build without the packer.
pub struct NoSkills;

#[async_trait]
impl Skills for NoSkills {
    async fn check_url(&self, _identity: &Identity, _url: &str) -> Result<(), String> {
        Err("pack_repo is not available in this build: leave the repositories empty".into())
    }
    async fn pack_repo(&self, _request: PackRequest) -> Result<PackedRepository, String> {
        Err("pack_repo is not available in this build".into())
    }
}

/// The data source of a server with no Athena sidecar configured.
pub struct NoDataSource;

const NO_SIDECAR: &str = "no Athena sidecar is configured, so there is no data source to query";

#[async_trait]
impl DataQuery for NoDataSource {
    async fn list_tables(&self, _: Uuid, _: Option<&str>) -> Result<Value, String> {
        Err(NO_SIDECAR.into())
    }
    async fn describe_tables(
        &self,
        _: Uuid,
        _: &[String],
        _: Option<&str>,
    ) -> Result<Value, String> {
        Err(NO_SIDECAR.into())
    }
    async fn execute_query(&self, _: Uuid, _: &str, _: Option<&str>) -> Result<Value, String> {
        Err(NO_SIDECAR.into())
    }
}

/// Caps a result at [`MAX_RESULT_BYTES`] of JSON. A larger one is kept as the start of its JSON
/// text with a notice saying how much was cut; the second value is that notice.
pub fn cap_result(value: Value) -> (Value, Option<String>) {
    let text = value.to_string();
    if text.len() <= MAX_RESULT_BYTES {
        return (value, None);
    }
    let mut end = MAX_RESULT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let notice = format!(
        "the result was {} KB; only its first {} KB are kept (narrow the query to see the rest)",
        text.len() / 1024,
        MAX_RESULT_BYTES / 1024
    );
    let kept = serde_json::json!({
        "truncated": true,
        "notice": notice,
        "partial_json": &text[..end],
    });
    (kept, Some(notice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_over_100_kb_is_cut_with_a_notice() {
        let big = Value::String("x".repeat(300 * 1024));
        let (kept, notice) = cap_result(big);
        assert!(notice.unwrap().contains("only its first 100 KB"));
        assert_eq!(kept["truncated"], true);
        assert!(kept.to_string().len() < MAX_RESULT_BYTES + 1024);
        let small = serde_json::json!({"rows": [1, 2]});
        assert_eq!(cap_result(small.clone()), (small, None));
    }
}
