//! Projects: a control table (the unit of tenancy itself), and what each holds (counted
//! inside its scope). Looking a project up by id or name
//! differs little, but the lookup is cached by a layer ([`crate::store::cache`]).

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Id, Json, Sql, Time, is_unique};
use crate::domain::guardrail::LIBRARY_PROJECT;
use crate::store::{Actor, Project, ProjectCounts, ProjectStore, StoreError, StoreResult, now};

const PROJECT_COLUMNS: &str = "id, name, org, metadata, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Id,
    name: String,
    org: Option<String>,
    metadata: Json,
    created_at: Time,
    updated_at: Time,
}

impl From<ProjectRow> for Project {
    fn from(row: ProjectRow) -> Self {
        Project {
            id: row.id.0,
            name: row.name,
            org: row.org,
            metadata: row.metadata.0,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        }
    }
}

#[async_trait]
impl<B: Backend> ProjectStore for B {
    async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
        org: Option<&str>,
    ) -> StoreResult<Project> {
        let (id, at) = (Uuid::new_v4(), now());
        let mut tx = self.control().await?;
        let sql = Sql::new(format!(
            "INSERT INTO projects (id, name, org, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, '{{}}', $4, $4) RETURNING {PROJECT_COLUMNS}"
        ))
        .arg(id)
        .arg(name)
        .arg(org)
        .arg(at);
        let row: ProjectRow = tx.fetch_one(sql).await.map_err(|error| {
            if is_unique(&error) {
                StoreError::Conflict(format!(
                    "a project named `{name}` already exists: choose another name"
                ))
            } else {
                error
            }
        })?;
        B::enter_project(&mut tx, id).await?;
        let detail = serde_json::json!({ "name": name, "org": org });
        audit(
            &mut *tx,
            id,
            actor,
            "project.create",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(row.into())
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        // The skills library is a project row (its memories need one) but no one's project.
        let sql = Sql::new(format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id <> $1 ORDER BY name"
        ))
        .arg(LIBRARY_PROJECT);
        let rows: Vec<ProjectRow> = self.connection().await?.fetch_all(sql).await?;
        Ok(rows.into_iter().map(Project::from).collect())
    }

    async fn find_project(&self, id_or_name: &str) -> StoreResult<Option<Project>> {
        let sql = Sql::new(format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 OR name = $2 LIMIT 1"
        ))
        .arg(Uuid::parse_str(id_or_name).ok())
        .arg(id_or_name);
        let row: Option<ProjectRow> = self.connection().await?.fetch_optional(sql).await?;
        Ok(row.map(Project::from))
    }

    async fn update_project_metadata(
        &self,
        actor: &Actor,
        project: Uuid,
        changes: &Map<String, Value>,
    ) -> StoreResult<Project> {
        let mut tx = self.control().await?;
        let sql = Sql::new(format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1{}",
            B::LOCK_ROWS
        ))
        .arg(project);
        let row: Option<ProjectRow> = tx.fetch_optional(sql).await?;
        let current =
            Project::from(row.ok_or_else(|| StoreError::NotFound(format!("project {project}")))?);
        let mut metadata = current.metadata.as_object().cloned().unwrap_or_default();
        for (key, value) in changes {
            match value {
                Value::Null => metadata.remove(key),
                value => metadata.insert(key.clone(), value.clone()),
            };
        }
        let metadata = Value::Object(metadata);
        if metadata == current.metadata {
            return Ok(current);
        }
        let sql = Sql::new(format!(
            "UPDATE projects SET metadata = $2, updated_at = $3 WHERE id = $1 \
             RETURNING {PROJECT_COLUMNS}"
        ))
        .arg(project)
        .arg(&metadata)
        .arg(now());
        let row: ProjectRow = tx.fetch_one(sql).await?;
        B::enter_project(&mut tx, project).await?;
        let detail = serde_json::json!({ "before": current.metadata, "after": metadata });
        let target = project.to_string();
        audit(&mut *tx, project, actor, "project.update", &target, detail).await?;
        B::commit(tx).await?;
        Ok(row.into())
    }

    async fn project_counts(&self, project: Uuid) -> StoreResult<ProjectCounts> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT \
             (SELECT count(*) FROM memories WHERE project_id = $1 AND deleted_at IS NULL), \
             (SELECT count(*) FROM repositories WHERE project_id = $1), \
             (SELECT count(*) FROM plans WHERE project_id = $1), \
             (SELECT count(*) FROM sessions WHERE project_id = $1)",
        )
        .arg(project);
        let (memories, snapshots, plans, playbook_sessions): (i64, i64, i64, i64) =
            tx.fetch_one(sql).await?;
        let count = |n: i64| n.max(0) as u64;
        Ok(ProjectCounts {
            memories: count(memories),
            snapshots: count(snapshots),
            plans: count(plans),
            playbook_sessions: count(playbook_sessions),
        })
    }
}
