//! The Athena sidecar as the data source of playbook `data-query` steps: the same requests, SQL
//! guard and caps as the `query_data` tool.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{Athena, AthenaRequest, MAX_ROWS};
use crate::playbooks::steps::DataQuery;

/// [`DataQuery`] through the shared sidecar.
pub struct AthenaDataSource(pub Arc<Athena>);

impl AthenaDataSource {
    async fn run(&self, database: Option<&str>, request: AthenaRequest) -> Result<Value, String> {
        self.0
            .run(database, request)
            .await
            .map(|outcome| outcome.data())
            .map_err(|error| error.to_string())
    }
}

#[async_trait]
impl DataQuery for AthenaDataSource {
    async fn list_tables(&self, _project: Uuid, database: Option<&str>) -> Result<Value, String> {
        self.run(database, AthenaRequest::ListTables).await
    }

    async fn describe_tables(
        &self,
        _project: Uuid,
        tables: &[String],
        database: Option<&str>,
    ) -> Result<Value, String> {
        self.run(database, AthenaRequest::DescribeTables(tables.to_vec()))
            .await
    }

    async fn execute_query(
        &self,
        _project: Uuid,
        sql: &str,
        database: Option<&str>,
    ) -> Result<Value, String> {
        let request = AthenaRequest::execute(sql.to_owned(), MAX_ROWS)
            .await
            .map_err(|error| error.to_string())?;
        self.run(database, request).await
    }
}
