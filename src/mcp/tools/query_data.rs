//! `query_data`: list tables, describe tables, or run one read-only SELECT on the Athena
//! warehouse through the sidecar. Needs at least a read key for the project named; with a
//! `session_id` the result is also kept in that playbook session (a write key).

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{input_schema, output_schema};
use crate::athena::{AthenaError, AthenaRequest, MAX_ROWS, Operation, QueryOutcome};
use crate::domain::{Actor, Role};
use crate::knowledge::{KnowledgeError, projects};
use crate::mcp::CodifierServer;

/// One table name, a comma-separated list, or an array of names.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TableNames {
    One(String),
    Many(Vec<String>),
}

impl TableNames {
    fn into_vec(self) -> Vec<String> {
        match self {
            TableNames::One(list) => list
                .split(',')
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect(),
            TableNames::Many(names) => names,
        }
    }
}

/// Arguments of `query_data`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDataParams {
    /// `list-tables`, `describe-tables` (needs `table_names`) or `execute-query` (needs `query`).
    pub operation: Operation,
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The Athena database; defaults to the server's configured database.
    pub database: Option<String>,
    /// For `execute-query`: one read-only statement (SELECT, or WITH … SELECT).
    pub query: Option<String>,
    /// For `describe-tables`: one table name, or several (an array or a comma-separated list).
    pub table_names: Option<TableNames>,
    /// For `execute-query`: the most rows to return, 1 to 1000 (default 1000, Athena's page size).
    #[schemars(range(min = 1, max = 1000))]
    pub max_rows: Option<usize>,
    /// A playbook session of the project: the result is also kept in its collected data (capped
    /// at 100 KB), for its later steps. Needs a write key.
    pub session_id: Option<Uuid>,
    /// With `session_id`: the collected-data key to keep it under (lowercase letters, digits and
    /// `_`); default `query_<operation>`, e.g. `query_list_tables`.
    pub key: Option<String>,
}

/// Where a result was kept in a playbook session.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordedIn {
    pub session_id: Uuid,
    pub key: String,
    /// Set when the kept copy was cut to 100 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// The structured result of `query_data`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryDataOutput {
    pub project_id: Uuid,
    #[serde(flatten)]
    pub outcome: QueryOutcome,
    /// Set when the result was kept in a playbook session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedIn>,
}

fn invalid(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::Invalid(message.into())
}

/// Turns the parameters into a request the Athena service accepts (the SQL through the guard).
async fn request_from(params: QueryDataParams) -> Result<AthenaRequest, KnowledgeError> {
    let query = params.query.filter(|query| !query.trim().is_empty());
    let tables = params
        .table_names
        .map(TableNames::into_vec)
        .unwrap_or_default();
    if query.is_some() && params.operation != Operation::ExecuteQuery {
        return Err(invalid(
            "`query` is only used by `execute-query`: change `operation` or leave `query` out",
        ));
    }
    if !tables.is_empty() && params.operation != Operation::DescribeTables {
        return Err(invalid(
            "`table_names` is only used by `describe-tables`: change `operation` or leave `table_names` out",
        ));
    }
    match params.operation {
        Operation::ListTables => Ok(AthenaRequest::ListTables),
        Operation::DescribeTables if tables.is_empty() => Err(invalid(
            "`table_names` is needed for describe-tables: send one or more table names",
        )),
        Operation::DescribeTables => Ok(AthenaRequest::DescribeTables(tables)),
        Operation::ExecuteQuery => {
            let sql = query.ok_or_else(|| {
                invalid("`query` is needed for execute-query: send one SELECT statement")
            })?;
            Ok(AthenaRequest::execute(sql, params.max_rows.unwrap_or(MAX_ROWS)).await?)
        }
    }
}

fn render(output: &QueryDataOutput) -> String {
    let mut text = output.outcome.markdown.clone();
    if let Some(recorded) = &output.recorded {
        text.push_str(&format!(
            "\n\nKept in playbook session {} as `{}`.",
            recorded.session_id, recorded.key
        ));
        if let Some(notice) = &recorded.notice {
            text.push_str(&format!(" ({notice})"));
        }
    }
    text
}

#[tool_router(router = query_data_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Read the team's Athena data warehouse: `list-tables`, `describe-tables`, or
    /// `execute-query` with one read-only SELECT (anything that writes is refused). Results are
    /// capped at 1000 rows and 100 KB, and say when more rows exist.
    #[tool(
        name = "query_data",
        input_schema = input_schema::<QueryDataParams>(),
        output_schema = output_schema::<QueryDataOutput>(),
        annotations(
            title = "Query the data warehouse (read-only)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn query_data(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: QueryDataParams, identity| async move {
            let wanted = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            // Keeping the result in a session changes it: that needs a write key.
            let role = if params.session_id.is_some() {
                Role::Write
            } else {
                Role::Read
            };
            if params.key.is_some() && params.session_id.is_none() {
                return Err(invalid(
                    "`key` names where a result is kept in a playbook session: send `session_id` too, or leave `key` out",
                ));
            }
            let project = projects::resolve(&self.store, &identity, &wanted, role).await?;
            let athena = self.app.athena.clone().ok_or(AthenaError::NotConfigured)?;
            let database = params.database.clone();
            let session = params.session_id;
            let key = params.key.clone().unwrap_or_else(|| {
                let name = match params.operation {
                    Operation::ListTables => "list_tables",
                    Operation::DescribeTables => "describe_tables",
                    Operation::ExecuteQuery => "execute_query",
                };
                format!("query_{name}")
            });
            let request = request_from(params).await?;
            let outcome = athena.run(database.as_deref(), request).await?;
            let recorded = match session {
                None => None,
                Some(session_id) => {
                    let actor = Actor {
                        label: identity.label(),
                        tool: "query_data".into(),
                    };
                    let notice = self
                        .app
                        .playbooks
                        .record(&project, &actor, session_id, &key, outcome.data())
                        .await?;
                    Some(RecordedIn {
                        session_id,
                        key,
                        notice,
                    })
                }
            };
            Ok(QueryDataOutput {
                project_id: project.id,
                outcome,
                recorded,
            })
        };
        self.run_tool("query_data", arguments, ctx, action, render)
            .await
    }
}
