//! MCP sessions of the Streamable HTTP transport: a control table, one statement a call.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{Backend, Conn, Id, Json, Sql};
use crate::store::{McpSessionRecord, McpSessionStore, StoreResult, now};

#[derive(sqlx::FromRow)]
struct McpSessionRow {
    owner: Option<String>,
    initialize_params: Option<Json>,
    active_project_id: Option<Id>,
}

/// Creates the session row with `column` set to `$2`, or sets `column` on the existing one.
fn upsert(id: &str, column: &str, update: &str) -> Sql {
    Sql::new(format!(
        "INSERT INTO mcp_sessions (id, {column}, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (id) DO UPDATE SET {update}"
    ))
    .arg(id)
}

#[async_trait]
impl<B: Backend> McpSessionStore for B {
    async fn load_mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
        let sql = Sql::new(
            "SELECT owner, initialize_params, active_project_id FROM mcp_sessions WHERE id = $1",
        )
        .arg(id);
        let row: Option<McpSessionRow> = self.connection().await?.fetch_optional(sql).await?;
        Ok(row.map(|row| McpSessionRecord {
            owner: row.owner,
            initialize_params: row.initialize_params.map(|json| json.0),
            active_project_id: row.active_project_id.map(|id| id.0),
        }))
    }

    async fn save_mcp_session_params(&self, id: &str, params: &Value) -> StoreResult<()> {
        let update = "initialize_params = excluded.initialize_params, \
                      updated_at = excluded.updated_at";
        let sql = upsert(id, "initialize_params", update)
            .arg(params)
            .arg(now());
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn claim_mcp_session(&self, id: &str, owner: &str) -> StoreResult<()> {
        let update = "owner = COALESCE(mcp_sessions.owner, excluded.owner)";
        let sql = upsert(id, "owner", update).arg(owner).arg(now());
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn set_mcp_session_project(&self, id: &str, project: Uuid) -> StoreResult<()> {
        let update = "active_project_id = excluded.active_project_id, \
                      updated_at = excluded.updated_at";
        let sql = upsert(id, "active_project_id", update)
            .arg(project)
            .arg(now());
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
        let sql = Sql::new("DELETE FROM mcp_sessions WHERE id = $1").arg(id);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }
}
